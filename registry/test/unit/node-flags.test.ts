import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REGISTRY_NODE_FLAGS } from '../../src/node-flags.js';

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

describe('the registry is started with the same Node.js flags everywhere', () => {
  const flags = REGISTRY_NODE_FLAGS.join(' ');

  it('make run', () => {
    expect(read('Makefile')).toContain(`REGISTRY_NODE_FLAGS := ${flags}\n`);
    expect(read('Makefile')).toContain('node $(REGISTRY_NODE_FLAGS) dist/registry/src/main.js');
  });

  it('npm start', () => {
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start).toBe(`node ${flags} dist/registry/src/main.js`);
  });

  it('the container image', () => {
    const entrypoint = ['node', ...REGISTRY_NODE_FLAGS, 'dist/registry/src/main.js'].map((a) => JSON.stringify(a)).join(', ');
    expect(read('build/registry.Dockerfile')).toContain(`ENTRYPOINT [${entrypoint}]`);
  });
});
