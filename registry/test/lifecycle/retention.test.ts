// Tag retention (issue 21): 20 tags with push times set through the database and some
// pulled; each Harbor template keeps exactly the expected set, in a dry run and in a
// real run; after garbage collection the deleted tags' unshared blobs are gone and the
// project's usage drops.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { gcReport } from '../support/gc.js';
import { blobOf, buildImage, OCI_MANIFEST, randomBlob, RegistryClient, type Blob, type Image } from '../support/oci.js';
import { removeDir, startRegistry, type RunningRegistry } from '../support/registry.js';
import { retentionRun, tagsOf } from './support.js';

const GRACE_SECONDS = 1;
const PROJECT = 'ret';
const REPO = `${PROJECT}/app`;
const OTHER = `${PROJECT}/other`;
const TAGS = Array.from({ length: 20 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`);
/** tNN was pushed NN days ago minus 12 hours (so no tag sits on a day boundary). */
const PUSHED_DAYS_AGO = (tag: string) => Number(tag.slice(1)) - 0.5;
/** The pulled tags and how many days ago (set through the database after real pulls). */
const PULLED_DAYS_AGO: Record<string, number> = { t03: 0.5, t07: 1.5, t12: 4.5, t18: 9.5 };
const range = (from: number, to: number) => TAGS.slice(from - 1, to);
const complement = (kept: string[]) => TAGS.filter((t) => !kept.includes(t));

describe('tag retention', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let api: ManagementClient;
  const images = new Map<string, Image>();
  /** A layer every image has: shared with the kept ones, it must survive. */
  let shared: Blob;

  const sql = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) => registry.app.metadata.sql.query<Row>(text, params);
  const inStorage = async (digest: string) => (await registry.app.blobStore.stat(digest)) !== undefined;
  const tagList = async (repo: string) => ((await (await client.fetch(`/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags.sort();
  const setPolicy = (rules: unknown[]) => api.ok('PUT', `/projects/${PROJECT}/retention`, { rules, schedule: null });

  async function pushWithShared(repo: string, tag: string): Promise<Image> {
    const image = await buildImage({ layers: 1, payloadSize: 4096 });
    const manifest = JSON.parse(image.manifest.data.toString()) as { layers: unknown[] };
    manifest.layers.push({ mediaType: 'application/octet-stream', digest: shared.digest, size: shared.size });
    const withShared: Image = { ...image, layers: [...image.layers, shared], manifest: blobOf(JSON.stringify(manifest)) };
    await client.pushImage(repo, tag, withShared);
    return withShared;
  }

  beforeAll(async () => {
    registry = await startRegistry({ jobs: { pollIntervalMs: 50, gc: { graceSeconds: GRACE_SECONDS, schedule: undefined }, uploads: { purgeSchedule: undefined } } });
    client = new RegistryClient(registry.url);
    api = new ManagementClient(registry.url, null);
    await api.project(PROJECT);
    shared = randomBlob(2048);
    for (const tag of TAGS) images.set(tag, await pushWithShared(REPO, tag));
    await pushWithShared(OTHER, 'keep-me');
    for (const tag of TAGS) {
      await sql(`UPDATE tags SET updated_at = now() - make_interval(hours => $3) WHERE repository = $1 AND name = $2`, [REPO, tag, PUSHED_DAYS_AGO(tag) * 24]);
      await sql(`UPDATE manifests SET created_at = now() - make_interval(hours => $3) WHERE repository = $1 AND digest = $2`, [REPO, images.get(tag)!.manifest.digest, PUSHED_DAYS_AGO(tag) * 24]);
    }
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('records pull times from pulls, in a batch and not per request', async () => {
    for (const tag of Object.keys(PULLED_DAYS_AGO)) expect((await client.fetch(`/v2/${REPO}/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } })).status).toBe(200);
    // HEAD is not a pull.
    expect((await client.fetch(`/v2/${REPO}/manifests/t01`, { method: 'HEAD' })).status).toBe(200);
    const pulled = async () => (await sql<{ digest: string }>(`SELECT digest FROM manifests WHERE repository = $1 AND pulled_at IS NOT NULL`, [REPO])).map((r) => r.digest).sort();
    // Listeners run after the response; then the batch is written on the next flush.
    await sleep(100);
    expect(await pulled()).toEqual([]);
    await registry.app.jobs.pullTimes.flush();
    expect(await pulled()).toEqual(Object.keys(PULLED_DAYS_AGO).map((t) => images.get(t)!.manifest.digest).sort());
    for (const [tag, days] of Object.entries(PULLED_DAYS_AGO)) {
      await sql(`UPDATE manifests SET pulled_at = now() - make_interval(hours => $3) WHERE repository = $1 AND digest = $2`, [REPO, images.get(tag)!.manifest.digest, days * 24]);
    }
  });

  const cases: { name: string; rules: unknown[]; kept: string[] }[] = [
    { name: 'latestPushedK keeps the K most recently pushed', rules: [{ template: 'latestPushedK', count: 5 }], kept: range(1, 5) },
    { name: 'latestPulledN keeps the N most recently pulled', rules: [{ template: 'latestPulledN', count: 3 }], kept: ['t03', 't07', 't12'] },
    { name: 'nDaysSinceLastPush keeps what was pushed in the last N days', rules: [{ template: 'nDaysSinceLastPush', days: 7 }], kept: range(1, 7) },
    {
      name: 'nDaysSinceLastPull keeps what was pulled in the last N days (never pulled: counted from the push)',
      rules: [{ template: 'nDaysSinceLastPull', days: 3 }],
      kept: ['t01', 't02', 't03', 't07'],
    },
    { name: 'always, with a tag exclusion, keeps every other tag', rules: [{ template: 'always', tagExcludes: 't1*' }], kept: [...range(1, 9), 't20'] },
    { name: 'rules combine with OR', rules: [{ template: 'latestPushedK', count: 2 }, { template: 'always', tagMatches: 't2*' }], kept: ['t01', 't02', 't20'] },
    { name: 'a disabled rule retains nothing', rules: [{ template: 'latestPushedK', count: 1 }, { template: 'always', disabled: true }], kept: ['t01'] },
  ];

  for (const c of cases) {
    it(`dry run: ${c.name}`, async () => {
      await setPolicy(c.rules.map((r) => ({ repoMatches: 'app', ...(r as object) })));
      const report = await retentionRun(api, PROJECT, true);
      expect(tagsOf(report.kept)).toEqual(c.kept);
      expect(tagsOf(report.deleted)).toEqual(complement(c.kept));
      for (const d of report.deleted) expect(d).toMatchObject({ repository: REPO, reason: 'no rule retains it' });
      for (const k of report.kept) expect(k.reason).toMatch(/\(rule #\d\)$/);
      expect(report.manifestsDeleted).toEqual([]);
      // A repository no rule selects is left alone, and a dry run deletes nothing.
      expect(report.kept.concat(report.deleted).some((d) => d.repository === OTHER)).toBe(false);
      expect(await tagList(REPO)).toEqual(TAGS);
    });
  }

  it('real run deletes what no rule retains, with its untagged manifests; GC then frees the unshared blobs and the usage drops', async () => {
    // An untagged artifact and a referrer of a kept tag: the first goes, the second follows its subject.
    const untagged = await buildImage({ layers: 1 });
    await client.pushImage(REPO, untagged.manifest.digest, untagged);
    const sigPayload = randomBlob(100);
    const empty = blobOf('{}');
    for (const b of [empty, sigPayload]) expect((await client.pushBlob(REPO, b)).status).toBe(201);
    const kept = images.get('t01')!;
    const referrer = blobOf(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
        layers: [{ mediaType: 'application/octet-stream', digest: sigPayload.digest, size: sigPayload.size }],
        subject: { mediaType: OCI_MANIFEST, digest: kept.manifest.digest, size: kept.manifest.size },
      }),
    );
    expect((await client.pushManifest(REPO, referrer.digest, referrer)).status).toBe(201);

    await setPolicy([{ template: 'latestPushedK', count: 5, repoMatches: 'app' }]);
    const before = (await api.ok('GET', `/projects/${PROJECT}`)).usedBytes as number;
    const dry = await retentionRun(api, PROJECT, true);
    expect(tagsOf(dry.deleted)).toEqual([...complement(range(1, 5)), `@${untagged.manifest.digest}`].sort());

    const report = await retentionRun(api, PROJECT, false);
    expect(report.dryRun).toBe(false);
    expect(tagsOf(report.kept)).toEqual(range(1, 5));
    expect(tagsOf(report.deleted)).toEqual(tagsOf(dry.deleted));
    expect(report.manifestsDeleted.map((m) => m.digest).sort()).toEqual([...complement(range(1, 5)).map((t) => images.get(t)!.manifest.digest), untagged.manifest.digest].sort());
    expect(await tagList(REPO)).toEqual(range(1, 5));
    expect(await tagList(OTHER)).toEqual(['keep-me']);
    expect((await client.fetch(`/v2/${REPO}/manifests/${untagged.manifest.digest}`, { method: 'HEAD' })).status).toBe(404);
    expect((await client.fetch(`/v2/${REPO}/manifests/${referrer.digest}`, { method: 'HEAD' })).status).toBe(200);

    await sleep(GRACE_SECONDS * 1000 + 300);
    await gcReport(registry.url);
    for (const tag of complement(range(1, 5))) {
      for (const layer of images.get(tag)!.layers.filter((l) => l.digest !== shared.digest)) expect(await inStorage(layer.digest), `${tag} ${layer.digest}`).toBe(false);
    }
    for (const tag of range(1, 5)) for (const layer of images.get(tag)!.layers) expect(await inStorage(layer.digest)).toBe(true);
    expect(await inStorage(shared.digest)).toBe(true);
    const after = (await api.ok('GET', `/projects/${PROJECT}`)).usedBytes as number;
    const freed = complement(range(1, 5)).reduce((sum, t) => sum + images.get(t)!.layers.filter((l) => l.digest !== shared.digest).reduce((s, l) => s + l.size, 0) + images.get(t)!.config.size, 0);
    expect(before - after).toBeGreaterThanOrEqual(freed);
  });

  it('publishes a deleted event for every tag and manifest retention deletes, and calls the retention-finished hook', async () => {
    const events: { type: string; tag?: string; digest?: string; actor: string }[] = [];
    const unsubscribe = registry.app.services.events.subscribe((e) => void events.push(e));
    const finished: unknown[] = [];
    const off = registry.app.jobs.lifecycle.onRetentionFinished((r) => void finished.push(r));
    try {
      await setPolicy([{ template: 'latestPushedK', count: 4, repoMatches: 'app' }]);
      const report = await retentionRun(api, PROJECT, false);
      expect(tagsOf(report.deleted)).toEqual(['t05']);
      await sleep(50);
      expect(events.filter((e) => e.type === 'deleted')).toEqual([
        expect.objectContaining({ tag: 't05', digest: images.get('t05')!.manifest.digest, actor: 'retention' }),
        expect.objectContaining({ digest: images.get('t05')!.manifest.digest, actor: 'retention' }),
      ]);
      expect(finished).toHaveLength(1);
      expect(finished[0]).toMatchObject({ project: PROJECT, dryRun: false });
    } finally {
      unsubscribe();
      off();
    }
  });

  it('refuses a policy that cannot run, naming the field', async () => {
    const bad = async (body: unknown) => {
      const res = await api.call('PUT', `/projects/${PROJECT}/retention`, body);
      expect(res.status).toBe(400);
      return res.body.errors[0].message as string;
    };
    expect(await bad({ rules: [{ template: 'latestPushedK' }], schedule: null })).toContain('rules[0].count');
    expect(await bad({ rules: [{ template: 'nDaysSinceLastPull' }], schedule: null })).toContain('rules[0].days');
    expect(await bad({ rules: [], schedule: 'every tuesday' })).toContain('schedule');
    expect(await bad({ rules: [{ template: 'sometimes' }], schedule: null })).toBeTruthy();
    expect((await api.ok('GET', `/projects/${PROJECT}/retention`)).rules).toEqual([{ template: 'latestPushedK', count: 4, repoMatches: 'app' }]);
  });

  it('gives a new proxy-cache project the default rule (7 days since last pull), which can be changed', async () => {
    await api.ok('PUT', '/projects/cache', { proxyCache: { provider: 'docker-registry', url: 'http://127.0.0.1:9' } });
    expect(await api.ok('GET', '/projects/cache/retention')).toEqual({ rules: [{ template: 'nDaysSinceLastPull', days: 7, tagMatches: '**', repoMatches: '**', untagged: true }], schedule: '0 4 * * *' });
    await api.ok('PUT', '/projects/cache/retention', { rules: [{ template: 'always' }], schedule: null });
    await api.ok('PUT', '/projects/cache', { public: true, proxyCache: { provider: 'docker-registry', url: 'http://127.0.0.1:9' } });
    expect(await api.ok('GET', '/projects/cache/retention')).toEqual({ rules: [{ template: 'always' }], schedule: null });
    expect(await api.ok('GET', `/projects/${PROJECT}/retention/runs?limit=100`)).toMatchObject({ items: expect.arrayContaining([expect.objectContaining({ project: PROJECT, state: 'succeeded' })]) });
  });
});
