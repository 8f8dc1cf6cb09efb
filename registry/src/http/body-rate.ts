/** The slowest request body the registry waits for; see LimitsConfig.http. */
export interface BodyRatePolicy {
  minBytesPerSecond: number;
  windowMs: number;
  graceMs: number;
}

export type BodyRateVerdict = { slow: false } | { slow: true; bytes: number; ms: number };

/**
 * Judges one request body's progress. Nothing is judged during the grace period after
 * the request starts; after it, the body must average `minBytesPerSecond` over each
 * window (the first one runs from the start), so a fast start buys no later silence,
 * and a large body at a normal speed is never cut however long it takes.
 *
 * Time when the registry itself is not reading (its storage is slower than the client,
 * so the connection is paused) is never held against the client: the window starts over
 * once reading resumes.
 */
export class BodyRateMeter {
  private windowStart: number;
  private windowBytes: number;
  private readonly judgedFrom: number;

  constructor(
    private readonly policy: BodyRatePolicy,
    startedAt: number,
    bytesAtStart: number,
  ) {
    this.windowStart = startedAt;
    this.windowBytes = bytesAtStart;
    this.judgedFrom = startedAt + policy.graceMs;
  }

  /** `bytes`: received so far (any counter that grows with the body); `serverStalled`: the registry is not reading. */
  check(now: number, bytes: number, serverStalled: boolean): BodyRateVerdict {
    if (serverStalled) {
      this.windowStart = now;
      this.windowBytes = bytes;
      return { slow: false };
    }
    const ms = now - this.windowStart;
    if (now < this.judgedFrom || ms < this.policy.windowMs) return { slow: false };
    const received = bytes - this.windowBytes;
    if (received * 1000 < this.policy.minBytesPerSecond * ms) return { slow: true, bytes: received, ms };
    this.windowStart = now;
    this.windowBytes = bytes;
    return { slow: false };
  }
}
