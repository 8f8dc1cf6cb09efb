import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { errorBody, ociError } from '../oci/errors.js';
import { LINGER_MS } from './lingering-close.js';

/**
 * Caps the connections one client address holds open. A connection past the cap is
 * answered `429 TOOMANYREQUESTS` and closed before any of its requests is parsed, so
 * a client cannot make the registry work through connections it was refused.
 *
 * The client is the TCP peer: behind a reverse proxy or a NAT every client shares its
 * address, so raise the cap there, or turn it off (0) and cap at the proxy.
 */
export class ConnectionCap {
  private readonly open = new Map<string, number>();
  /** Refusals per client since it reached the cap, for one log line when it drops below. */
  private readonly refused = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Puts the cap in front of the server's connection handling: the listeners the server
   * has now (Node's HTTP parser setup) only see connections the cap admits.
   */
  install(server: Server): void {
    const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (!this.admit(socket)) return;
      for (const handle of handlers) handle.call(server, socket);
    });
  }

  private admit(socket: Socket): boolean {
    const client = socket.remoteAddress ?? 'unknown';
    const held = this.open.get(client) ?? 0;
    if (held >= this.limit) {
      this.refuse(socket, client);
      return false;
    }
    this.open.set(client, held + 1);
    socket.once('close', () => this.release(client));
    return true;
  }

  private release(client: string): void {
    const held = (this.open.get(client) ?? 1) - 1;
    if (held > 0) this.open.set(client, held);
    else this.open.delete(client);
    const refused = this.refused.get(client);
    if (refused !== undefined && held < this.limit) {
      this.refused.delete(client);
      this.log.info({ client, refused, limit: this.limit }, 'client back under its connection cap');
    }
  }

  private refuse(socket: Socket, client: string): void {
    const refused = (this.refused.get(client) ?? 0) + 1;
    this.refused.set(client, refused);
    if (refused === 1) this.log.warn({ client, limit: this.limit }, 'client reached its connection cap: refusing its further connections with 429 until one closes');
    const error = ociError('TOOMANYREQUESTS', { limit: this.limit }, { message: `too many connections from ${client}: ${this.limit} are open, the most allowed` });
    const body = JSON.stringify(errorBody([error]));
    socket.on('error', () => undefined);
    // As lingerOnClose: answer, shut our side, and let the client read before the reset.
    socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }
}
