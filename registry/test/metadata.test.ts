import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { metadataOn, type Metadata } from '../src/metadata/index.js';
import { loadMigrations, migrate } from '../src/metadata/migrate.js';
import { openPg } from '../src/metadata/pg.js';
import { openPglite } from '../src/metadata/pglite.js';
import { DatabaseUnavailableError, type Queryable, type Sql } from '../src/metadata/sql.js';
import { ProjectGoneError } from '../src/metadata/blob-links.js';
import { DatabaseThread } from '../src/metadata/pglite-thread.js';
import { serialize } from 'pg-protocol';
import { createTestDatabase } from './support/pg.js';
import { removeDir, tempDir } from './support/registry.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

const drivers: { name: string; open: () => Promise<{ sql: Sql; cleanup: () => Promise<void> }> }[] = [
  {
    name: 'pglite',
    open: async () => {
      const dir = await tempDir();
      const sql = await openPglite(join(dir, 'db'));
      return { sql, cleanup: async () => removeDir(dir) };
    },
  },
  {
    name: 'pg',
    // One connection, so that a setting leaking out of a statement would be seen by the next one.
    open: async () => ({ sql: await openPg(await createTestDatabase(inject('pgAdminUrl')), { max: 1 }), cleanup: async () => undefined }),
  },
];

