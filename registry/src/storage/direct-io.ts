import { randomBytes } from 'node:crypto';
import { close, constants, open, write } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AlignedSlabPool } from './aligned-slabs.js';
import { DIRECT_IO_ALIGNMENT } from './direct-file-writer.js';

const openAsync = promisify(open);
const writeAsync = promisify(write);
const closeAsync = promisify(close);

/** O_DIRECT where the platform defines it (Linux); elsewhere direct I/O is never used. */
const O_DIRECT: number | undefined = (constants as Record<string, number | undefined>).O_DIRECT;

/** Flags for a new upload part written with direct I/O: like 'wx', plus O_DIRECT. */
export const DIRECT_CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (O_DIRECT ?? 0);

/** 16 slabs of 512 KiB: that many uploads write directly at once; more use buffered writes. */
const SLAB_BYTES = 512 * 1024;
const SLABS = 16;
let shared: AlignedSlabPool | undefined;

/** The process's slabs for direct upload writes, made on first use. */
export function uploadSlabs(): AlignedSlabPool {
  shared ??= new AlignedSlabPool(SLAB_BYTES, SLABS);
  return shared;
}

/**
 * Whether files in `dir` can be written with O_DIRECT: tries one aligned write to a
 * scratch file. tmpfs and some overlay and network filesystems refuse the flag (EINVAL).
 */
export async function supportsDirectIo(dir: string): Promise<boolean> {
  if (O_DIRECT === undefined) return false;
  // Its own buffer: a probe must not depend on the uploads in flight.
  const slab = new AlignedSlabPool(AlignedSlabPool.PAGE, 1).acquire()!;
  const file = join(dir, `.direct-io-probe-${randomBytes(6).toString('hex')}`);
  let fd: number | undefined;
  try {
    fd = await openAsync(file, DIRECT_CREATE_FLAGS, 0o600);
    await writeAsync(fd, slab, 0, DIRECT_IO_ALIGNMENT, 0);
    return true;
  } catch (err) {
    if (['EINVAL', 'ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  } finally {
    if (fd !== undefined) await closeAsync(fd);
    await rm(file, { force: true });
  }
}
