import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { Client, type Dispatcher, errors as undiciErrors } from 'undici';

/** A request as it goes on the wire. */
export interface WireRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Buffer;
  /** Send the body with `Transfer-Encoding: chunked` instead of a Content-Length. */
  chunked?: boolean;
}

export interface Exchange {
  request: WireRequest;
  status?: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** A transport failure: the connection closed or timed out without a response. */
  error?: string;
}

/** The request could not be sent at all (the HTTP client refused it): a generator's mistake. */
export class UnsendableRequest extends Error {}

const MAX_BODY = 4 * 1024 * 1024;

/**
 * Raw HTTP/1.1 with undici: paths and header values go out exactly as given (undici
 * checks only what HTTP/1.1 forbids outright), one request at a time on a keep-alive
 * connection from its own loopback address.
 */
export class RawClient {
  private client: Client;

  constructor(
    private readonly origin: string,
    private readonly localAddress: string | undefined,
    private readonly timeoutMs = 20_000,
  ) {
    this.client = this.connect();
  }

  private connect(): Client {
    return new Client(this.origin, {
      pipelining: 1,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(this.localAddress && { connect: { localAddress: this.localAddress } as Client.Options['connect'] }),
    });
  }

  async send(request: WireRequest): Promise<Exchange> {
    const flat = request.headers.flatMap(([k, v]) => [k, v]);
    const body = request.method === 'HEAD' ? undefined : request.body;
    let payload: Buffer | Readable | undefined = body;
    if (body && request.chunked) {
      payload = Readable.from(
        (function* () {
          for (let i = 0; i < body.length; i += 1000) yield body.subarray(i, i + 1000);
        })(),
        { objectMode: false },
      );
    }
    try {
      const res = await this.client.request({ method: request.method as Dispatcher.HttpMethod, path: request.path, headers: flat, ...(payload !== undefined && { body: payload }) });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size <= MAX_BODY) chunks.push(chunk as Buffer);
      }
      return { request, status: res.statusCode, headers: res.headers as Record<string, string | string[]>, body: Buffer.concat(chunks) };
    } catch (err) {
      if (err instanceof undiciErrors.InvalidArgumentError || err instanceof undiciErrors.RequestContentLengthMismatchError) {
        throw new UnsendableRequest(`${(err as Error).message}: ${request.method} ${request.path}`);
      }
      // A broken connection leaves the client unusable for the next request: start afresh.
      await this.client.destroy().catch(() => undefined);
      this.client = this.connect();
      // The server may have answered and closed while the client was still writing (a 431
      // for an oversized head, say), which the client reports as a write error. Send the
      // request once more on a bare socket that reads whatever comes back.
      const e = err as Error & { code?: string };
      const again = await bareExchange(this.origin, this.localAddress, request, this.timeoutMs);
      if (again.status !== undefined) return again;
      return { ...again, error: `${e.code ?? e.name}: ${e.message}; on a bare socket too: ${again.error}` };
    }
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}

/**
 * One request on a bare TCP socket (`Connection: close`): everything the server sends
 * until it closes is kept, even if writing the request failed half-way.
 */
export function bareExchange(origin: string, localAddress: string | undefined, request: WireRequest, timeoutMs: number): Promise<Exchange> {
  const url = new URL(origin);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), ...(localAddress && { localAddress }) });
    const chunks: Buffer[] = [];
    let failure: string | undefined;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ request, ...parseResponse(Buffer.concat(chunks), failure) });
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= `${err.code ?? err.name}: ${err.message}`;
    });
    socket.on('close', finish);
    socket.setTimeout(timeoutMs, () => {
      failure ??= 'timed out';
      finish();
    });
    const headers = [...request.headers];
    if (!headers.some(([k]) => k.toLowerCase() === 'host')) headers.unshift(['Host', url.host]);
    const body = request.method === 'HEAD' ? undefined : request.body;
    if (body) headers.push(request.chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(body.length)]);
    headers.push(['Connection', 'close']);
    socket.write(Buffer.from(`${request.method} ${request.path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
    if (body) socket.write(request.chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : body);
  });
}

function parseResponse(raw: Buffer, failure: string | undefined): Omit<Exchange, 'request'> {
  const end = raw.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(raw.subarray(0, Math.max(end, 0)).toString('latin1'));
  if (end < 0 || !status) return { headers: {}, body: Buffer.alloc(0), error: failure ?? `no HTTP response (${raw.length} bytes)` };
  const headers: Record<string, string> = {};
  for (const line of raw.subarray(0, end).toString('latin1').split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = eol < 0 ? 0 : parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status: Number(status[1]), headers, body };
}
