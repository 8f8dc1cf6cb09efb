import { cp, readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REGISTRY_NODE_FLAGS } from '../../../src/node-flags.js';
import { basic } from '../../support/auth.js';
import { blobOf, buildImage, type Blob, type Image } from '../../support/oci.js';
import { spawnRegistry, type RegistryProcess } from '../../support/process.js';
import { PushClient } from '../../support/push.js';
import { removeDir, tempDir, TEST_ADMIN_PASSWORD } from '../../support/registry.js';
import type { Vocabulary } from './arbitraries.js';
import type { Principal } from './case.js';
import { forgeTokens } from './forgery.js';
import { LogReader } from './logs.js';

export const SERVICE = 'wharf-fuzz';
export const ISSUER = 'wharf-fuzz-issuer';
/** The account the harness observes state with; the fuzz never names it, so it cannot lock or change it. */
const OBSERVER = { username: 'fuzz-observer', password: 'fuzz-observer-password' };
const USER = { username: 'alice', password: 'alice-password-1' };
const ROBOT_PROJECT = 'team';
const ROBOT_SHORT = 'ci';
const SYSTEM_ROBOT = 'sys';
export const PROJECTS = { pub: { public: true }, team: { public: false }, priv: { public: false } } as const;
const IMAGES = [
  { repository: 'pub/app', tag: 'v1' },
  { repository: 'team/app', tag: 'v1' },
  { repository: 'team/app', tag: 'v2' },
  { repository: 'priv/app', tag: 'v1' },
] as const;
const REPOSITORIES = [...new Set(IMAGES.map((i) => i.repository))];

export interface TargetOptions {
  /** PostgreSQL DSN; the embedded PGlite (seeded from the run's template) when absent. */
  databaseUrl?: string;
  pgliteTemplate?: string;
}

interface JsonResponse {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * A real registry process (token auth, filesystem storage) with a small world in it:
 * a public, a team and a private project with images, an ordinary user who develops in
 * the team project, a project robot and a system robot, an open upload session, a
 * referrer and a garbage collection run; plus the credentials of every principal.
 */
export class FuzzTarget {
  readonly logs: LogReader;
  private readonly refresh = new Map<Principal, string>();
  private readonly standing = new Map<Principal, string>();
  private robotSecret = '';
  private observerToken = '';
  private observerAuth = '';
  private observerRefresh = '';
  forgeries = new Map<string, string>();
  vocabulary!: Vocabulary;
  private images = new Map<string, Image>();
  private referrer!: Blob;
  private readonly empty = blobOf('{}');
  /** updatedAt of the accounts the principals depend on, to notice when the fuzz changed them. */
  private accountStamps = new Map<string, string>();

  private constructor(
    readonly registry: RegistryProcess,
    readonly dataDir: string,
  ) {
    this.logs = new LogReader(registry.child.stdout!);
  }

  static async start(options: TargetOptions): Promise<FuzzTarget> {
    const dataDir = await tempDir('wharf-fuzz-');
    if (!options.databaseUrl) await cp(options.pgliteTemplate!, join(dataDir, 'metadata'), { recursive: true });
    const registry = await spawnRegistry({
      dataDir,
      nodeFlags: REGISTRY_NODE_FLAGS,
      env: {
        WHARF_AUTH_MODE: 'token',
        WHARF_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
        WHARF_AUTH_SERVICE: SERVICE,
        WHARF_AUTH_ISSUER: ISSUER,
        WHARF_TOKEN_TTL_SECONDS: '3600',
        // Nothing may change state behind the fuzz's back: no scheduled collection or purge.
        WHARF_GC_SCHEDULE: 'off',
        WHARF_UPLOAD_PURGE_SCHEDULE: 'off',
        // Info level: the error handler's line for a 5xx is sometimes written there (issue 16, item 3).
        WHARF_LOG_LEVEL: 'info',
        ...(options.databaseUrl && { WHARF_DATABASE_URL: options.databaseUrl }),
      },
    });
    const target = new FuzzTarget(registry, dataDir);
    try {
      await target.setUp();
    } catch (err) {
      await target.stop();
      throw new Error(`fuzz target set-up failed: ${(err as Error).message}\n${registry.output().slice(-4000)}`);
    }
    return target;
  }

