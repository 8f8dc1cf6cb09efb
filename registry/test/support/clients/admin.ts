// The registry as its administrator sees it, for client tests under token auth: set up
// projects, users and robots through the management API, and read back what a client
// stored through /v2 with an admin token.
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { OCI_MANIFEST, RegistryClient, type Image } from '../oci.js';
import { TEST_ADMIN_PASSWORD } from '../registry.js';

/** A robot account or a local user, as a client signs in with it. */
export interface Account {
  username: string;
  password: string;
}

export const ADMIN: Account = { username: 'admin', password: TEST_ADMIN_PASSWORD };

export const basic = (account: Account) => `Basic ${Buffer.from(`${account.username}:${account.password}`).toString('base64')}`;

/** Reads and writes /v2 as the admin, fetching (and caching) a token per repository from /token. */
export class AdminClient extends RegistryClient {
  private readonly tokens = new Map<string, string>();

  private async token(scope: string): Promise<string> {
    const cached = this.tokens.get(scope);
    if (cached) return cached;
    const res = await fetch(`${this.base}/token?scope=${encodeURIComponent(scope)}`, { headers: { Authorization: basic(ADMIN) } });
    const body = (await res.json()) as { token?: string };
    if (res.status !== 200 || !body.token) throw new Error(`admin token for ${scope}: ${res.status} ${JSON.stringify(body)}`);
    this.tokens.set(scope, body.token);
    return body.token;
  }

  override async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const repo = /^\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)\//.exec(path)?.[1];
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${await this.token(repo ? `repository:${repo}:pull,push` : 'registry:catalog:*')}`);
    return super.fetch(path, { ...init, headers });
  }

  /** The management API, called with the admin's Basic credentials; throws on a status of 300 or more. */
  async manage<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: { Authorization: basic(ADMIN), ...(body !== undefined && { 'Content-Type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} /api/v1${path}: ${res.status} ${text}`);
    return { status: res.status, body: JSON.parse(text) as T };
  }

  async createProject(name: string, isPublic: boolean): Promise<void> {
    await this.manage('PUT', `/projects/${name}`, { public: isPublic });
  }

  /** A project robot with repository permissions `actions`; returns its name and secret. */
  async createRobot(project: string, name: string, actions: string[]): Promise<Account> {
    const { status, body } = await this.manage<{ robot: { name: string }; secret: string }>('PUT', `/projects/${project}/robots/${name}`, {
      permissions: [{ access: actions.map((action) => ({ resource: 'repository', action })) }],
    });
    expect(status).toBe(201);
    expect(body.robot.name).toBe(`robot$${project}+${name}`);
    return { username: body.robot.name, password: body.secret };
  }

  /** A local user with a generated password, member of `project` with `role`. */
  async createUser(username: string, project: string, role: string): Promise<Account> {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    await this.manage('PUT', `/users/${username}`, { password, admin: false });
    await this.manage('PUT', `/projects/${project}/members/${username}`, { role });
    return { username, password };
  }

  async tags(repo: string): Promise<string[]> {
    const res = await this.fetch(`/v2/${repo}/tags/list`);
    const body = (await res.json()) as { tags?: string[] | null; errors?: { code: string }[] };
    if (res.status === 404 && body.errors?.[0]?.code === 'NAME_UNKNOWN') return [];
    if (res.status !== 200) throw new Error(`GET /v2/${repo}/tags/list: ${res.status} ${JSON.stringify(body)}`);
    return body.tags ?? [];
  }

  /** The digest `repo:reference` resolves to; undefined when the registry answers 404. */
  async digest(repo: string, reference: string, accept = OCI_MANIFEST): Promise<string | undefined> {
    const res = await this.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: accept } });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`HEAD /v2/${repo}/manifests/${reference}: ${res.status}`);
    return res.headers.get('docker-content-digest') ?? '';
  }

  /** The manifest `repo:reference` resolves to, parsed, with its digest and media type. */
  async manifest<T = Record<string, unknown>>(repo: string, reference: string): Promise<{ digest: string; mediaType: string; body: T }> {
    const accept = [OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
    const res = await this.fetch(`/v2/${repo}/manifests/${reference}`, { headers: { Accept: accept } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /v2/${repo}/manifests/${reference}: ${res.status} ${text}`);
    return { digest: res.headers.get('docker-content-digest') ?? '', mediaType: res.headers.get('content-type') ?? '', body: JSON.parse(text) as T };
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    if (res.status !== 200 && res.status !== 404) throw new Error(`HEAD /v2/${repo}/blobs/${digest}: ${res.status}`);
    return res.status === 200;
  }

  /** The referrers of `digest` in `repo`, as the registry lists them. */
  async referrers(repo: string, digest: string): Promise<{ digest: string; artifactType?: string; mediaType: string }[]> {
    const res = await this.fetch(`/v2/${repo}/referrers/${digest}`);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /v2/${repo}/referrers/${digest}: ${res.status} ${text}`);
    return (JSON.parse(text) as { manifests: { digest: string; artifactType?: string; mediaType: string }[] }).manifests;
  }

  /** The registry serves `img` under `repo:tag` byte-exact: manifest, config and every layer. */
  async expectImage(repo: string, tag: string, img: Image): Promise<void> {
    const res = await this.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { Accept: img.mediaType } });
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status, bytes.toString()).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(img.manifest.digest);
    expect(bytes.equals(img.manifest.data)).toBe(true);
    for (const blob of [img.config, ...img.layers]) expect((await this.getBlob(repo, blob.digest)).equals(blob.data), blob.digest).toBe(true);
  }

  /** A refused push stored nothing: no tag, no manifest, no blob of `img` in `repo`. */
  async expectNothingStored(repo: string, tag: string, img: Image): Promise<void> {
    expect(await this.tags(repo)).not.toContain(tag);
    expect(await this.digest(repo, img.manifest.digest)).toBeUndefined();
    for (const blob of [img.config, ...img.layers]) expect(await this.hasBlob(repo, blob.digest), `blob ${blob.digest} in ${repo}`).toBe(false);
  }
}
