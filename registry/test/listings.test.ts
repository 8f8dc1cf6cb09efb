import fc from 'fast-check';
import type { FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { can, type Principal, type Role } from '../src/auth/policy.js';
import { visibleProjects } from '../src/auth/grants.js';
import { metadataOn, type Metadata } from '../src/metadata/index.js';
import type { Sql } from '../src/metadata/sql.js';
import { AuditLog } from '../src/services/audit.js';
import { ListingService, type PageRequest } from '../src/services/listings.js';
import { ProjectService } from '../src/services/projects.js';
import { metadataDrivers } from './support/metadata-drivers.js';

/**
 * Listings return exactly what a scan of everything, filtered and sorted in byte order,
 * would: every page, followed to the end by its cursor. Names are drawn from a small
 * alphabet full of near-collisions (`a`, `a-b`, `a.b`, `a/…`, a repository named like
 * its project), where byte order and per-project order differ.
 */

const RUNS = Number(process.env.WHARF_PROPERTY_RUNS ?? 25);
const PROJECTS = ['a', 'a-b', 'a.b', 'a_b', 'a--b', 'ab', 'a0', 'b', 'b-a', 'z9'];
const PATHS = ['', '/x', '/x/y', '/a-b', '/0', '/z', '/a.b/c', '/_'];
const MANIFEST = `sha256:${'1'.repeat(64)}`;

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const projectOf = (repository: string) => repository.split('/')[0]!;

/** Every page from the first, following `next`, as a client following Link headers would. */
async function allPages(n: number | undefined, fetch: (page: PageRequest) => Promise<{ items: string[]; next?: string }>): Promise<string[][]> {
  const pages: string[][] = [];
  let last: string | undefined;
  for (;;) {
    const page = await fetch({ ...(n !== undefined && { n }), ...(last !== undefined && { last }) });
    pages.push(page.items);
    if (page.next === undefined) return pages;
    expect(page.items.length, 'a page with a next link is full').toBe(n);
    expect(pages.length).toBeLessThan(1000);
    last = page.next;
  }
}

const drivers = metadataDrivers();

describe.each(drivers)('listings on $name', ({ open }) => {
  let sql: Sql;
  let cleanup: () => Promise<void>;
  let meta: Metadata;
  let listings: ListingService;
  let projects: ProjectService;

  beforeAll(async () => {
    ({ sql, cleanup } = await open());
    meta = metadataOn(sql);
    listings = new ListingService(meta);
    projects = new ProjectService(meta, new AuditLog(meta.audit, { warn: () => undefined, error: () => undefined } as unknown as FastifyBaseLogger));
  });

  afterAll(async () => {
    await sql?.close();
    await cleanup?.();
  });

  it('pages the catalog of any set of visible projects in byte order', async () => {
    const repositories = fc.uniqueArray(
      fc.tuple(fc.constantFrom(...PROJECTS), fc.constantFrom(...PATHS)).map(([p, path]) => p + path),
      { maxLength: 40 },
    );
    const visible = fc.option(fc.uniqueArray(fc.constantFrom(...PROJECTS, 'nosuch'), { maxLength: PROJECTS.length }), { nil: undefined });
    const n = fc.option(fc.integer({ min: 1, max: 7 }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(repositories, visible, n, async (names, shown, size) => {
        await sql.query('DELETE FROM repositories');
        await sql.query('INSERT INTO repositories (name) SELECT unnest($1::text[])', [names]);
        const expected = names.filter((r) => !shown || shown.includes(projectOf(r))).sort(byteOrder);
        const pages = await allPages(size, (page) => listings.catalog(page, shown && new Set(shown)));
        expect(pages.flat()).toEqual(expected);
      }),
      { numRuns: RUNS, seed: 16 },
    );
  });

  it('pages tags after any cursor, existing or not, in byte order', async () => {
    await sql.query(`INSERT INTO repositories (name) VALUES ('t/app') ON CONFLICT DO NOTHING`);
    await sql.query(`INSERT INTO manifests (repository, digest, media_type, content) VALUES ('t/app', $1, 'm', '\\x7b7d') ON CONFLICT DO NOTHING`, [MANIFEST]);
    const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,5}$/);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(tag, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 7 }), tag, async (tags, size, cursor) => {
        await sql.query(`DELETE FROM tags WHERE repository = 't/app'`);
        await sql.query(`INSERT INTO tags (repository, name, digest) SELECT 't/app', unnest($1::text[]), $2`, [tags, MANIFEST]);
        const sorted = [...tags].sort(byteOrder);
        expect((await allPages(size, (page) => listings.tags('t/app', page))).flat()).toEqual(sorted);
        expect((await listings.tags('t/app', { n: size, last: cursor })).items).toEqual(sorted.filter((t) => t > cursor).slice(0, size));
      }),
      { numRuns: RUNS, seed: 16 },
    );
  });

  it('pages the projects a principal may read, and the catalog sees the same ones', async () => {
    const roles: Role[] = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'];
    const projectSet = fc.uniqueArray(fc.record({ name: fc.constantFrom(...PROJECTS), public: fc.boolean() }), { selector: (p) => p.name, maxLength: PROJECTS.length });
    const principal = fc.oneof(
      fc.constant<Principal>({ kind: 'anonymous' }),
      fc.boolean().map((admin): Principal => ({ kind: 'user', id: 'u', name: 'u', admin, roles: new Map() })),
      fc.array(fc.tuple(fc.constantFrom(...PROJECTS, 'nosuch'), fc.constantFrom(...roles))).map((entries): Principal => ({ kind: 'user', id: 'u', name: 'u', admin: false, roles: new Map(entries) })),
      fc
        .record({
          system: fc.boolean(),
          entries: fc.array(
            fc.record({
              namespace: fc.constantFrom(...PROJECTS, '*'),
              access: fc.subarray([
                { resource: 'repository', action: 'pull' },
                { resource: 'project', action: 'read' },
                { resource: 'repository', action: 'push' },
              ]),
            }),
            { maxLength: 3 },
          ),
        })
        .map(({ system, entries }): Principal => ({ kind: 'robot', id: 'r', name: 'robot$r', project: system ? null : 'a', permissions: entries })),
    );
    await fc.assert(
      fc.asyncProperty(projectSet, principal, fc.integer({ min: 1, max: 4 }), async (rows, who, size) => {
        await sql.query('DELETE FROM projects');
        await sql.query('DELETE FROM repositories');
        for (const p of rows) await meta.projects.upsert(p.name, { public: p.public });
        await sql.query('INSERT INTO repositories (name) SELECT unnest($1::text[]) || \'/app\'', [rows.map((p) => p.name)]);
        const readable = rows.filter((p) => can(who, p, 'project:read')).map((p) => p.name).sort(byteOrder);
        const pages = await allPages(size, async (page) => {
          const result = await projects.list(who, { limit: page.n!, ...(page.last !== undefined && { after: page.last }) });
          return { items: result.items.map((p) => p.name), ...(result.next !== undefined && { next: result.next }) };
        });
        expect(pages.flat()).toEqual(readable);
        const pullable = rows.filter((p) => can(who, p, 'repository:pull')).map((p) => `${p.name}/app`).sort(byteOrder);
        const shown = await visibleProjects(who, meta.projects);
        expect((await allPages(size, (page) => listings.catalog(page, shown))).flat()).toEqual(pullable);
      }),
      { numRuns: RUNS * 4, seed: 16 },
    );
  });
});
