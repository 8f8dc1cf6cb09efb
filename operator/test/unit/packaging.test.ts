// GitOps and packaging artefacts: the Argo CD health check (run under lua5.1), the argocd-cm
// patch that embeds it, and the two Dockerfiles (no Docker engine here, so they are checked
// against the repository: base image, non-root user, and that what they copy and run exists).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { argoHealth } from '../support/argocd.js';
import { ROOT } from '../support/kube.js';

const cond = (type: string, status: string, message = `${type} ${status}`) => ({ type, status, reason: 'R', message, lastTransitionTime: '2026-01-01T00:00:00Z' });
const reg = (generation: number, status?: unknown) => ({ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'r', generation }, status });

describe('Argo CD health check', () => {
  it.each([
    ['no status yet', reg(1), 'Progressing'],
    ['an old generation', reg(2, { observedGeneration: 1, conditions: [cond('Ready', 'True')] }), 'Progressing'],
    ['ready', reg(2, { observedGeneration: 2, conditions: [cond('Ready', 'True', '1 of 1 replicas available')] }), 'Healthy'],
    ['reconciling', reg(2, { observedGeneration: 2, conditions: [cond('Ready', 'False'), cond('Reconciling', 'True', '0 of 1 ready')] }), 'Progressing'],
    ['stalled', reg(2, { observedGeneration: 2, conditions: [cond('Ready', 'False'), cond('Stalled', 'True', 'Secret "pg" not found: ü')] }), 'Degraded'],
  ])('%s → %s', (_name, obj, want) => {
    const hs = argoHealth(obj);
    expect(hs.status).toBe(want);
    if (want === 'Degraded') expect(hs.message).toBe('Secret "pg" not found: ü');
  });

  it('is embedded verbatim for every kind in the argocd-cm patch', () => {
    const lua = readFileSync(join(ROOT, 'config/argocd/health.lua'), 'utf8');
    const patch = load(readFileSync(join(ROOT, 'config/argocd/argocd-cm-patch.yaml'), 'utf8')) as { data: Record<string, string> };
    expect(Object.keys(patch.data).sort()).toEqual(
      ['Project', 'Registry', 'ReplicationRule', 'RobotAccount'].map((k) => `resource.customizations.health.wharf.dev_${k}`),
    );
    for (const script of Object.values(patch.data)) expect(script).toBe(lua);
  });
});

describe('Dockerfiles', () => {
  for (const [file, entry, source] of [
    ['build/registry.Dockerfile', 'dist/registry/src/main.js', 'registry/src/main.ts'],
    ['build/operator.Dockerfile', 'dist/operator/src/main.js', 'operator/src/main.ts'],
  ] as const) {
    it(`${file}: multi-stage on Node 24, non-root, runs ${entry}`, () => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const from = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
      expect(from.length).toBeGreaterThanOrEqual(2);
      for (const image of from) expect(image).toMatch(/^node:24[-.]/);
      const user = [...text.matchAll(/^USER (\S+)/gm)].map((m) => m[1]).pop();
      expect(user).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
      expect(text).toContain('npm ci');
      expect(text).toContain('npm prune --omit=dev');
      // Node.js flags may come between (the registry's: registry/src/node-flags.ts).
      expect(text).toMatch(new RegExp(`ENTRYPOINT \\["node", (?:"--[^"]+", )*"${entry}"\\]`));
      expect(existsSync(join(ROOT, source))).toBe(true);
      for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const src of m[1]!.split(/\s+/)) expect(existsSync(join(ROOT, src)), `${file}: COPY ${src}`).toBe(true);
      }
      expect(existsSync(join(ROOT, `${file}.dockerignore`))).toBe(true);
    });
  }
});