describe.each(drivers)('metadata on $name', ({ open }) => {
  let sql: Sql;
  let meta: Metadata;
  let cleanup: () => Promise<void>;

  afterAll(async () => {
    await sql?.close();
    await cleanup?.();
  });

  it('applies the migrations once; a second run applies nothing', async () => {
    ({ sql, cleanup } = await open());
    const versions = (await loadMigrations()).map((m) => m.version);
    expect(versions[0]).toBe('0001_registry');
    expect(await migrate(sql)).toEqual(versions);
    expect(await migrate(sql)).toEqual([]);
    meta = metadataOn(sql);
  });

  it('a link that requires the project is refused once the project is gone', async () => {
    await meta.projects.upsert('needed', {});
    await meta.blobs.link('needed/r', d('c'), 1, undefined, undefined, undefined, true);
    expect(await meta.blobs.linkedSize('needed/r', d('c'))).toBe(1);
    expect(await meta.projects.delete('needed', true)).toBe('deleted');
    await expect(meta.blobs.link('needed/s', d('c'), 1, undefined, undefined, undefined, true)).rejects.toThrow(ProjectGoneError);
    expect(await meta.blobs.linkedSize('needed/s', d('c'))).toBeUndefined();
  });

  it('links blobs per repository', async () => {
    await meta.blobs.link('p/a', d('1'), 10);
    expect(await meta.blobs.linkedSize('p/a', d('1'))).toBe(10);
    expect(await meta.blobs.linkedSize('p/b', d('1'))).toBeUndefined();
    expect(await meta.blobs.mount('p/b', 'p/a', d('1'))).toBe(10);
    expect(await meta.blobs.mount('p/c', 'p/nowhere', d('1'))).toBeUndefined();
    expect(await meta.blobs.unlink('p/a', d('1'))).toBe(true);
    expect(await meta.blobs.unlink('p/a', d('1'))).toBe(false);
    expect(await meta.blobs.linkedSize('p/b', d('1'))).toBe(10);
  });

  it('stores manifests byte-exact, with tags in byte order and pages', async () => {
    const content = Buffer.from('{"schemaVersion":2,  "odd spacing": true}');
    for (const tag of ['b', 'a', 'B', 'a-1', '0']) {
      expect(await meta.manifests.put({ repository: 'p/m', digest: d('2'), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobs: [], manifests: [], tag })).toEqual({ missing: [] });
    }
    const stored = await meta.manifests.byTag('p/m', 'a', true);
    expect(stored?.content?.equals(content)).toBe(true);
    expect(stored?.size).toBe(content.length);
    expect(await meta.manifests.listTags('p/m', {})).toEqual(['0', 'B', 'a', 'a-1', 'b']);
    expect(await meta.manifests.listTags('p/m', { n: 2, last: 'B' })).toEqual(['a', 'a-1']);
  });

  it('stores nothing of a manifest whose blobs or child manifests are not in the repository', async () => {
    await meta.blobs.link('p/x', d('6'), 3);
    const put = (blobs: string[], manifests: string[]) =>
      meta.manifests.put({ repository: 'p/x', digest: d('7'), mediaType: 'm', content: Buffer.from('{"x":1}'), blobs, manifests, tag: 'x' });
    expect(await put([d('6'), d('8')], [])).toEqual({ missing: [d('8')] });
    expect(await put([d('6')], [d('9')])).toEqual({ missing: [d('9')] });
    expect(await meta.manifests.byDigest('p/x', d('7'), false)).toBeUndefined();
    expect(await meta.manifests.byTag('p/x', 'x', false)).toBeUndefined();
    expect(await sql.query('SELECT 1 FROM manifest_references WHERE repository = $1', ['p/x'])).toEqual([]);
    expect(await put([d('6'), d('6')], [])).toEqual({ missing: [] });
    expect((await meta.manifests.byTag('p/x', 'x', false))?.digest).toBe(d('7'));
  });

  it('deleting a manifest removes its tags and references; referrers follow subjects', async () => {
    await meta.blobs.link('p/r', d('4'), 1);
    await meta.manifests.put({ repository: 'p/r', digest: d('3'), mediaType: 'm', content: Buffer.from('{}'), blobs: [d('4')], manifests: [], tag: 'x' });
    await meta.manifests.put({ repository: 'p/r', digest: d('5'), mediaType: 'm', content: Buffer.from('{"s":1}'), blobs: [], manifests: [], subject: d('3'), artifactType: 'application/x.sig', annotations: { k: 'v' } });
    await meta.manifests.put({ repository: 'p/r', digest: d('a'), mediaType: 'i', content: Buffer.from('{"i":1}'), blobs: [d('4')], manifests: [d('3'), d('5')] });
    expect(await sql.query('SELECT child, kind FROM manifest_references WHERE repository = $1 AND manifest = $2 ORDER BY child', ['p/r', d('a')])).toEqual([
      { child: d('3'), kind: 'manifest' },
      { child: d('4'), kind: 'blob' },
      { child: d('5'), kind: 'manifest' },
    ]);
    expect(await meta.manifests.delete('p/r', d('a'))).toBe(true);
    expect(await meta.manifests.referrers('p/r', d('3'))).toEqual([{ digest: d('5'), mediaType: 'm', size: 7, artifactType: 'application/x.sig', annotations: { k: 'v' } }]);
    expect(await meta.manifests.referrers('p/r', d('3'), 'application/other')).toEqual([]);
    expect(await meta.manifests.delete('p/r', d('3'))).toBe(true);
    expect(await meta.manifests.byTag('p/r', 'x', false)).toBeUndefined();
    expect(await sql.query('SELECT 1 FROM manifest_references WHERE repository = $1 AND manifest = $2', ['p/r', d('3')])).toEqual([]);
    expect(await sql.query('SELECT child, kind FROM manifest_references WHERE repository = $1', ['p/r'])).toEqual([]);
  });

  it('reuses a reservation younger than the reuse window without writing; refreshes older ones; never reuses one being deleted', async () => {
    const digest = d('7');
    const pushedAt = async () => (await sql.query<{ pushed_at: Date }>('SELECT pushed_at FROM blobs WHERE digest = $1', [digest]))[0]!.pushed_at.getTime();
    const first = await meta.blobs.reserve(digest, 5, 60);
    expect(first).toBeInstanceOf(Date);
    // The reservation commits asynchronously; the setting must end with its statement.
    expect(await sql.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'on' }]);
    const stamped = await pushedAt();
    await new Promise((r) => setTimeout(r, 30));
    const reused = await meta.blobs.reserve(digest, 5, 60);
    expect(reused!.getTime()).toBeGreaterThanOrEqual(first!.getTime());
    expect(await pushedAt()).toBe(stamped);
    expect(await meta.blobs.linkReserved('p/a', digest, reused!)).toBe('linked');
    expect(await meta.blobs.reserve(digest, 5, 0)).toBeInstanceOf(Date);
    expect(await pushedAt()).toBeGreaterThan(stamped);
    await sql.query("UPDATE blobs SET deleting_since = now() WHERE digest = $1", [digest]);
    expect(await meta.blobs.reserve(digest, 5, 60)).toBeUndefined();
  });

  it('opens an upload session with an asynchronous commit that ends with the statement', async () => {
    const id = '5b0e3a4c-1d2e-4f00-9a0b-0c1d2e3f4a5b';
    expect(await meta.uploads.create(id, 'p/async', { parts: [] }, { principal: 'someone', perPrincipal: 8, perRepository: 8 })).toBeUndefined();
    expect(await meta.uploads.get(id, 'p/async')).toMatchObject({ id, repository: 'p/async', size: 0, state: { parts: [] }, projectStorageLimit: null });
    expect(await sql.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'on' }]);
    expect(await meta.uploads.delete(id)).toBe(true);
  });

  it('advances an upload only from the size it was read at', async () => {
    const id = '00000000-0000-4000-8000-000000000001';
    await meta.uploads.create(id, 'p/u', { parts: [] }, { principal: 'someone', perPrincipal: 0, perRepository: 0 });
    expect(await meta.uploads.advance(id, 0, 5, { parts: [1] })).toBe(true);
    expect(await meta.uploads.advance(id, 0, 9, { parts: [2] })).toBe(false);
    expect(await meta.uploads.get(id, 'p/u')).toMatchObject({ size: 5, state: { parts: [1] } });
    expect(await meta.uploads.get(id, 'p/other')).toBeUndefined();
  });

  it('caps open upload sessions per repository and per principal, in the statement that opens one', async () => {
    const caps = (principal: string) => ({ principal, perPrincipal: 3, perRepository: 2 });
    const id = (n: number) => `00000000-0000-4000-8000-1000000000${String(n).padStart(2, '0')}`;
    expect(await meta.uploads.create(id(1), 'p/capped', {}, caps('ann'))).toBeUndefined();
    expect(await meta.uploads.create(id(2), 'p/capped', {}, caps('bo'))).toBeUndefined();
    expect(await meta.uploads.create(id(3), 'p/capped', {}, caps('ann'))).toBe('repository');
    expect(await meta.uploads.create(id(4), 'p/capped-2', {}, caps('ann'))).toBeUndefined();
    expect(await meta.uploads.create(id(5), 'p/capped-3', {}, caps('ann'))).toBeUndefined();
    expect(await meta.uploads.create(id(6), 'p/capped-3', {}, caps('ann'))).toBe('principal');
    expect(await meta.uploads.exists(id(3))).toBe(false);
    expect(await meta.uploads.exists(id(6))).toBe(false);
    // No cap: no count.
    expect(await meta.uploads.create(id(7), 'p/capped', {}, { principal: 'ann', perPrincipal: 0, perRepository: 0 })).toBeUndefined();
    expect(await sql.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'on' }]);
    for (const n of [1, 2, 4, 5, 7]) expect(await meta.uploads.delete(id(n))).toBe(true);
  });

  it('lists repositories in byte order with paging', async () => {
    expect(await meta.repositories.list({})).toEqual(['p/a', 'p/b', 'p/m', 'p/r', 'p/x']);
    expect(await meta.repositories.list({ n: 1, last: 'p/a' })).toEqual(['p/b']);
  });

  it('finds for a blob request the linked blob, else the manifest of that digest, in one statement', async () => {
    const content = Buffer.from('{"schemaVersion":2,"as":"blob"}');
    await meta.manifests.put({ repository: 'p/bm', digest: d('8'), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobs: [], manifests: [] });
    const manifest = await meta.manifests.blobOrManifest('p/bm', d('8'), true);
    expect(manifest && 'manifest' in manifest && manifest.manifest.content?.equals(content)).toBe(true);
    expect(await meta.manifests.blobOrManifest('p/bm', d('8'), false)).toEqual({ manifest: { digest: d('8'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: content.length, subject: null } });
    await meta.blobs.link('p/bm', d('9'), 123);
    expect(await meta.manifests.blobOrManifest('p/bm', d('9'), true)).toEqual({ linkedSize: 123 });
    // The same bytes pushed as a blob too: the linked blob answers, as before.
    await meta.blobs.link('p/bm', d('8'), content.length);
    expect(await meta.manifests.blobOrManifest('p/bm', d('8'), true)).toEqual({ linkedSize: content.length });
    expect(await meta.manifests.blobOrManifest('p/other', d('9'), true)).toEqual({ referenced: false });
    expect(await meta.manifests.blobOrManifest('p/bm', d('7'), false)).toEqual({ referenced: false });
  });

  it('says for a proxy project\'s miss whether a manifest of the repository names the digest as a blob', async () => {
    await meta.blobs.link('p/named', d('a'), 5);
    const content = Buffer.from('{"schemaVersion":2,"layers":"named"}');
    await meta.manifests.put({ repository: 'p/named', digest: d('b'), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobs: [d('a')], manifests: [] });
    expect(await meta.blobs.unlink('p/named', d('a'))).toBe(true);
    // Named by the manifest, no longer linked: asked, it is a referenced miss; not asked, a plain one.
    expect(await meta.manifests.blobOrManifest('p/named', d('a'), true, true)).toEqual({ referenced: true });
    expect(await meta.manifests.blobOrManifest('p/named', d('a'), true)).toEqual({ referenced: false });
    expect(await meta.manifests.blobOrManifest('p/elsewhere', d('a'), true, true)).toEqual({ referenced: false });
    // A hit answers as before, asked or not.
    expect(await meta.manifests.blobOrManifest('p/named', d('b'), false, true)).toMatchObject({ manifest: { digest: d('b') } });
  });
});

