import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  /** The exact body bytes, as text. */
  body: string;
}

/** What the receiver does with a request on a path: answer a status, or hold it open. */
export type Behaviour = (nth: number) => number | 'hang';

/**
 * A webhook receiver on loopback: records every request per path and answers as the
 * path's behaviour says (200 by default). `hang` never answers and keeps the connection
 * open until the receiver closes.
 */
export class Receiver {
  readonly received: Received[] = [];
  /** Requests being held open right now. */
  held = 0;
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly counts = new Map<string, number>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly server = createServer((req, res) => void this.handle(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(path: string, behaviour: Behaviour): void {
    this.behaviours.set(path, behaviour);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = req.url ?? '/';
    this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    const nth = (this.counts.get(path) ?? 0) + 1;
    this.counts.set(path, nth);
    const answer = (this.behaviours.get(path) ?? (() => 200))(nth);
    if (answer === 'hang') {
      this.held++;
      this.hanging.add(res);
      res.on('close', () => {
        this.held--;
        this.hanging.delete(res);
      });
      return;
    }
    res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : `failing on purpose (${nth})`);
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls `predicate` every 25 ms until it holds or `ms` pass (then throws with `what`). */
export async function waitFor<T>(what: string, predicate: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
