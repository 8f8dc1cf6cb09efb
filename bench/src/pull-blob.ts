import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';

export interface PullBlob {
  file: string;
  digest: string;
  size: number;
}

/** Writes `size` random bytes to `file` and returns its digest. */
export async function writePullBlob(file: string, size: number): Promise<PullBlob> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < size; ) {
      const chunk = randomBytes(Math.min(2 ** 20, size - written));
      hash.update(chunk);
      await handle.write(chunk);
      written += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return { file, digest: `sha256:${hash.digest('hex')}`, size };
}
