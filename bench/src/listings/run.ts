import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { blobOf, imageManifest, randomConfig } from '../oci/content.js';
import { HttpClient } from '../oci/http.js';
import { RegistryClient } from '../oci/registry-client.js';
import { roundOrder } from '../run.js';
import { median } from '../util/stats.js';
import { timeListing, type ListingRequest } from './measure.js';
import { startSubject, type ListingTargetId, type Subject } from './subjects.js';

export interface ListingsOptions {
  /** Tags in each measured repository (one repository per count). */
  tagCounts: number[];
  /** Repositories in the registry when the catalog is measured, in increasing order. */
  repositoryCounts: number[];
  /** Timed requests per listing and registry. */
  requests: number;
  /** The timed requests run in chunks of this many, the registries taking turns. */
  chunk: number;
  /** Untimed requests per listing and registry first. */
  warmup: number;
}

export interface ListingCase {
  group: 'tags' | 'catalog';
  /** Tags in the repository, or repositories in the registry. */
  total: number;
  /** e.g. `?n=10&last=…`, as the table shows it. */
  query: string;
  request: ListingRequest;
  /** Milliseconds per request, by registry. */
  samples: Map<ListingTargetId, number[]>;
  failures: Map<ListingTargetId, string>;
}

export interface ListingsRun {
  options: ListingsOptions;
  targets: Array<{ id: ListingTargetId; label: string; detail?: string }>;
  cases: ListingCase[];
  /** Seconds each registry's seeding took, for the record. */
  seedSeconds: Map<ListingTargetId, number>;
  unavailable: Map<ListingTargetId, string>;
}

const TEMPLATE = 'bench/template';
const FIRST_TAG = 'v000000';
const tagName = (i: number) => `v${String(i).padStart(6, '0')}`;
const repositoryName = (i: number) => `bench/r${String(i).padStart(6, '0')}`;
const tagRepository = (count: number) => `bench/tags-${count}`;
const range = (from: number, to: number, name: (i: number) => string) => Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => name(from + k));

/** The repositories the API pushes create besides the seeded ones: the template and one per tag count. */
const pushedRepositories = (o: ListingsOptions) => 1 + o.tagCounts.length;

/** First page, a larger one, and the page after a cursor half-way through, of `total` names. */
function pages(group: ListingCase['group'], total: number, path: string, field: ListingRequest['field'], name: (i: number) => string, first: number): ListingCase[] {
  const mid = first + Math.floor(total / 2);
  const last = first + total - 1;
  const make = (query: string, count: number, from: string): ListingCase => ({
    group,
    total,
    query,
    request: { path: `${path}${query}`, field, count, first: from },
    samples: new Map(),
    failures: new Map(),
  });
  return [
    make('?n=10', Math.min(10, total), name(first)),
    make('?n=100', Math.min(100, total), name(first)),
    make(`?n=10&last=${name(mid)}`, Math.min(10, last - mid), name(mid + 1)),
  ];
}

/** Every listing measured, at every size. */
function allCases(o: ListingsOptions): ListingCase[] {
  return [
    ...o.tagCounts.flatMap((t) => pages('tags', t, `/v2/${tagRepository(t)}/tags/list`, 'tags', tagName, 0)),
    ...o.repositoryCounts.flatMap((r) => pages('catalog', r, '/v2/_catalog', 'repositories', repositoryName, 1)),
  ];
}

/** Pushes one small image through the API: the template, and the first tag of each tags repository. */
async function pushTemplates(subject: Subject, o: ListingsOptions): Promise<void> {
  const http = new HttpClient(subject.origin(), 1);
  try {
    const client = new RegistryClient(http);
    const layer = blobOf([Buffer.from('wharf listings benchmark layer\n')]);
    const config = randomConfig(layer);
    const manifest = imageManifest(config, layer);
    for (const [repository, tag] of [[TEMPLATE, 'latest'], ...o.tagCounts.map((t) => [tagRepository(t), FIRST_TAG])] as Array<[string, string]>) {
      await client.uploadBlob(repository, layer, 'post-put');
      await client.uploadBlob(repository, config, 'post-put');
      await client.putManifest(repository, tag, manifest);
    }
  } finally {
    http.close();
  }
}

/**
 * Requests every listing `times` times while the registry still holds only the pushed
 * images, as a registry that grew while serving listings would have; Wharf on PostgreSQL
 * keeps the plans cached then (Wharf on PGlite restarts when seeded). Only the status is
 * checked: the pages are not yet full.
 */
async function listWhileSmall(subject: Subject, cases: ListingCase[], times: number): Promise<void> {
  const http = new HttpClient(subject.origin(), 1);
  try {
    for (let i = 0; i < times; i++) {
      for (const c of cases) {
        const res = await http.send('GET', c.request.path);
        if (res.status !== 200) throw new Error(`GET ${c.request.path}: status ${res.status}`);
      }
    }
  } finally {
    http.close();
  }
}

