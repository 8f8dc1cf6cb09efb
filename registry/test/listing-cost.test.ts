import type { FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../src/auth/policy.js';
import { metadataOn, type Metadata } from '../src/metadata/index.js';
import type { Sql } from '../src/metadata/sql.js';
import { PreparedStatements } from '../src/metadata/statements.js';
import { AuditLog } from '../src/services/audit.js';
import { ListingService } from '../src/services/listings.js';
import { ProjectService } from '../src/services/projects.js';
import { PasswordHasher } from '../src/auth/passwords.js';
import { UserService } from '../src/services/users.js';
import { metadataDrivers } from './support/metadata-drivers.js';

/**
 * A page of a listing must cost the same whatever the total: one index range scan that
 * touches about as many rows as the page holds. Each listing below runs the way the
 * registry runs it (its prepared statements on one session) on small tables first, so
 * that any plan cached then is the one used later, as in a registry that grew after it
 * started; the tables then grow a hundredfold, and EXPLAIN (ANALYZE, BUFFERS) of every
 * statement the listing sent counts the rows and buffers it touched. Then ANALYZE gives
 * the planner statistics of skewed data (one large repository, project, ... among many
 * small ones), the statements are replanned on small ones, and the large ones are
 * counted again.
 */

const PAGE = 10;
const SMALL = 100;
const LARGE = 10_000;
/** Rows a page may read: the page and the row after it (which says whether more follow), twice, and a few lookups. */
const ROW_BOUND = 2 * (PAGE + 1) + 10;
/** Buffers a page may touch: a handful of index and heap pages per statement. */
const BUFFER_BOUND = 30;
/**
 * A page of projects also reports each project's usage and repository count (one statement for
 * the page): the projects' repositories lie on their own heap pages, about two buffers a project.
 */
const PROJECT_USAGE_BUFFERS = 2 * PAGE;

interface Statement {
  text: string;
  params: readonly unknown[];
}

/** An Sql that remembers every parameterized statement sent through it. */
function recording(sql: Sql): { sql: Sql; take: () => Statement[] } {
  let sent: Statement[] = [];
  const wrapped: Sql = {
    driver: sql.driver,
    query: (text, params) => {
      if (params) sent.push({ text, params });
      return sql.query(text, params);
    },
    transaction: (fn) => sql.transaction(fn),
    close: () => sql.close(),
  };
  return {
    sql: wrapped,
    take: () => {
      const taken = sent;
      sent = [];
      return taken;
    },
  };
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return `'${value.toISOString()}'`;
  if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]::text[]`;
  return `'${String(value).replace(/'/g, "''")}'`;
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}

interface Cost {
  rows: number;
  buffers: number;
  plans: string[];
}

/**
 * Rows read from tables and indexes: what every scan of a relation returned or
 * discarded (EXPLAIN reports per-loop figures), summed over the plan.
 */
function rowsRead(node: PlanNode): number {
  const removed = (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
  const own = node['Relation Name'] === undefined ? 0 : (node['Actual Rows'] + removed) * node['Actual Loops'];
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0);
}

function outline(node: PlanNode, depth = 0): string {
  const self = `${'  '.repeat(depth)}${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''} rows=${node['Actual Rows']} loops=${node['Actual Loops']}${node['Rows Removed by Filter'] ? ` removed=${node['Rows Removed by Filter']}` : ''}`;
  return [self, ...(node.Plans ?? []).map((child) => outline(child, depth + 1))].join('\n');
}

const names = new PreparedStatements();

/**
 * Runs each statement again under EXPLAIN (ANALYZE, BUFFERS) through the same prepared
 * statement, so with the plan the session has cached for it; fails if it is not prepared.
 */
