// The operator's one client for a registry's management API (/api/v1) and health endpoint.
// Types come from the registry's own OpenAPI document (schema.ts, generated). Calls authenticate
// with Basic credentials (the Registry's admin Secret), idempotent calls are retried with backoff
// on network errors and 429/5xx, and nothing that carries a credential is ever logged.
import createClient, { type Client } from 'openapi-fetch';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { Backoff, sleep } from '../runtime/backoff.js';
import type { components, paths } from './schema.js';

export type ManagementApi = Client<paths>;
export type Schemas = components['schemas'];

export interface RegistryConnection {
  /** Base URL, e.g. http://wharf.wharf-system.svc:5000 */
  url: string;
  username: string;
  password: string;
  /** Accept any TLS certificate (self-signed test registries). */
  insecure?: boolean;
}

export interface ClientOptions {
  log?: Logger;
  /** Attempts for idempotent calls (first try included). */
  attempts?: number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  backoff?: () => Backoff;
}

/** A refusal from the registry, with its error code (`{"errors":[{code,message}]}`). */
export class RegistryApiError extends Error {
  override readonly name = 'RegistryApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const isRegistryNotFound = (err: unknown): boolean => err instanceof RegistryApiError && err.status === 404;
export const isRegistryConflict = (err: unknown): boolean => err instanceof RegistryApiError && err.status === 409;

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

export class RegistryClient {
  readonly api: ManagementApi;
  private readonly dispatcher: Agent | undefined;

  constructor(
    readonly connection: RegistryConnection,
    private readonly options: ClientOptions = {},
  ) {
    this.dispatcher = connection.insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
    const authorization = `Basic ${Buffer.from(`${connection.username}:${connection.password}`).toString('base64')}`;
    this.api = createClient<paths>({ baseUrl: connection.url.replace(/\/+$/, ''), headers: { Authorization: authorization }, fetch: (request) => this.send(request) });
  }

  /** `/readyz`: whether the registry answers and is ready, and its version. */
  async readiness(signal?: AbortSignal): Promise<{ ready: boolean; version?: string; detail: string }> {
    const res = await this.send(new Request(`${this.connection.url.replace(/\/+$/, '')}/readyz`, { ...(signal && { signal }) }));
    const body = (await res.json().catch(() => ({}))) as { status?: string; version?: string; checks?: { name: string; ok: boolean; error?: string }[] };
    const failing = (body.checks ?? []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failing'}`);
    return { ready: res.ok, ...(body.version && { version: body.version }), detail: res.ok ? 'ready' : failing.join('; ') || `HTTP ${res.status}` };
  }

  /**
   * Whether the registry refuses these credentials (401) or their user is no administrator (403),
   * found with the cheapest administrators-only read; undefined when it accepts them.
   */
  async administratorRefusal(signal?: AbortSignal): Promise<401 | 403 | undefined> {
    const result = await this.api.GET('/api/v1/users', { params: { query: { limit: 1 } }, ...(signal && { signal }) });
    if (result.response.status === 401 || result.response.status === 403) return result.response.status;
    must('list users', result);
    return undefined;
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** One request with retries; the Request is cloned for each attempt so its body can be resent. */
  private async send(request: Request): Promise<Response> {
    const attempts = IDEMPOTENT.has(request.method) ? (this.options.attempts ?? 4) : 1;
    const backoff = this.options.backoff?.() ?? new Backoff(200, 3_000);
    const path = new URL(request.url).pathname;
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 15_000);
      const signal = AbortSignal.any([request.signal, timeout]);
      try {
        const init: RequestInit & { dispatcher?: Agent } = { signal, ...(this.dispatcher && { dispatcher: this.dispatcher }) };
        const res = await fetch(request.clone(), init);
        this.options.log?.debug({ method: request.method, path, status: res.status, attempt }, 'registry API call');
        if (attempt < attempts && RETRIED_STATUSES.has(res.status)) {
          await res.body?.cancel();
          await sleep(retryAfterMs(res) ?? backoff.next(), request.signal);
          if (request.signal.aborted) throw request.signal.reason;
          continue;
        }
        return res;
      } catch (err) {
        if (request.signal.aborted || attempt >= attempts) throw new Error(`${request.method} ${path}: ${(err as Error).message}`, { cause: err });
        this.options.log?.debug({ method: request.method, path, attempt, err: (err as Error).message }, 'registry API call failed; retrying');
        await sleep(backoff.next(), request.signal);
      }
    }
  }
}

function retryAfterMs(res: Response): number | undefined {
  const seconds = Number(res.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) * 1000 : undefined;
}

/**
 * The data of an openapi-fetch result, or a RegistryApiError carrying the registry's error code.
 * `what` names the call in the message (never a credential).
 */
export function must<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error === undefined && result.response.ok) return result.data as T;
  const first = (result.error as { errors?: { code?: string; message?: string }[] } | undefined)?.errors?.[0];
  throw new RegistryApiError(result.response.status, first?.code ?? `HTTP_${result.response.status}`, `${what}: ${result.response.status} ${first?.code ?? ''} ${first?.message ?? ''}`.trim());
}
