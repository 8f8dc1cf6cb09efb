// CLI: writes crds/*.yaml. Usage: node dist/operator/src/gen-crds.js [outDir]
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrdFiles } from './api/generate.js';

const outDir = process.argv[2] ?? 'crds';
mkdirSync(outDir, { recursive: true });
const files = renderCrdFiles();
for (const name of readdirSync(outDir)) if (name.endsWith('.yaml') && !files.has(name)) rmSync(join(outDir, name));
for (const [name, content] of files) writeFileSync(join(outDir, name), content);
console.log(`wrote ${files.size} files to ${outDir}`);