/** GETs `c`'s page `times` times from `http`; a failure is recorded on the case, and ends its run there. */
async function request(c: ListingCase, s: Subject, http: HttpClient, times: number, timed: boolean): Promise<void> {
  if (c.failures.has(s.id)) return;
  try {
    for (let i = 0; i < times; i++) {
      const ms = await timeListing(http, c.request);
      if (timed) c.samples.set(s.id, [...(c.samples.get(s.id) ?? []), ms]);
    }
  } catch (err) {
    c.failures.set(s.id, (err as Error).message);
  }
}

/**
 * Untimed requests of every case first (the first requests after a start or a seeding
 * are slower), then each case's timed requests in chunks, the registries taking turns.
 */
async function measure(cases: ListingCase[], subjects: Subject[], o: ListingsOptions, log: (line: string) => void): Promise<void> {
  const clients = new Map(subjects.map((s) => [s.id, new HttpClient(s.origin(), 1)]));
  try {
    for (const c of cases) for (const s of subjects) await request(c, s, clients.get(s.id)!, o.warmup, false);
    for (const c of cases) {
      for (let chunk = 0; chunk * o.chunk < o.requests; chunk++) {
        for (const s of roundOrder(subjects, chunk + 1)) await request(c, s, clients.get(s.id)!, Math.min(o.chunk, o.requests - chunk * o.chunk), true);
      }
      log(`  ${c.group} ${c.total} ${c.query}: ${subjects.map((s) => `${s.label} ${c.failures.get(s.id) ? 'FAILED' : `${median(c.samples.get(s.id)!).toFixed(2)} ms`}`).join(', ')}`);
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
}

async function seedAll(subjects: Subject[], run: ListingsRun, log: (line: string) => void, what: string, fn: Parameters<Subject['seed']>[0]): Promise<void> {
  for (const s of subjects) {
    const started = performance.now();
    await s.seed(fn);
    const seconds = (performance.now() - started) / 1000;
    run.seedSeconds.set(s.id, (run.seedSeconds.get(s.id) ?? 0) + seconds);
    log(`  seeded ${what} into ${s.label} in ${seconds.toFixed(1)} s`);
  }
}

/**
 * The listings benchmark: each registry gets repositories of `tagCounts` tags and then
 * `repositoryCounts` repositories in all, and pages of tags/list and _catalog are timed
 * from one keep-alive connection, the registries taking turns.
 */
export async function runListings(
  o: ListingsOptions,
  env: { dir: string; distribution: string; targets: readonly ListingTargetId[]; log: (line: string) => void; onStop?: (stop: () => Promise<void>) => void },
): Promise<ListingsRun> {
  const run: ListingsRun = { options: o, targets: [], cases: [], seedSeconds: new Map(), unavailable: new Map() };
  const subjects: Subject[] = [];
  try {
    for (const id of env.targets) {
      const dir = join(env.dir, `listings-${id}`);
      await mkdir(dir, { recursive: true });
      try {
        const subject = await startSubject(id, dir, env.distribution);
        subjects.push(subject);
        // Also stopped by the harness on a signal.
        env.onStop?.(() => subject.stop());
        await pushTemplates(subject, o);
        await listWhileSmall(subject, allCases(o), 10);
        run.targets.push({ id, label: subject.label, ...(subject.detail && { detail: subject.detail }) });
      } catch (err) {
        run.unavailable.set(id, (err as Error).message);
        env.log(`listings: ${id} unavailable: ${(err as Error).message}`);
      }
    }
    const live = subjects.filter((s) => !run.unavailable.has(s.id));
    const pushed = pushedRepositories(o);
    let seeded = 0;
    for (const [i, total] of o.repositoryCounts.entries()) {
      const names = range(seeded + 1, total - pushed, repositoryName);
      // The tags go in with the first repositories: one restart of Wharf on PGlite fewer.
      const tags = i === 0 ? o.tagCounts : [];
      const what = `${tags.length > 0 ? `${tags.join(', ')} tags and ` : ''}repositories up to ${total}`;
      await seedAll(live, run, env.log, what, async (seeder) => {
        for (const t of tags) await seeder.tags(tagRepository(t), FIRST_TAG, range(1, t - 1, tagName));
        await seeder.repositories(TEMPLATE, names);
      });
      seeded = total - pushed;
      const tagsCases = tags.flatMap((t) => pages('tags', t, `/v2/${tagRepository(t)}/tags/list`, 'tags', tagName, 0));
      // The seeded names sort first (bench/r… < bench/t…), so the pages checked are theirs.
      const catalogCases = pages('catalog', total, '/v2/_catalog', 'repositories', repositoryName, 1);
      await measure([...tagsCases, ...catalogCases], live, o, env.log);
      run.cases.push(...tagsCases, ...catalogCases);
    }
    return run;
  } finally {
    for (const s of subjects) await s.stop().catch((err: Error) => env.log(`listings: stopping ${s.id}: ${err.message}`));
  }
}
