import { createHmac, randomBytes } from 'node:crypto';

export interface VerifiedCredentialsOptions {
  /** How long a verification is reused; 0 turns the cache off. */
  ttlMs: number;
  /** Entries at most; the oldest go first. */
  capacity: number;
}

/**
 * Recently verified credentials, so that a client that sends Basic credentials with every
 * token request (Docker, containerd, the kubelet) pays for one scrypt derivation, not one
 * per request. An entry is a keyed HMAC of username and secret (the key is random per
 * process and never leaves it; no secret is kept) mapped to the stored hash it matched.
 * It counts only while the account's current stored hash is still that one, so a changed
 * password or a rotated secret stops it at once, on every replica: the caller reads the
 * account from the database on every login and passes its hash in. A deleted account has
 * no hash; disabled and expired robots are refused after the secret check, cached or not.
 */
export class VerifiedCredentials {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { stored: string; expires: number }>();

  constructor(
    private readonly options: VerifiedCredentialsOptions,
    private readonly now: () => number = Date.now,
  ) {}

  private id(username: string, secret: string): string {
    // The username's byte length first, so that no two (username, secret) pairs share an input.
    return createHmac('sha256', this.key).update(`${Buffer.byteLength(username)}:${username}`).update(secret).digest('base64');
  }

  /**
   * Whether `secret` was verified for `username` against exactly `stored` (or one of the
   * hashes `stored` lists: a robot's current and, during a rotation's grace window, previous
   * secret), lately.
   */
  has(username: string, secret: string, stored: string | readonly string[]): boolean {
    if (this.options.ttlMs <= 0) return false;
    const id = this.id(username, secret);
    const entry = this.entries.get(id);
    if (!entry) return false;
    if ((typeof stored === 'string' ? entry.stored === stored : stored.includes(entry.stored)) && entry.expires > this.now()) return true;
    this.entries.delete(id);
    return false;
  }

  add(username: string, secret: string, stored: string): void {
    if (this.options.ttlMs <= 0) return;
    const id = this.id(username, secret);
    this.entries.delete(id);
    if (this.entries.size >= this.options.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(id, { stored, expires: this.now() + this.options.ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