describe('migrations on PostgreSQL with replicas starting together', () => {
  it('apply exactly once under the advisory lock', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    const pools = await Promise.all(Array.from({ length: 5 }, () => openPg(url)));
    try {
      const versions = (await loadMigrations()).map((m) => m.version);
      const applied = await Promise.all(pools.map((p) => migrate(p)));
      expect(applied.flat()).toEqual(versions);
      const rows = await pools[0]!.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(versions);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });
});

describe('prepared statements on PostgreSQL', () => {
  it('keep answering when another replica changes a table under them', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    const mine = await openPg(url, { max: 1 });
    const other = await openPg(url, { max: 1 });
    try {
      await mine.query('CREATE TABLE things (id int PRIMARY KEY, name text)');
      await mine.query("INSERT INTO things VALUES (1, 'one')");
      const select = 'SELECT * FROM things WHERE id = $1';
      expect(await mine.query(select, [1])).toEqual([{ id: 1, name: 'one' }]);
      // A rolling upgrade's migration, run by another replica, adds a column.
      await other.query("ALTER TABLE things ADD COLUMN colour text NOT NULL DEFAULT 'red'");
      expect(await mine.query(select, [1])).toEqual([{ id: 1, name: 'one', colour: 'red' }]);
      // Inside a transaction the first attempt fails (the transaction is aborted); the retry runs unprepared.
      await other.query('ALTER TABLE things ADD COLUMN size int NOT NULL DEFAULT 3');
      const inTx = 'SELECT * FROM things WHERE id = $1 FOR UPDATE';
      await mine.transaction((tx) => tx.query(inTx, [1]));
      await other.query('ALTER TABLE things ADD COLUMN weight int NOT NULL DEFAULT 4');
      await expect(mine.transaction((tx) => tx.query(inTx, [1]))).rejects.toThrow(/cached plan must not change result type/);
      expect(await mine.transaction((tx) => tx.query(inTx, [1]))).toEqual([{ id: 1, name: 'one', colour: 'red', size: 3, weight: 4 }]);
    } finally {
      await mine.close();
      await other.close();
    }
  });
});

