import { isIPv6 } from 'node:net';

/** `failures` failed logins at once, earned back evenly over `windowSeconds`; 0 failures: no limit. */
export interface FailureLimit {
  failures: number;
  windowSeconds: number;
}

export interface LoginThrottleOptions {
  perClient: FailureLimit;
  perAccount: FailureLimit;
  /** How long a client that signed in to an account is exempt from that account's limit. */
  knownClientMs: number;
  /** Keys each table holds at most. */
  capacity: number;
}

export type Refusal = { limit: 'client' | 'account'; retryAfterSeconds: number };

/** The outcome of an admitted attempt, reported once. */
export interface Attempt {
  succeeded(): void;
  failed(): void;
  /** No verdict (the database or the hashing pool could not answer): the attempt is not counted. */
  abandoned(): void;
}

/**
 * Token buckets by key: each key may spend up to `failures` at once and earns them back
 * at `failures / windowSeconds` per second. A bucket that has earned everything back is
 * the same as none, so those are dropped first when the table is full; then the oldest.
 */
class Buckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    private readonly limit: FailureLimit,
    private readonly capacity: number,
    private readonly now: () => number,
  ) {
    this.perMs = limit.failures / (limit.windowSeconds * 1000);
  }

  private level(key: string, now: number): number {
    const b = this.buckets.get(key);
    return b ? Math.min(this.limit.failures, b.tokens + (now - b.at) * this.perMs) : this.limit.failures;
  }

  /** Spends one; returns 0, or the seconds until one is available (nothing spent). */
  take(key: string): number {
    if (this.limit.failures <= 0) return 0;
    const now = this.now();
    const tokens = this.level(key, now);
    if (tokens < 1) return Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
    this.set(key, tokens - 1, now);
    return 0;
  }

  give(key: string): void {
    if (this.limit.failures <= 0) return;
    const now = this.now();
    const tokens = Math.min(this.limit.failures, this.level(key, now) + 1);
    if (tokens >= this.limit.failures) this.buckets.delete(key);
    else this.set(key, tokens, now);
  }

  private set(key: string, tokens: number, now: number): void {
    this.buckets.delete(key);
    if (this.buckets.size >= this.capacity) this.makeRoom(now);
    this.buckets.set(key, { tokens, at: now });
  }

  /** Frees a tenth of the table at least, so that a full table costs one sweep per many inserts. */
  private makeRoom(now: number): void {
    for (const key of this.buckets.keys()) if (this.level(key, now) >= this.limit.failures) this.buckets.delete(key);
    const target = Math.floor(this.capacity * 0.9);
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(key);
    }
  }
}

/**
 * The address a per-client limit counts by: an IPv4 address, or the /64 an IPv6 address
 * is in (one host commonly holds a whole /64, so single IPv6 addresses are free to get).
 */
export function clientKey(ip: string): string {
  const address = ip.split('%', 1)[0]!;
  if (!isIPv6(address)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Login throttling. Every attempt spends one from its client's bucket and one from its
 * account's (by the name given, whether or not such an account exists, so the answers do
 * not tell which do); a success gives both back, so only failures count. A client that
 * signed in to an account lately is exempt from that account's bucket, so that someone
 * failing on purpose elsewhere cannot lock its owner out of the places they use it from.
 * The client bucket still binds everyone, and is the larger one.
 */
export class LoginThrottle {
  private readonly clients: Buckets;
  private readonly accounts: Buckets;
  private readonly known = new Map<string, number>();

  constructor(
    private readonly options: LoginThrottleOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.clients = new Buckets(options.perClient, options.capacity, now);
    this.accounts = new Buckets(options.perAccount, options.capacity, now);
  }

  admit(account: string, ip: string): Attempt | Refusal {
    const client = clientKey(ip);
    const pair = `${account}\u0000${client}`;
    const clientWait = this.clients.take(client);
    if (clientWait > 0) return { limit: 'client', retryAfterSeconds: clientWait };
    const exempt = this.isKnown(pair);
    const accountWait = exempt ? 0 : this.accounts.take(account);
    if (accountWait > 0) {
      this.clients.give(client);
      return { limit: 'account', retryAfterSeconds: accountWait };
    }
    let settled = false;
    const refund = () => {
      if (settled) return false;
      settled = true;
      this.clients.give(client);
      if (!exempt) this.accounts.give(account);
      return true;
    };
    return {
      succeeded: () => {
        if (refund()) this.remember(pair);
      },
      failed: () => {
        settled = true;
      },
      abandoned: () => void refund(),
    };
  }

  private isKnown(pair: string): boolean {
    const until = this.known.get(pair);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.known.delete(pair);
    return false;
  }

  private remember(pair: string): void {
    this.known.delete(pair);
    if (this.known.size >= this.options.capacity) this.known.delete(this.known.keys().next().value!);
    this.known.set(pair, this.now() + this.options.knownClientMs);
  }
}

export function isRefusal(outcome: Attempt | Refusal): outcome is Refusal {
  return 'limit' in outcome;
}
