// GitOps and packaging artefacts: the Argo CD health check (run under lua5.1), the argocd-cm
// patch that embeds it, and the two Dockerfiles. There is no Docker engine here, so each
// Dockerfile is built by support/dockerfile.ts: the same COPY and RUN lines (npm ci, tsc,
// npm prune ...) performed in a temporary directory, after which the image's ENTRYPOINT is
// started with its environment. A build that fails, or an image that cannot start, fails here.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argoHealth } from '../support/argocd.js';
import { buildDockerfile, pruneCache, startImage, type Image } from '../support/dockerfile.js';
import { ROOT } from '../support/kube.js';
import { freePort, GiveUp, waitFor } from '../support/processes.js';

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

describe('Dockerfiles, built without Docker', () => {
  // Kept between runs, like Docker's build cache: npm ci runs again only when its inputs change.
  const cacheDir = join(ROOT, '.test-work/dockerfile-cache');
  const used = new Set<string>();
  let work: string;

  beforeAll(() => {
    // Beside the cache: stages are hard-linked from it.
    mkdirSync(cacheDir, { recursive: true });
    work = mkdtempSync(join(ROOT, '.test-work/dockerfile-build-'));
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (used.size > 0) pruneCache(cacheDir, used);
  }, 120_000);

  async function build(file: string): Promise<Image> {
    expect(existsSync(join(ROOT, `${file}.dockerignore`)), `${file}.dockerignore`).toBe(true);
    // npm's cache of this machine stands for the network the image build would use.
    const image = await buildDockerfile({
      dockerfile: join(ROOT, file),
      context: ROOT,
      workDir: join(work, basename(file)),
      cacheDir,
      runEnv: { npm_config_prefer_offline: 'true' },
      log: (line) => console.log(`[${file}] ${line}`),
    });
    for (const key of image.cacheKeys) used.add(key);
    return image;
  }

  /** Node 24 in every stage, a numeric non-root user, and the production dependencies only (as package-lock.json marks them). */
  function expectRuntime(image: Image): void {
    expect(image.bases.length).toBeGreaterThanOrEqual(2);
    for (const base of image.bases) expect(base).toMatch(/^node:24[-.]/);
    expect(image.user).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const installed = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
    const app = join(image.root, image.workdir);
    const dev = installed.filter(([, p]) => p.dev).map(([path]) => path);
    const production = installed.filter(([, p]) => !p.dev && !p.optional).map(([path]) => path);
    expect(dev.length).toBeGreaterThan(0);
    expect(production.length).toBeGreaterThan(0);
    expect(dev.filter((path) => existsSync(join(app, path))), 'development packages in the image').toEqual([]);
    expect(production.filter((path) => !existsSync(join(app, path))), 'production packages missing from the image').toEqual([]);
  }

  it('build/registry.Dockerfile builds, and its entrypoint becomes ready', async () => {
    const image = await build('build/registry.Dockerfile');
    expectRuntime(image);
    // The image's defaults are its config file (no WHARF_* variable would let a mounted one win).
    expect(Object.keys(image.env).filter((k) => k.startsWith('WHARF_'))).toEqual(['WHARF_CONFIG_FILE']);
    const configFile = join(image.root, image.env.WHARF_CONFIG_FILE!);
    const defaults = load(readFileSync(configFile, 'utf8')) as { addr: string; dataDir: string };
    expect(defaults).toEqual({ addr: '0.0.0.0:5000', dataDir: '/var/lib/wharf' });
    // The last stage's RUN lines only prepare the data volume; the test mounts a directory of its own there.
    expect(image.volumes).toContain(defaults.dataDir);
    for (const line of image.skippedRuns) {
      for (const path of line.match(/(?<=^|\s)\/[^\s;&|]+/g) ?? []) expect(image.volumes, `${line}: touches ${path}`).toContain(path);
    }
    const port = await freePort();
    const started = Date.now();
    // As `docker run -e WHARF_ADDR=... -v <dir>:/var/lib/wharf`: another port, a directory for the volume;
    // the config file is read where the image's filesystem has it.
    const registry = startImage(image, { env: { WHARF_CONFIG_FILE: configFile, WHARF_ADDR: `127.0.0.1:${port}`, WHARF_DATA_DIR: join(work, 'registry-data') } });
    try {
      // /readyz, not /healthz: the port opens (and /healthz answers) before the database is open.
      await waitFor('the registry image to answer /readyz', async () => {
        if (registry.child.exitCode !== null) throw new GiveUp(`the registry exited with ${registry.child.exitCode}:\n${registry.output()}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
      }, 120_000, 250);
      console.log(`[build/registry.Dockerfile] the image was ready ${Date.now() - started} ms after it started`);
    } finally {
      registry.child.kill('SIGTERM');
      await registry.exited;
    }
  }, 900_000);

  it('build/operator.Dockerfile builds, and its entrypoint loads every module and prints its usage', async () => {
    const image = await build('build/operator.Dockerfile');
    expectRuntime(image);
    expect(image.skippedRuns).toEqual([]);
    // main.js imports the whole operator before it reads its flags: a module missing from the image fails here.
    const operator = startImage(image, { args: ['--help'] });
    expect(await operator.exited, operator.output()).toBe(0);
    expect(operator.output()).toContain('wharf-operator: reconciles');
  }, 900_000);
});