describe('concurrent pushes of one new blob on PostgreSQL', () => {
  it('both reservations cover the row, even when the later insert began first', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    const [first, second] = [await openPg(url), await openPg(url)];
    try {
      await migrate(first);
      const [a, b] = [metadataOn(first), metadataOn(second)];
      const digest = d('e');
      const reservedB = await second.transaction(async (tx) => {
        // B's transaction (and its now()) starts before A inserts the row.
        await tx.query('SELECT now()');
        await new Promise((r) => setTimeout(r, 20));
        const reservedA = await a.blobs.reserve(digest, 3);
        expect(await a.blobs.linkReserved('p/first', digest, reservedA!)).toBe('linked');
        return b.blobs.reserve(digest, 3, 0, tx);
      });
      expect(reservedB).toBeDefined();
      expect(await b.blobs.linkReserved('p/second', digest, reservedB!)).toBe('linked');
    } finally {
      await first.close();
      await second.close();
    }
  });
});

describe('PGlite on its own thread', () => {
  let dir: string;
  let sql: Sql;

  afterAll(async () => {
    await sql?.close();
    if (dir) await removeDir(dir);
  });

  it('runs concurrent first uses of one statement in call order, each with its own rows', async () => {
    dir = await tempDir();
    sql = await openPglite(join(dir, 'db'));
    await sql.query('CREATE TABLE t (n int PRIMARY KEY, label text)');
    const inserts = Array.from({ length: 20 }, (_, n) => sql.query('INSERT INTO t (n, label) VALUES ($1, $2) RETURNING n, label', [n, `#${n}`]));
    const rows = await Promise.all(inserts);
    expect(rows.map((r) => r[0])).toEqual(Array.from({ length: 20 }, (_, n) => ({ n, label: `#${n}` })));
    expect(await sql.query('SELECT count(*)::int AS c FROM t WHERE n = $1 OR $1 IS NULL', [null])).toEqual([{ c: 20 }]);
  });

  it('fails a statement that does not parse every time, with the server error, without breaking later ones', async () => {
    for (let i = 0; i < 2; i++) await expect(sql.query('SELEC n FROM t WHERE n = $1', [1])).rejects.toMatchObject({ code: '42601' });
    expect(await sql.query('SELECT label FROM t WHERE n = $1', [3])).toEqual([{ label: '#3' }]);
  });

  it('keeps a statement made outside a transaction out of it, even when the transaction rolls back', async () => {
    let inserted!: () => void;
    let rollBack!: () => void;
    const insideDone = new Promise<void>((resolve) => (inserted = resolve));
    const rollingBack = new Promise<void>((resolve) => (rollBack = resolve));
    const rolledBack = sql.transaction(async (tx) => {
      await tx.query('INSERT INTO t (n, label) VALUES ($1, $2)', [100, 'inside']);
      inserted();
      await rollingBack;
      throw new Error('abort the transaction');
    });
    // Issued while the transaction is open (it has written and not ended yet).
    await insideDone;
    const outside = sql.query('INSERT INTO t (n, label) VALUES ($1, $2)', [101, 'outside']);
    rollBack();
    await expect(rolledBack).rejects.toThrow('abort the transaction');
    await outside;
    expect(await sql.query('SELECT n FROM t WHERE n >= $1 ORDER BY n', [100])).toEqual([{ n: 101 }]);
  });

  it('answers statements posted around a garbage collection request in order, each with its own rows', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => {
        sql.collectGarbage!();
        return sql.query('SELECT label FROM t WHERE n = $1', [n]);
      }),
    );
    expect(results).toEqual(Array.from({ length: 6 }, (_, n) => [{ label: `#${n}` }]));
  });

  it('fails pending and later statements with DatabaseUnavailableError when the thread dies', async () => {
    // A fresh directory without initdb: PGlite initializes it in the thread (slow, but real).
    const thread = await DatabaseThread.start(join(dir, 'db2'), []);
    const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const pending = thread.exchange(serialize.query('SELECT pg_sleep(2)'));
    await worker.terminate();
    await expect(pending).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(thread.exchange(Buffer.from([]))).rejects.toThrow(/embedded database thread stopped/);
  });
});

describe('links into a limited project on PostgreSQL, many at once', () => {
  let sql: Sql | undefined;

  afterAll(async () => {
    await sql?.close();
  });

  it('do not deadlock between the project check and the quota admission', async () => {
    sql = await openPg(await createTestDatabase(inject('pgAdminUrl')), { max: 6 });
    await migrate(sql);
    const meta = metadataOn(sql);
    await meta.projects.upsert('limited', { storageLimit: 1_000_000 });
    const admit = async (tx: Queryable) => {
      // A pause, so that the links overlap between the project check and this lock (the quota admission's).
      await tx.query('SELECT pg_sleep(0.05)');
      await tx.query('SELECT 1 FROM projects WHERE name = $1 FOR UPDATE', ['limited']);
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => meta.blobs.link(`limited/r${i}`, d(String(i)), 1, admit, undefined, undefined, true)));
    for (let i = 0; i < 6; i++) expect(await meta.blobs.linkedSize(`limited/r${i}`, d(String(i)))).toBe(1);
  });
});
