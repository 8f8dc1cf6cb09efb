// A thin REST client for the Kubernetes API on top of @kubernetes/client-node's KubeConfig, which
// does the credential work (kubeconfig files, in-cluster token files, client certificates). We do
// the HTTP ourselves with one keep-alive agent, so that every request is visible: it is counted
// by verb and result, has a timeout and an AbortSignal, and errors become ApiError.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, isNotFound } from './errors.js';
import { apiVersionOf, resourceByKind, resourcePath, type ResourceType } from './resources.js';
import type { KubeList, KubeObject } from './types.js';

export type Query = Record<string, string | number | boolean | undefined>;

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Accept header; default application/json. */
  accept?: string;
}

export interface RequestObserver {
  (method: string, path: string, status: number): void;
}

export interface ClientOptions {
  userAgent: string;
  fieldManager: string;
  observe?: RequestObserver;
  defaultTimeoutMs?: number;
}

export class KubeClient {
  private readonly server: URL;
  private readonly agent: HttpAgent;

  constructor(
    private readonly kc: KubeConfig,
    readonly options: ClientOptions,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.agent = this.server.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 32 }) : new HttpAgent({ keepAlive: true, maxSockets: 32 });
  }

  get fieldManager(): string {
    return this.options.fieldManager;
  }

  close(): void {
    this.agent.destroy();
  }

  /** Sends a request and returns the raw response stream (for watches); the caller consumes it. */
  async open(spec: RequestSpec): Promise<IncomingMessage> {
    const url = new URL(spec.path, this.server);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: RequestOptions = { method: spec.method, headers: { Accept: spec.accept ?? 'application/json', 'User-Agent': this.options.userAgent } };
    await this.kc.applyToHTTPSOptions(opts);
    // applyToHTTPSOptions also creates a fresh agent per call; keep our pooled one, with its TLS material.
    const tls = { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername };
    const body = spec.body === undefined ? undefined : Buffer.from(typeof spec.body === 'string' ? spec.body : JSON.stringify(spec.body));
    const headers: Record<string, string | number> = { ...(opts.headers as Record<string, string>) };
    if (body) {
      headers['Content-Type'] = spec.contentType ?? 'application/json';
      headers['Content-Length'] = body.length;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method: spec.method, headers, agent: this.agent, auth: opts.auth, signal: spec.signal, ...tls }, resolve);
      if (spec.timeoutMs) req.setTimeout(spec.timeoutMs, () => req.destroy(new Error(`${spec.method} ${spec.path}: timed out after ${spec.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Sends a request and parses the JSON answer; non-2xx answers throw ApiError. */
  async request<T>(spec: RequestSpec): Promise<T> {
    let status = 0;
    try {
      const res = await this.open({ timeoutMs: this.options.defaultTimeoutMs ?? 30_000, ...spec });
      status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      if (status < 200 || status >= 300) {
        const s = (parsed ?? {}) as { reason?: string; message?: string };
        throw new ApiError(status, s.reason ?? 'Unknown', `${spec.method} ${spec.path}: ${status} ${s.message ?? text.slice(0, 200)}`, parsed);
      }
      return parsed as T;
    } finally {
      this.options.observe?.(spec.method, spec.path, status);
    }
  }

  // ---- typed helpers ----

  get<T extends KubeObject>(t: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>({ method: 'GET', path: resourcePath(t, namespace, name), signal });
  }

  /** The object, or undefined when it does not exist. */
  async find<T extends KubeObject>(t: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get<T>(t, namespace, name, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list<T extends KubeObject>(t: ResourceType, namespace?: string, query: Query = {}, signal?: AbortSignal, accept?: string): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let list: KubeList<T>;
    do {
      list = await this.request<KubeList<T>>({ method: 'GET', path: resourcePath(t, namespace), query: { limit: 500, ...query, continue: cont }, signal, ...(accept && { accept }) });
      items.push(...(list.items ?? [])); // an empty PartialObjectMetadataList has items: null
      cont = list.metadata.continue || undefined;
    } while (cont);
    return { ...list, items };
  }

  create<T extends KubeObject>(obj: T, signal?: AbortSignal): Promise<T> {
    const t = resourceByKind(obj.apiVersion, obj.kind);
    return this.request<T>({ method: 'POST', path: resourcePath(t, obj.metadata.namespace), body: obj, query: { fieldManager: this.fieldManager }, signal });
  }

  /** Server-side apply with the operator's single field manager; conflicts are forced. */
  apply<T extends KubeObject>(obj: KubeObject, options: { subresource?: string; signal?: AbortSignal } = {}): Promise<T> {
    const t = resourceByKind(obj.apiVersion, obj.kind);
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(t, obj.metadata.namespace, obj.metadata.name, options.subresource),
      query: { fieldManager: this.fieldManager, force: true },
      body: obj,
      contentType: 'application/apply-patch+yaml',
      signal: options.signal,
    });
  }

  /** JSON merge patch; never creates the object (404 when it is gone). */
  mergePatch<T extends KubeObject>(t: ResourceType, namespace: string | undefined, name: string, patch: unknown, options: { subresource?: string; signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(t, namespace, name, options.subresource),
      query: { fieldManager: this.fieldManager },
      body: patch,
      contentType: 'application/merge-patch+json',
      signal: options.signal,
    });
  }

  /**
   * JSON patch (RFC 6902): for one entry of a list another controller shares. A `replace` of
   * /metadata/resourceVersion in `ops` makes it conditional: 409 Conflict when the object changed.
   */
  jsonPatch<T extends KubeObject>(t: ResourceType, namespace: string | undefined, name: string, ops: JsonPatchOp[], options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(t, namespace, name),
      query: { fieldManager: this.fieldManager },
      body: ops,
      contentType: 'application/json-patch+json',
      signal: options.signal,
    });
  }

  replace<T extends KubeObject>(obj: T, signal?: AbortSignal): Promise<T> {
    const t = resourceByKind(obj.apiVersion, obj.kind);
    return this.request<T>({ method: 'PUT', path: resourcePath(t, obj.metadata.namespace, obj.metadata.name), query: { fieldManager: this.fieldManager }, body: obj, signal });
  }

  delete(t: ResourceType, namespace: string | undefined, name: string, options: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; uid?: string; signal?: AbortSignal } = {}): Promise<unknown> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.uid) body.preconditions = { uid: options.uid };
    return this.request({ method: 'DELETE', path: resourcePath(t, namespace, name), body, signal: options.signal });
  }
}

export { apiVersionOf };
