// One OCI image layer, written the same way every time: a tar of entries sorted by path, every
// parent directory present, fixed owners, modes and times, then gzip. The same entries give the
// same bytes, so the same digests (given the same zlib: Node's, recorded in the layer key).
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';

interface Owned {
  /** Absolute path in the image, e.g. `/usr/local/bin/node`. */
  path: string;
  uid?: number;
  gid?: number;
}
export type LayerEntry =
  | (Owned & { type: 'directory'; mode: number })
  | (Owned & { type: 'file'; mode: number; content: Buffer | { file: string } })
  | (Owned & { type: 'symlink'; target: string });

/** zlib's default: level 9 took 3.4 times as long for a 0.6% smaller Node.js layer. Part of every layer key. */
export const GZIP_LEVEL = 6;

export interface LayerDescriptor {
  /** sha256 of the compressed blob (the manifest's layer digest). */
  digest: string;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
  size: number;
}

/** Every file gets this mtime (SOURCE_DATE_EPOCH when set, else the epoch). */
export function layerTime(): Date {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`SOURCE_DATE_EPOCH=${process.env.SOURCE_DATE_EPOCH} is not a whole number of seconds`);
  return new Date(epoch * 1000);
}

/** The entries sorted by path with their missing parent directories added (0755, root); a path given twice is an error. */
export function normalizeEntries(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const path = posix.normalize(entry.path);
    if (!path.startsWith('/') || path === '/') throw new Error(`layer entry ${entry.path}: an absolute path below / is needed`);
    if (byPath.has(path)) throw new Error(`layer entry ${path} is given twice`);
    byPath.set(path, { ...entry, path });
  }
  for (const path of [...byPath.keys()]) {
    for (let parent = posix.dirname(path); parent !== '/'; parent = posix.dirname(parent)) {
      const existing = byPath.get(parent);
      if (existing && existing.type !== 'directory') throw new Error(`layer entry ${parent} is a ${existing.type} but ${path} is below it`);
      if (!existing) byPath.set(parent, { path: parent, type: 'directory', mode: 0o755 });
    }
  }
  // Bytewise order, as `LC_ALL=C sort` would give: parents come before their children.
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

class Sha256 extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
}

/** Writes the layer's gzip blob as `<blobsDir>/<hex digest>` and returns its descriptor. */
export async function writeLayer(entries: LayerEntry[], blobsDir: string): Promise<LayerDescriptor> {
  const mtime = layerTime();
  const pack = tarStream.pack();
  const tarHash = new Sha256();
  const gzHash = new Sha256();
  mkdirSync(blobsDir, { recursive: true });
  const temp = `${blobsDir}/.layer-${process.pid}-${Date.now()}`;
  const written = pipeline(pack, tarHash, createGzip({ level: GZIP_LEVEL }), gzHash, createWriteStream(temp));
  try {
    for (const entry of normalizeEntries(entries)) {
      const name = entry.path.slice(1);
      const owner = { uid: entry.uid ?? 0, gid: entry.gid ?? 0, uname: '', gname: '', mtime };
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error | null) => (err ? reject(err) : resolve());
        if (entry.type === 'directory') pack.entry({ ...owner, name: `${name}/`, type: 'directory', mode: entry.mode }, done);
        else if (entry.type === 'symlink') pack.entry({ ...owner, name, type: 'symlink', mode: 0o777, linkname: entry.target }, done);
        else {
          const content = Buffer.isBuffer(entry.content) ? entry.content : readFileSync(entry.content.file);
          pack.entry({ ...owner, name, type: 'file', mode: entry.mode, size: content.length }, content, done);
        }
      });
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    rmSync(temp, { force: true });
    throw err;
  }
  const digest = `sha256:${gzHash.hash.digest('hex')}`;
  renameSync(temp, `${blobsDir}/${digest.slice('sha256:'.length)}`);
  return { digest, diffId: `sha256:${tarHash.hash.digest('hex')}`, size: gzHash.size };
}

/** A file's mode as an image should have it: 0755 when anyone may execute it, else 0644. */
export const normalMode = (mode: number): number => (mode & 0o111 ? 0o755 : 0o644);
