import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Body = readonly Buffer[] | { stream: () => Readable; length: number };

/** A keep-alive HTTP/1.1 client for one origin, at most `connections` sockets. */
export class HttpClient {
  private readonly agent: Agent;

  constructor(
    readonly origin: string,
    connections: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  }

  send(method: string, pathOrUrl: string, headers: Record<string, string> = {}, body?: Body): Promise<HttpResponse> {
    const url = new URL(pathOrUrl, this.origin);
    const length = body === undefined ? 0 : 'stream' in body ? body.length : body.reduce((n, b) => n + b.length, 0);
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers: { ...headers, 'content-length': String(length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      if (body === undefined) return void req.end();
      if ('stream' in body) return void body.stream().on('error', reject).pipe(req);
      for (const chunk of body) req.write(chunk);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