async function costOf(sql: Sql, statements: Statement[]): Promise<Cost> {
  const cost: Cost = { rows: 0, buffers: 0, plans: [] };
  for (const { text, params } of statements) {
    const name = names.nameFor(text)!;
    const prepared = await sql.query('SELECT 1 FROM pg_prepared_statements WHERE name = $1', [name]);
    expect(prepared, `not a prepared statement of this session: ${text}`).toHaveLength(1);
    const rows = await sql.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE ${name}(${params.map(literal).join(', ')})`);
    const plan = rows[0]!['QUERY PLAN'][0]!.Plan;
    cost.rows += rowsRead(plan);
    cost.buffers += plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
    cost.plans.push(`${text}\n${outline(plan)}`);
  }
  return cost;
}

// One connection on PostgreSQL: the statements and their cached plans live on it. Statistics
// change only when this test says so (ANALYZE below), never by autovacuum in between.
const drivers = metadataDrivers({ pgConnections: 1, noAutovacuum: true });

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const MANIFEST = digest(1);
const SUBJECT = digest(2);

/**
 * Rows `from`..`to` of every listed table, as direct inserts (what pushes and the
 * management API would write): tags of big/app, repositories p<i>/app, manifests of
 * big/app (a few of them referrers of SUBJECT), projects, users and their memberships
 * in other projects, robots of project "team" and system robots, audit records.
 */
async function seed(sql: Sql, from: number, to: number): Promise<void> {
  const range = `generate_series(${from}, ${to}) AS i`;
  const pad = `lpad(i::text, 6, '0')`;
  await sql.query(`INSERT INTO tags (repository, name, digest) SELECT 'big/app', 't' || ${pad}, '${MANIFEST}' FROM ${range}`);
  await sql.query(`INSERT INTO repositories (name) SELECT 'p' || ${pad} || '/app' FROM ${range}`);
  await sql.query(
    `INSERT INTO manifests (repository, digest, media_type, content, subject)
     SELECT 'big/app', 'sha256:' || lpad(to_hex(1000000 + i), 64, '0'), 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d', CASE WHEN i % 1000 = 1 THEN '${SUBJECT}' END FROM ${range}`,
  );
  await sql.query(`INSERT INTO projects (id, name, public) SELECT gen_random_uuid(), 'p' || ${pad}, i % 1000 = 7 FROM ${range}`);
  await sql.query(`INSERT INTO users (id, username, password_hash) SELECT gen_random_uuid(), 'u' || ${pad}, '!' FROM ${range}`);
  await sql.query(
    `INSERT INTO members (project_id, user_id, role)
     SELECT p.id, u.id, 'guest' FROM projects p JOIN users u ON substr(u.username, 2) = substr(p.name, 2) WHERE u.username >= 'u' || lpad('${from}', 6, '0') AND u.username <= 'u' || lpad('${to}', 6, '0')`,
  );
  await sql.query(`INSERT INTO robots (id, name, project_id, secret_hash) SELECT gen_random_uuid(), 'robot$team+r' || ${pad}, (SELECT id FROM projects WHERE name = 'team'), '!' FROM ${range}`);
  await sql.query(`INSERT INTO robots (id, name, secret_hash) SELECT gen_random_uuid(), 'robot$s' || ${pad}, '!' FROM ${range}`);
  await sql.query(
    `INSERT INTO audit_log (actor, action, resource_type, resource, project, outcome)
     SELECT CASE WHEN i % 1000 = 3 THEN 'rare' ELSE 'u' || (i % 50) END, 'push', 'artifact', 'p' || ${pad} || '/app', CASE WHEN i % 1000 = 5 THEN 'team' END, 'success' FROM ${range}`,
  );
}

