import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = unknown>(): T;
  /** The first OCI error code in the body, if any. */
  code: string | undefined;
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no URL normalization, so `..` and `%2e` reach the server. */
  path: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** The client's source address, e.g. `127.0.0.2` to come from another loopback peer. */
  localAddress?: string;
}

function toResponse(status: number, headers: RawResponse['headers'], body: Buffer): RawResponse {
  let code: string | undefined;
  try {
    code = (JSON.parse(body.toString('utf8')) as { errors?: { code: string }[] }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status, headers, body, code, json: <T>() => JSON.parse(body.toString('utf8')) as T };
}

/** One HTTP/1.1 request over node:http with the path untouched. */
export function rawRequest(base: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const r = request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, agent: false, ...(req.localAddress && { localAddress: req.localAddress }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(toResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

/**
 * Sends the headers (declaring the full Content-Length) and only `sent` bytes of the
 * body, then drops the connection: a client killed mid-push.
 */
export function truncatedRequest(base: string, req: RawRequest & { declaredLength: number; sent: Buffer }): Promise<void> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const r = request({
      host: url.hostname,
      port: url.port,
      method: req.method,
      path: req.path,
      headers: { ...req.headers, 'Content-Length': req.declaredLength },
      agent: false,
    });
    r.on('error', () => resolve());
    r.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    r.write(req.sent, () => setTimeout(() => {
      r.destroy();
      resolve();
    }, 50));
  });
}

/** Polls `check` until it holds; fails after `timeoutMs` naming what it waited for. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
