import type { StoredManifest } from '../metadata/manifests.js';

export type CachedManifest = StoredManifest & { content: Buffer };

const MAX_ENTRY_BYTES = 256 * 1024;

/** A size-bounded LRU of byte buffers. */
class ByteLru<K, V extends { content: Buffer }> {
  private readonly entries = new Map<K, V>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    if (value.content.length > MAX_ENTRY_BYTES) return;
    this.delete(key);
    this.entries.set(key, value);
    this.bytes += value.content.length;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) this.delete(this.entries.keys().next().value!);
  }

  delete(key: K): void {
    const value = this.entries.get(key);
    if (value === undefined) return;
    this.entries.delete(key);
    this.bytes -= value.content.length;
  }

  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Manifest bytes by digest. Content-addressed bytes never change, so this cache is
 * correct on any number of replicas; whether a repository still holds a manifest is
 * always asked of the database (or of a ReferenceCache where that is authoritative).
 */
export class ManifestContentCache {
  private readonly lru = new ByteLru<string, { content: Buffer; mediaType: string }>(10_000, 16 * 1024 * 1024);

  get(digest: string): { content: Buffer; mediaType: string } | undefined {
    return this.lru.get(digest);
  }

  set(digest: string, content: Buffer, mediaType: string): void {
    this.lru.set(digest, { content, mediaType });
  }
}

/**
 * Resolved references (`repository` + tag or digest → manifest), for the embedded
 * database only: one process owns a PGlite data directory, so every change passes
 * through this process and can drop the repository's entries before it answers. With
 * PostgreSQL another replica may change a tag at any moment, and a client that
 * deletes on one replica and reads on the next must see the delete, so there the
 * database is asked every time.
 *
 * A generation counter guards a lookup racing a change: a result is stored only if
 * nothing was invalidated while it was being read.
 */
export class ReferenceCache {
  private readonly lru = new ByteLru<string, CachedManifest & { repository: string }>(20_000, 32 * 1024 * 1024);
  private epoch = 0;
  hits = 0;

  generation(): number {
    return this.epoch;
  }

  get(repository: string, reference: string): CachedManifest | undefined {
    const hit = this.lru.get(`${repository}\u0000${reference}`);
    if (hit) this.hits++;
    return hit;
  }

  set(repository: string, reference: string, manifest: CachedManifest, generation: number): void {
    if (generation === this.epoch) this.lru.set(`${repository}\u0000${reference}`, { ...manifest, repository });
  }

  invalidate(repository: string): void {
    this.epoch++;
    const prefix = `${repository}\u0000`;
    for (const key of [...this.lru.keys()]) if (key.startsWith(prefix)) this.lru.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}
