// The Node.js versions package.json promises must be ones every locked package accepts:
// `npm ci` on the oldest promised version would otherwise warn EBADENGINE (issue 16, 13c).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// semver ships no types of its own; only this one function is used.
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
}

const promised = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
const locked = Object.entries((JSON.parse(read('package-lock.json')) as { packages: Record<string, LockEntry> }).packages).filter(([path]) => path !== '');

/** Locked packages whose `engines.node` refuses `version`, as `path@version (range)`. */
function refusing(version: string): string[] {
  return locked.flatMap(([path, entry]) => {
    const range = !entry.engines || Array.isArray(entry.engines) ? undefined : entry.engines.node;
    return range && !semver.satisfies(version, range) ? [`${path}@${entry.version} (node ${range})`] : [];
  });
}

describe('package.json engines and the lock file agree', () => {
  it('every locked package accepts the oldest Node.js version package.json allows', () => {
    const oldest = semver.minVersion(promised)?.version;
    expect(oldest, `engines.node ${promised}`).toMatch(/^\d+\.\d+\.\d+$/);
    expect(locked.length).toBeGreaterThan(100);
    expect(refusing(oldest!)).toEqual([]);
  });

  it('the container images use a Node.js major that package.json and every locked package accept', () => {
    for (const file of ['build/registry.Dockerfile', 'build/operator.Dockerfile']) {
      const majors = [...read(file).matchAll(/^FROM node:(\d+)\S*/gm)].map((m) => m[1]!);
      expect(majors.length, file).toBeGreaterThan(0);
      for (const major of majors) {
        expect(semver.satisfies(`${major}.0.0`, promised), `${file}: node ${major} vs engines ${promised}`).toBe(true);
        expect(refusing(`${major}.0.0`), file).toEqual([]);
      }
    }
  });

  it('the Node.js running the tests is one package.json allows', () => {
    expect(semver.satisfies(process.versions.node, promised), `node ${process.versions.node} vs engines ${promised}`).toBe(true);
  });
});
