import { TEST_ADMIN_PASSWORD } from './registry.js';

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export const ADMIN = basic('admin', TEST_ADMIN_PASSWORD);

/** A JSON client for /api/v1 with fixed credentials. */
export class ManagementClient {
  /** Every call made, as `METHOD /api/v1/path` (for API coverage checks). */
  readonly calls: string[] = [];

  /** `authorization: null` sends no credentials. */
  constructor(
    readonly base: string,
    readonly authorization: string | null = ADMIN,
  ) {}

  as(authorization: string | null): ManagementClient {
    const other = new ManagementClient(this.base, authorization);
    (other as { calls: string[] }).calls = this.calls;
    return other;
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    this.calls.push(`${method} /api/v1${path.split('?', 1)[0]}`);
    const res = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: { ...(this.authorization && { Authorization: this.authorization }), ...(body !== undefined && { 'Content-Type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const res = await this.call(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  project(name: string, spec: { public?: boolean; storageLimit?: number } = {}) {
    return this.ok('PUT', `/projects/${name}`, spec);
  }

  /** Creates a project robot with repository actions; returns its name and secret. */
  async robot(project: string, name: string, actions: string[], extra: Record<string, unknown> = {}): Promise<{ name: string; secret: string }> {
    const body = await this.ok('PUT', `/projects/${project}/robots/${name}`, {
      permissions: [{ access: actions.map((action) => ({ resource: 'repository', action })) }],
      ...extra,
    });
    return { name: body.robot.name, secret: body.secret };
  }

  user(username: string, password: string, admin = false) {
    return this.ok('PUT', `/users/${username}`, { password, admin });
  }

  member(project: string, username: string, role: string) {
    return this.ok('PUT', `/projects/${project}/members/${username}`, { role });
  }
}

/** Asks the token endpoint (GET) for `scopes`; credentials optional. */
export async function fetchToken(base: string, scopes: string[], credentials?: { username: string; password: string }, service = 'wharf-test'): Promise<{ status: number; token?: string; body: any }> {
  const query = new URLSearchParams({ service });
  for (const s of scopes) query.append('scope', s);
  const res = await fetch(`${base}/token?${query}`, credentials ? { headers: { Authorization: basic(credentials.username, credentials.password) } } : {});
  const body = (await res.json()) as { token?: string };
  return { status: res.status, body, ...(body.token && { token: body.token }) };
}

/** Decodes a JWT's payload without verifying it (for assertions on what was granted). */
export function jwtPayload(token: string): any {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}
