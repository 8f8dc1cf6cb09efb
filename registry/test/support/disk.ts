import { watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

// What a filesystem blob store holds, read from disk rather than through the store. Every
// directory must exist: a "stores nothing" check that finds no directory looked in the wrong place.

/** Digests of the blobs under `storeDir` (`blobs/<algorithm>/<xx>/<hex>`), sorted. */
export async function blobsOnDisk(storeDir: string): Promise<string[]> {
  const root = join(storeDir, 'blobs');
  const out: string[] = [];
  for (const algorithm of await readdir(root)) {
    for (const prefix of await readdir(join(root, algorithm))) {
      for (const hex of await readdir(join(root, algorithm, prefix))) out.push(`${algorithm}:${hex}`);
    }
  }
  return out.sort();
}

/** The files of unfinished uploads under `storeDir`, sorted. */
export async function uploadsOnDisk(storeDir: string): Promise<string[]> {
  return (await readdir(join(storeDir, 'uploads'))).sort();
}

/**
 * Records the names created in or removed from `dir` from now on (inotify): a name that was not
 * there before and shows up here existed for a while, however briefly.
 */
export function watchDir(dir: string): { touched: Set<string>; close(): void } {
  const touched = new Set<string>();
  const watcher = watch(dir, (event, name) => {
    if (event === 'rename' && name) touched.add(name);
  });
  return { touched, close: () => watcher.close() };
}
