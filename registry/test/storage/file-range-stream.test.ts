import { randomBytes } from 'node:crypto';
import { open, truncate, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/storage/buffer-pool.js';
import { FileRangeStream } from '../../src/storage/file-range-stream.js';
import { removeDir, tempDir } from '../support/registry.js';

/** A writable that keeps what it receives and completes each write on the next tick, as a socket does. */
function collector(): Writable & { received: Buffer[] } {
  const received: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      // Copy: the sender reuses its buffers once the write has completed.
      received.push(Buffer.from(chunk));
      setImmediate(cb);
    },
  });
  return Object.assign(w, { received });
}

/** GETs `url` and returns the bytes received and whether the response ended cleanly. */
function fetchRaw(url: string): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const req = request(url, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ body: Buffer.concat(chunks), complete: res.complete }));
      res.on('error', () => resolve({ body: Buffer.concat(chunks), complete: false }));
      res.on('aborted', () => resolve({ body: Buffer.concat(chunks), complete: false }));
    });
    req.on('error', () => resolve({ body: Buffer.concat(chunks), complete: false }));
    req.end();
  });
}

describe('FileRangeStream (blob downloads with pooled buffers)', () => {
  let dir: string;
  let file: string;
  const data = randomBytes(5 * 64 * 1024 + 123);

  beforeAll(async () => {
    dir = await tempDir('wharf-frs-');
    file = join(dir, 'blob');
    await writeFile(file, data);
  });
  afterAll(() => removeDir(dir));

  it('sends exactly the requested range, buffer after buffer, and returns both buffers to the pool', async () => {
    const pool = new BufferPool(64 * 1024, 4);
    for (const [start, last] of [
      [0, data.length - 1],
      [1000, 200_000],
      [data.length - 1, data.length - 1],
    ] as const) {
      const out = collector();
      const finished = new Promise((resolve) => out.on('finish', resolve));
      await new FileRangeStream(await open(file), start, last, pool).sendTo(out);
      await finished;
      expect(Buffer.concat(out.received).equals(data.subarray(start, last + 1))).toBe(true);
      expect(pool.idleCount).toBe(2);
    }
  });

  it('works as a plain Readable for other consumers', async () => {
    const chunks: Buffer[] = [];
    for await (const c of new FileRangeStream(await open(file), 10, 99_999, new BufferPool(32 * 1024, 2))) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data.subarray(10, 100_000))).toBe(true);
    expect(Math.max(...chunks.map((c) => c.length))).toBe(32 * 1024);
  });

  it('refuses a second consumer', async () => {
    const stream = new FileRangeStream(await open(file), 0, 10, new BufferPool(1024, 2));
    const first = stream.sendTo(collector());
    await expect(stream.sendTo(collector())).rejects.toThrow(/already being read/);
    await first;
  });

  it('rejects, and keeps unfinished buffers out of the pool, when the destination closes mid-way', async () => {
    const pool = new BufferPool(64 * 1024, 4);
    let writes = 0;
    const dest: Writable = new Writable({
      write(_chunk, _enc, _cb) {
        // Never completes the write; the connection goes away after the first chunk.
        if (++writes === 1) setImmediate(() => dest.destroy());
      },
    });
    const handle = await open(file);
    await expect(new FileRangeStream(handle, 0, data.length - 1, pool).sendTo(dest)).rejects.toThrow(/closed before the blob was sent/);
    expect(pool.idleCount).toBeLessThan(2);
    // The file was closed.
    await expect(handle.stat()).rejects.toThrow();
  });

  it('cuts the response instead of ending it short when the file holds fewer bytes than announced', async () => {
    const short = join(dir, 'short');
    await writeFile(short, data);
    const server: Server = createServer(async (_req, res) => {
      const handle = await open(short);
      await truncate(short, 1000);
      res.writeHead(200, { 'content-length': data.length });
      new FileRangeStream(handle, 0, data.length - 1, new BufferPool(64 * 1024, 2)).sendTo(res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { body, complete } = await fetchRaw(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(complete).toBe(false);
      expect(body.length).toBe(1000);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  describe('chunks (an upload body over three reused buffers)', () => {
    it('yields exactly the range over at most three buffers, each chunk intact until the one after the next is requested', async () => {
      for (const [start, last] of [
        [0, data.length - 1],
        [1000, 200_000],
        [data.length - 1, data.length - 1],
      ] as const) {
        const kept: Buffer[] = [];
        const copies: Buffer[] = [];
        for await (const chunk of new FileRangeStream(await open(file), start, last, new BufferPool(64 * 1024, 2)).chunks()) {
          // The chunk before this one must not have been overwritten yet.
          if (kept.length > 0) expect(kept.at(-1)!.equals(copies.at(-1)!)).toBe(true);
          kept.push(chunk);
          copies.push(Buffer.from(chunk));
        }
        expect(Buffer.concat(copies).equals(data.subarray(start, last + 1))).toBe(true);
        expect(new Set(kept.map((c) => c.buffer)).size).toBeLessThanOrEqual(3);
      }
    });

    it('reuses its buffers rather than allocating one per chunk', async () => {
      const buffers = new Set<ArrayBufferLike>();
      let count = 0;
      for await (const chunk of new FileRangeStream(await open(file), 0, data.length - 1, new BufferPool(16 * 1024, 2)).chunks()) {
        buffers.add(chunk.buffer);
        count++;
      }
      expect(count).toBe(Math.ceil(data.length / (16 * 1024)));
      expect(buffers.size).toBe(3);
    });

    it('closes the file when the consumer stops early, and refuses a second consumer', async () => {
      const handle = await open(file);
      const stream = new FileRangeStream(handle, 0, data.length - 1, new BufferPool(16 * 1024, 2));
      for await (const _ of stream.chunks()) break;
      await expect(handle.stat()).rejects.toThrow();
      const other = new FileRangeStream(await open(file), 0, 10, new BufferPool(1024, 2));
      const first = other.chunks();
      await first.next();
      await expect(other.chunks().next()).rejects.toThrow(/already being read/);
      await expect(other.sendTo(collector())).rejects.toThrow(/already being read/);
      await first.return();
    });

    it('fails when the file holds fewer bytes than the range', async () => {
      const short = join(dir, 'short-chunks');
      await writeFile(short, data.subarray(0, 1000));
      const read = async () => {
        for await (const _ of new FileRangeStream(await open(short), 0, data.length - 1, new BufferPool(16 * 1024, 2)).chunks());
      };
      await expect(read()).rejects.toThrow(/ended at byte 1000/);
    });

    it('arrives intact as an undici request body at a server that reads slowly (the socket backs up, buffers are reused)', async () => {
      const big = join(dir, 'big');
      const content = randomBytes(8 * 1024 * 1024 + 77);
      await writeFile(big, content);
      const server: Server = createServer((req, res) => {
        const hash: Buffer[] = [];
        req.on('data', (c: Buffer) => {
          hash.push(Buffer.from(c));
          // Stall now and then so that the sender's writes queue in its socket.
          if (hash.length % 8 === 0) {
            req.pause();
            setTimeout(() => req.resume(), 5);
          }
        });
        req.on('end', () => res.end(Buffer.concat(hash).equals(content) ? 'same' : 'different'));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const body = new FileRangeStream(await open(big), 0, content.length - 1, new BufferPool(256 * 1024, 2)).chunks();
        const res = await undiciRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
          method: 'PUT',
          body: body as unknown as Buffer,
          headers: { 'content-length': String(content.length) },
        });
        expect(await res.body.text()).toBe('same');
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
