/**
 * Sets `key` as the newest entry of `entries` (a Map iterates in insertion order) and drops
 * the oldest ones past `limit`: the bounded "remember the last N" that caches and hints use.
 */
export function rememberRecent<K, V>(entries: Map<K, V>, key: K, value: V, limit: number): void {
  entries.delete(key);
  entries.set(key, value);
  for (const oldest of entries.keys()) {
    if (entries.size <= limit) return;
    entries.delete(oldest);
  }
}
