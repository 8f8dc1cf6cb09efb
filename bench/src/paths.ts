import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root; this file runs from dist/bench/src/paths.js. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Where `make tools` puts the Go peers. */
export const toolsBin = join(repoRoot, '.tools', 'bin');

/** The registry's compiled entry point (`npm run build`). */
export const wharfMain = join(repoRoot, 'dist', 'registry', 'src', 'main.js');