  get url(): string {
    return this.registry.url;
  }

  get pid(): number {
    return this.registry.child.pid!;
  }

  async stop(): Promise<void> {
    await this.registry.stop();
    await removeDir(this.dataDir);
  }

  /** Whether the process runs and /healthz answers 200. */
  async alive(): Promise<boolean> {
    if (this.registry.child.exitCode !== null || this.registry.child.signalCode !== null) return false;
    return fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(5000) }).then(
      (r) => r.status === 200,
      () => false,
    );
  }

  /** Resident set size of the registry process, from /proc. */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }

  // ---- HTTP helpers of the harness (from 127.0.0.1; the fuzz sends from another address) ----

  private async call(method: string, path: string, options: { auth?: string; json?: unknown; form?: URLSearchParams; body?: Buffer; contentType?: string } = {}): Promise<JsonResponse> {
    const headers: Record<string, string> = {};
    if (options.auth) headers.Authorization = options.auth;
    let body: string | Buffer | undefined;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = options.form.toString();
    } else if (options.body) {
      headers['Content-Type'] = options.contentType ?? 'application/octet-stream';
      body = options.body;
    }
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${this.url}${path}`, { method, headers, ...(body !== undefined && { body }), redirect: 'manual', signal: AbortSignal.timeout(30_000) });
      const text = await res.text();
      // Login throttling (issue 16, item 4) may hold the harness back too: wait as told.
      if (res.status === 429 && attempt < 5) {
        await new Promise((r) => setTimeout(r, Math.min(10, Number(res.headers.get('retry-after') ?? 1)) * 1000));
        continue;
      }
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed, headers: res.headers };
    }
  }

  private async ok(method: string, path: string, options: Parameters<FuzzTarget['call']>[2] = {}): Promise<any> {
    const res = await this.call(method, path, options);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** The management API as the observer (a bearer token when the API takes one, Basic otherwise). */
  private api(method: string, path: string, json?: unknown): Promise<any> {
    return this.ok(method, `/api/v1${path}`, { auth: this.observerAuth, ...(json !== undefined && { json }) });
  }

  private async tokenFor(credentials: string | undefined, scopes: string[], offline = false): Promise<{ token: string; refresh?: string }> {
    const query = new URLSearchParams({ service: SERVICE });
    for (const s of scopes) query.append('scope', s);
    if (offline) query.set('offline_token', 'true');
    const body = await this.ok('GET', `/token?${query}`, credentials ? { auth: credentials } : {});
    return { token: body.token, ...(body.refresh_token && { refresh: body.refresh_token }) };
  }

  standingToken(principal: Principal): string {
    return this.standing.get(principal)!;
  }

  refreshToken(principal: Principal): string {
    return this.refresh.get(principal) ?? '';
  }

  basicOf(principal: Exclude<Principal, 'anonymous'>): string {
    if (principal === 'admin') return basic('admin', TEST_ADMIN_PASSWORD);
    if (principal === 'user') return basic(USER.username, USER.password);
    return basic(`robot$${ROBOT_PROJECT}+${ROBOT_SHORT}`, this.robotSecret);
  }

  // ---- the world ----

  private async setUp(): Promise<void> {
    const admin = basic('admin', TEST_ADMIN_PASSWORD);
    await this.ok('PUT', `/api/v1/users/${OBSERVER.username}`, { auth: admin, json: { password: OBSERVER.password, admin: true } });
    const observerBasic = basic(OBSERVER.username, OBSERVER.password);
    this.observerRefresh = (await this.tokenFor(observerBasic, [], true)).refresh!;
    const viaToken = (await this.tokenFor(observerBasic, [])).token;
    // Issue 16 (item 5) may make the management API refuse tokens without a management scope.
    this.observerAuth = (await this.call('GET', '/api/v1/users', { auth: `Bearer ${viaToken}` })).status === 200 ? `Bearer ${viaToken}` : observerBasic;

    for (const [name, spec] of Object.entries(PROJECTS)) await this.api('PUT', `/projects/${name}`, spec);
    await this.ensureAccounts(true);

    this.observerToken = (await this.observerTokenFor(REPOSITORIES)).token;
    const pusher = new PushClient(this.url, this.observerToken);
    for (const { repository, tag } of IMAGES) {
      const image = this.images.get(repository) ?? (await buildImage({ layers: 1, payloadSize: 256 }));
      this.images.set(repository, image);
      await pusher.pushImage(repository, tag, image);
    }
    // A referrer of team/app:v1, so the referrers route has something to list.
    const subject = this.images.get('team/app')!.manifest;
    await pusher.pushBlob('team/app', this.empty);
    this.referrer = blobOf(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: this.empty.digest, size: this.empty.size },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: this.empty.digest, size: this.empty.size }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: subject.size },
      }),
    );
    await pusher.pushManifest('team/app', this.referrer.digest, this.referrer, 'application/vnd.oci.image.manifest.v1+json');

    const session = await this.call('POST', '/v2/team/app/blobs/uploads/', { auth: `Bearer ${this.observerToken}` });
    const uploadId = String(session.headers.get('docker-upload-uuid'));
    await this.ok('PATCH', new URL(session.headers.get('location')!, this.url).pathname, { auth: `Bearer ${this.observerToken}`, body: Buffer.from('partial upload'), contentType: 'application/octet-stream' });
    const gc = await this.api('POST', '/gc', { dryRun: true });
    await this.settleJobs();

    await this.mintPrincipalTokens();
    const userToken = this.standing.get('user')!;
    this.forgeries = await forgeTokens({
      keyFile: join(this.dataDir, 'token-signing-key.pem'),
      settings: { issuer: ISSUER, service: SERVICE },
      repositories: REPOSITORIES,
      userToken,
      refreshToken: this.refresh.get('user')!,
    });

    const images = [...this.images.values()];
    this.vocabulary = {
      service: SERVICE,
      projects: Object.keys(PROJECTS),
      repositories: REPOSITORIES,
      tags: [...new Set(IMAGES.map((i) => i.tag))],
      digests: [...images.flatMap((i) => [i.manifest.digest, i.config.digest, ...i.layers.map((l) => l.digest)]), this.referrer.digest, this.empty.digest],
      blobs: [...images.flatMap((i) => [i.config, ...i.layers]), this.empty].map((b) => ({ digest: b.digest, data: b.data })),
      manifests: [...images.map((i) => ({ digest: i.manifest.digest, data: i.manifest.data, mediaType: i.mediaType })), { digest: this.referrer.digest, data: this.referrer.data, mediaType: 'application/vnd.oci.image.manifest.v1+json' }],
      uploadIds: [uploadId],
      usernames: ['admin', USER.username, 'nobody'],
      robots: [ROBOT_SHORT, `robot$${ROBOT_PROJECT}+${ROBOT_SHORT}`, SYSTEM_ROBOT, `robot$${SYSTEM_ROBOT}`],
      gcIds: [gc.id],
      forgeries: [...this.forgeries.keys()],
    };
  }

  private observerTokenFor(repositories: string[]) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', service: SERVICE, refresh_token: this.observerRefresh });
    form.append('scope', 'registry:catalog:*');
    for (const r of repositories) form.append('scope', `repository:${r}:pull,push,delete`);
    return this.ok('POST', '/token', { form }) as Promise<{ token: string }>;
  }

  /**
   * The ordinary user, their membership, the project robot and the system robot, as the
   * principals need them; re-created when the fuzz changed or removed them (an accepted
   * request may do that: a password change, a deleted robot).
   */
  private async ensureAccounts(force = false): Promise<boolean> {
    let changed = false;
    const users = await this.list('/users');
    const stamp = (key: string, value: string | undefined) => {
      const same = value !== undefined && this.accountStamps.get(key) === value;
      return !same;
    };
    const admin = users.find((u: any) => u.username === 'admin');
    if (force || !admin?.admin || stamp('user admin', admin?.updatedAt)) {
      const body = await this.api('PUT', '/users/admin', { password: TEST_ADMIN_PASSWORD, admin: true });
      this.accountStamps.set('user admin', body.updatedAt);
      changed = true;
    }
    const user = users.find((u: any) => u.username === USER.username);
    if (force || !user || user.admin || stamp('user alice', user.updatedAt)) {
      const body = await this.api('PUT', `/users/${USER.username}`, { password: USER.password, admin: false });
      this.accountStamps.set('user alice', body.updatedAt);
      changed = true;
    }
    const members = (await this.api('GET', `/projects/${ROBOT_PROJECT}/members`)).items as { username: string; role: string }[];
    if (!members.some((m) => m.username === USER.username && m.role === 'developer')) {
      await this.api('PUT', `/projects/${ROBOT_PROJECT}/members/${USER.username}`, { role: 'developer' });
      changed = true;
    }
    const robotPermissions = { permissions: [{ access: [{ resource: 'repository', action: 'pull' }, { resource: 'repository', action: 'push' }] }] };
    const robot = await this.call('GET', `/api/v1/projects/${ROBOT_PROJECT}/robots/${ROBOT_SHORT}`, { auth: this.observerAuth });
    if (force || robot.status !== 200 || robot.body.disabled || stamp('robot', robot.body.updatedAt)) {
      if (robot.status === 200) await this.api('DELETE', `/projects/${ROBOT_PROJECT}/robots/${ROBOT_SHORT}`);
      const created = await this.api('PUT', `/projects/${ROBOT_PROJECT}/robots/${ROBOT_SHORT}`, robotPermissions);
      this.robotSecret = created.secret;
      this.accountStamps.set('robot', created.robot.updatedAt);
      changed = true;
    }
    const system = await this.call('GET', `/api/v1/robots/${SYSTEM_ROBOT}`, { auth: this.observerAuth });
    if (system.status !== 200) {
      await this.api('PUT', `/robots/${SYSTEM_ROBOT}`, { permissions: [{ namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }] });
      changed = true;
    }
    return changed;
  }

  private async mintPrincipalTokens(): Promise<void> {
    const everything = ['registry:catalog:*', ...REPOSITORIES.map((r) => `repository:${r}:*`)];
    const user = await this.tokenFor(basic(USER.username, USER.password), everything, true);
    this.refresh.set('user', user.refresh!);
    this.standing.set('user', user.token);
    const robot = await this.tokenFor(this.basicOf('robot'), everything, true);
    this.refresh.set('robot', robot.refresh!);
    this.standing.set('robot', robot.token);
    const admin = await this.tokenFor(basic('admin', TEST_ADMIN_PASSWORD), everything, true);
    this.refresh.set('admin', admin.refresh!);
    this.standing.set('admin', admin.token);
    this.standing.set('anonymous', (await this.tokenFor(undefined, everything)).token);
  }

  /**
   * Puts back what the principals and the generators rely on: accounts, projects, the
   * images' tags. Called between batches, never inside one.
   */
  async restore(): Promise<void> {
    const projects = await this.list('/projects');
    for (const [name, spec] of Object.entries(PROJECTS)) {
      const p = projects.find((x: any) => x.name === name);
      if (!p || p.public !== spec.public) await this.api('PUT', `/projects/${name}`, spec);
      if (p && p.storageLimit !== -1) await this.api('PUT', `/projects/${name}/quota`, { limitBytes: -1 });
    }
    if (await this.ensureAccounts()) await this.mintPrincipalTokens();
    this.observerToken = (await this.observerTokenFor(REPOSITORIES)).token;
    const pusher = new PushClient(this.url, this.observerToken);
    for (const { repository, tag } of IMAGES) {
      const image = this.images.get(repository)!;
      const res = await this.call('HEAD', `/v2/${repository}/manifests/${tag}`, { auth: `Bearer ${this.observerToken}` });
      if (res.status !== 200 || res.headers.get('docker-content-digest') !== image.manifest.digest) await pusher.pushImage(repository, tag, image);
    }
    await this.settleJobs();
  }

  /** Waits until no garbage collection run is queued or running (a fuzzed POST /gc may have queued one). */
  async settleJobs(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runs = (await this.api('GET', '/gc?limit=100')).items as { state: string }[];
      if (!runs.some((r) => r.state === 'queued' || r.state === 'running')) return;
      if (Date.now() > deadline) throw new Error('garbage collection runs did not finish');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async list(path: string): Promise<any[]> {
    const items: any[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.api('GET', `${path}?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      items.push(...page.items);
      if (!page.next) return items;
      after = page.next;
    }
  }

  /**
   * Everything a request could change, as the API shows it (plus the blob store's files):
   * projects with quota and usage, members, project and system robots, users, garbage
   * collection runs, repositories with their tags and digests, referrers, the open upload
   * session. Not the audit log: refused logins are rightly recorded there.
   */
  async snapshot(): Promise<Record<string, unknown>> {
    const projects = await this.list('/projects');
    const snapshot: Record<string, unknown> = {
      projects: projects.map(({ id, name, public: isPublic, storageLimit, usedBytes, updatedAt }) => ({ id, name, public: isPublic, storageLimit, usedBytes, updatedAt })),
      users: (await this.list('/users')).map(({ id, username, admin, updatedAt }) => ({ id, username, admin, updatedAt })),
      systemRobots: await this.list('/robots'),
      gcRuns: ((await this.api('GET', '/gc?limit=100')).items as { id: string; dryRun: boolean; deleteUntagged: boolean }[]).map(({ id, dryRun, deleteUntagged }) => ({ id, dryRun, deleteUntagged })),
    };
    for (const p of projects) {
      snapshot[`project ${p.name}`] = {
        members: (await this.api('GET', `/projects/${p.name}/members`)).items,
        robots: await this.list(`/projects/${p.name}/robots`),
        quota: await this.api('GET', `/projects/${p.name}/quota`),
      };
    }
    const catalog: string[] = [];
    let last: string | undefined;
    for (;;) {
      const token = (await this.observerTokenFor([])).token;
      const page = await this.ok('GET', `/v2/_catalog?n=1000${last ? `&last=${encodeURIComponent(last)}` : ''}`, { auth: `Bearer ${token}` });
      catalog.push(...page.repositories);
      if (page.repositories.length < 1000) break;
      last = page.repositories[page.repositories.length - 1];
    }
    const token = `Bearer ${(await this.observerTokenFor(catalog)).token}`;
    for (const repository of catalog) {
      const tags = await this.call('GET', `/v2/${repository}/tags/list?n=10000`, { auth: token });
      const digests: Record<string, string | number> = {};
      for (const tag of (tags.body?.tags ?? []) as string[]) {
        const head = await this.call('HEAD', `/v2/${repository}/manifests/${tag}`, { auth: token });
        digests[tag] = head.headers.get('docker-content-digest') ?? head.status;
      }
      snapshot[`repository ${repository}`] = { tags: tags.status === 200 ? digests : tags.status };
    }
    const subject = this.images.get('team/app')!.manifest.digest;
    snapshot.referrers = (await this.call('GET', `/v2/team/app/referrers/${subject}`, { auth: token })).body;
    const upload = await this.call('GET', `/v2/team/app/blobs/uploads/${this.vocabulary?.uploadIds[0] ?? ''}`, { auth: token });
    snapshot.upload = { status: upload.status, range: upload.headers.get('range') };
    snapshot.files = await this.files();
    return snapshot;
  }

  /** A change the snapshot must see (a positive control for the state property): a new project and a new blob. */
  async controlChange(): Promise<void> {
    await this.api('PUT', `/projects/fuzz-control-${Date.now()}`, { public: false });
    const token = (await this.observerTokenFor(['team/app'])).token;
    await new PushClient(this.url, token).pushBlob('team/app', blobOf(`control ${Date.now()}`));
  }

  /** The blob store's files with their sizes. */
  private async files(): Promise<Record<string, number>> {
    const root = join(this.dataDir, 'blobs');
    const out: Record<string, number> = {};
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' && dir !== root) return [];
        throw err;
      });
      for (const e of entries) {
        const path = join(dir, e.name);
        if (e.isDirectory()) await walk(path);
        else out[relative(root, path)] = (await stat(path).catch(() => ({ size: -1 }))).size;
      }
    };
    await walk(root);
    return out;
  }
}