describe.each(drivers)('listing cost on $name', ({ open }) => {
  let sql: Sql;
  let cleanup: () => Promise<void>;
  let take: () => Statement[];
  let meta: Metadata;
  let listings: ListingService;
  let projects: ProjectService;
  let users: UserService;
  let teamId: string;
  const admin: Principal = { kind: 'user', id: '00000000-0000-0000-0000-000000000000', name: 'admin', admin: true, roles: new Map() };
  const member: Principal = { kind: 'user', id: '00000000-0000-0000-0000-000000000001', name: 'member', admin: false, roles: new Map([['team', 'developer'], ['p009990', 'guest']]) };
  // The catalog a user sees: the public projects and their own.
  const visible = () => new Set(['team', 'p009990', 'p000007', 'p001007']);
  const middle = (n: number) => String(Math.ceil(n / 2)).padStart(6, '0');

  /** Every listing, as the registry calls it, with a cursor in the middle of the large tables. */
  const listingsToCheck: Array<[string, () => Promise<unknown>]> = [
    ['tags, first page', () => listings.tags('big/app', { n: PAGE })],
    ['tags, after a cursor', () => listings.tags('big/app', { n: PAGE, last: `t${middle(LARGE)}` })],
    ['catalog, first page', () => listings.catalog({ n: PAGE })],
    ['catalog, after a cursor', () => listings.catalog({ n: PAGE, last: `p${middle(LARGE)}/app` })],
    ['catalog of a user, first page', () => listings.catalog({ n: PAGE }, visible())],
    ['catalog of a user, after a cursor', () => listings.catalog({ n: PAGE, last: 'p001007/app' }, visible())],
    ['referrers', () => listings.referrers('big/app', SUBJECT)],
    ['projects of an administrator', () => projects.list(admin, { limit: PAGE, after: `p${middle(LARGE)}` })],
    ['projects of a member', () => projects.list(member, { limit: PAGE })],
    ['projects of a member, after a cursor', () => projects.list(member, { limit: PAGE, after: 'p000007' })],
    ['members', () => projects.members(admin, 'team')],
    ['users', () => users.list(admin, { limit: PAGE })],
    ['users, after a cursor', () => users.list(admin, { limit: PAGE, after: `u${middle(LARGE)}` })],
    ["a project's robots", () => meta.robots.list(teamId, { limit: PAGE + 1, after: `robot$team+r${middle(LARGE)}` })],
    ['system robots', () => meta.robots.list(null, { limit: PAGE + 1, after: `robot$s${middle(LARGE)}` })],
    ['audit log', () => meta.audit.query({ limit: PAGE + 1 })],
    ['audit log, before a cursor', () => meta.audit.query({ limit: PAGE + 1, before: LARGE / 2 })],
    ["a project's audit log", () => meta.audit.query({ limit: PAGE + 1, project: 'team' })],
    ["an actor's audit log", () => meta.audit.query({ limit: PAGE + 1, actor: 'rare' })],
  ];

  beforeAll(async () => {
    const opened = await open();
    cleanup = opened.cleanup;
    const recorder = recording(opened.sql);
    sql = opened.sql;
    take = recorder.take;
    meta = metadataOn(recorder.sql);
    const audit = new AuditLog(meta.audit, { warn: () => undefined, error: () => undefined } as unknown as FastifyBaseLogger);
    listings = new ListingService(meta);
    projects = new ProjectService(meta, audit);
    // Listing users hashes nothing: a hasher whose derivation would fail proves it.
    users = new UserService(meta, audit, new PasswordHasher(() => Promise.reject(new Error('no hashing in listings'))));
    await sql.query(`INSERT INTO repositories (name) VALUES ('big/app'), ('team/app')`);
    await sql.query(`INSERT INTO manifests (repository, digest, media_type, content) VALUES ('big/app', '${MANIFEST}', 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d')`);
    const team = await meta.projects.upsert('team', {});
    if (!('project' in team)) throw new Error('team is managed elsewhere');
    teamId = team.project.id;
    await meta.projects.setMember(teamId, (await meta.users.upsert('member', { passwordHash: '!' })).user.id, 'developer');
    await seed(sql, 1, SMALL);
    for (let i = 0; i < 10; i++) for (const [, list] of listingsToCheck) await list();
    take();
    await seed(sql, SMALL + 1, LARGE);
  });

  afterAll(async () => {
    await sql?.close();
    await cleanup?.();
  });

  const check = async (label: string, list: () => Promise<unknown>) => {
    take();
    await list();
    const cost = await costOf(sql, take());
    const context = `${label}: ${cost.rows} rows, ${cost.buffers} buffers\n${cost.plans.join('\n\n')}`;
    expect(cost.rows, context).toBeLessThanOrEqual(ROW_BOUND);
    expect(cost.buffers, context).toBeLessThanOrEqual(BUFFER_BOUND + (label.startsWith('projects') ? PROJECT_USAGE_BUFFERS : 0));
  };

  describe('with the plans cached while the tables were small', () => {
    it.each(listingsToCheck)('%s touches about a page of rows', async (label, list) => check(label, list));
  });

  describe('after ANALYZE, replanned on small instances of skewed data', () => {
    beforeAll(async () => {
      await sql.query('ANALYZE');
      const small: Array<() => Promise<unknown>> = [
        () => listings.tags('p000001/app', { n: PAGE }),
        () => listings.tags('p000001/app', { n: PAGE, last: 'a' }),
        () => meta.robots.list(null, { limit: PAGE, after: 'robot$zzz' }),
        () => meta.audit.query({ limit: PAGE + 1, project: 'p000001' }),
        () => meta.audit.query({ limit: PAGE + 1, actor: 'nobody' }),
        () => listings.referrers('p000001/app', SUBJECT),
      ];
      for (let i = 0; i < 10; i++) {
        for (const list of small) await list();
        for (const [, list] of listingsToCheck) await list();
      }
    });

    it.each(listingsToCheck)('%s touches about a page of rows', async (label, list) => check(label, list));
  });
});
