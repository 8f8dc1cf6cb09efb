import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StreamOutcome {
  /** 0 when the connection closed without a response. */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The first OCI error code in the body, if any. */
  code: string | undefined;
  json<T = unknown>(): T;
  /** Body bytes the client had handed to its socket when the response (or the close) came. */
  bytesSent: number;
  /** Whether the body source ran dry before the server answered. */
  sentAll: boolean;
}

export interface StreamRequest {
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  /** The body, produced as the server reads it; chunked transfer unless a Content-Length header is given. */
  body?: AsyncIterable<Buffer>;
}

/**
 * Sends a request whose body is streamed from `body`, and stops sending as soon as the
 * server answers: a client that reads the response while uploading, as Go's and
 * Node's do. Resolves once the response is read and the connection is closed: by the
 * server when it answered `Connection: close` (a server that says so and does not
 * close makes this hang, and the test time out), by this client otherwise.
 */
export function streamRequest(base: string, req: StreamRequest): Promise<StreamOutcome> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let bytesSent = 0;
    let sentAll = false;
    let answered = false;
    const r = request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, agent: false });
    // Node holds the headers back until the first body write otherwise.
    r.flushHeaders();
    const closed = new Promise<void>((done) => r.once('socket', (socket) => (socket.destroyed ? done() : socket.once('close', () => done()))));
    r.on('error', () => {
      // After an answer, writing into the connection the server closed fails: expected.
      if (answered) return;
      answered = true;
      void closed.then(() => resolve(outcome(0, {}, Buffer.alloc(0), bytesSent, sentAll)));
    });
    r.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.once('end', () => {
        const result = outcome(res.statusCode ?? 0, res.headers, Buffer.concat(chunks), bytesSent, sentAll);
        // The server closes a connection it announced as closing; a kept-alive one is ours to close.
        if (res.headers.connection !== 'close') r.destroy();
        void closed.then(() => resolve(result));
      });
    });
    void (async () => {
      if (req.body) {
        for await (const chunk of req.body) {
          if (answered || r.destroyed) return;
          const flushed = r.write(chunk);
          bytesSent += chunk.length;
          if (!flushed) {
            await new Promise<void>((done) => {
              const finish = () => {
                r.off('drain', finish);
                r.off('response', finish);
                r.off('close', finish);
                done();
              };
              r.once('drain', finish);
              r.once('response', finish);
              r.once('close', finish);
            });
          }
        }
      }
      if (answered || r.destroyed) return;
      sentAll = true;
      r.end();
    })().catch(reject);
  });
}

function outcome(status: number, headers: StreamOutcome['headers'], body: Buffer, bytesSent: number, sentAll: boolean): StreamOutcome {
  let code: string | undefined;
  try {
    code = (JSON.parse(body.toString('utf8')) as { errors?: { code: string }[] }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status, headers, body, code, json: <T>() => JSON.parse(body.toString('utf8')) as T, bytesSent, sentAll };
}

/** `total` bytes in chunks of `chunk` bytes, as fast as the connection takes them. */
export async function* bytes(total: number, chunk = 64 * 1024, fill = 0x61): AsyncIterable<Buffer> {
  const piece = Buffer.alloc(chunk, fill);
  for (let sent = 0; sent < total; sent += chunk) yield total - sent >= chunk ? piece : piece.subarray(0, total - sent);
}

/** `data`, `piece` bytes at a time with `everyMs` between pieces: a slow client. */
export async function* trickle(data: Buffer, piece: number, everyMs: number): AsyncIterable<Buffer> {
  for (let at = 0; at < data.length; at += piece) {
    if (at > 0) await sleep(everyMs);
    yield data.subarray(at, at + piece);
  }
}

/**
 * Calls `measure` every `everyMs` until stop(), which resolves with the largest value
 * seen (including one last measurement taken at stop).
 */
export function sampleMax(measure: () => Promise<number>, everyMs = 10): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await measure());
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Math.max(max, await measure());
    },
  };
}
