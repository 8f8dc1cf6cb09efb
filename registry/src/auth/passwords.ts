import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ociError } from '../oci/errors.js';
import { ScryptPoolBusyError, type ScryptParams } from './scrypt-pool.js';

// scrypt is memory-hard; N=2^15, r=8 uses 32 MiB per hash (OWASP's minimum for scrypt).
const PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };
const SALT_BYTES = 16;

/** Runs one scrypt derivation (ScryptPool.derive: off the main thread and off libuv's pool). */
export type Derive = (password: string, salt: Uint8Array, params: ScryptParams) => Promise<Buffer>;

/**
 * Generated robot secrets are 32 random bytes, so a fast hash is as safe as a slow one
 * (nobody can enumerate 2^256 candidates) and keeps token requests from CI fleets cheap.
 * A secret chosen by a person at rotation gets the memory-hard hash instead.
 */
export function generateRobotSecret(): string {
  return randomBytes(32).toString('base64url');
}

function sha256Hash(secret: string): string {
  return `sha256$${createHash('sha256').update(secret).digest('base64')}`;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Hashes and checks passwords and robot secrets. Stored forms:
 * `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` and, for generated robot secrets, `sha256$<b64>`.
 */
export class PasswordHasher {
  // Verified against when there is nothing else to verify against; never matches.
  private readonly decoySalt = randomBytes(SALT_BYTES);

  constructor(private readonly derive: Derive) {}

  private async scrypt(password: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
    try {
      return await this.derive(password, salt, params);
    } catch (err) {
      if (err instanceof ScryptPoolBusyError) {
        throw ociError('TOOMANYREQUESTS', { limit: 'capacity', retryAfter: 1 }, { message: 'too many logins in progress; retry in 1 second', headers: { 'Retry-After': '1' } });
      }
      throw err;
    }
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const key = await this.scrypt(password, salt, PARAMS);
    return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
  }

  async hashRobotSecret(secret: string, generated: boolean): Promise<string> {
    return generated ? sha256Hash(secret) : this.hash(secret);
  }

  /**
   * Whether `secret` matches `stored` (undefined: there is no such account). Every `false`
   * costs one scrypt derivation with the current parameters, whatever the stored form:
   * an absent account, a fast-hashed robot secret and a malformed hash are verified
   * against a decoy instead, so a failure takes as long as any other and does not tell
   * which accounts exist or how their secrets were made. Only a match may be fast.
   */
  async verify(secret: string, stored: string | undefined): Promise<boolean> {
    return (await this.match(secret, stored === undefined ? [] : [stored])) !== undefined;
  }

  /**
   * The one of `candidates` that `secret` matches, if any (a robot's current and previous
   * secret during a rotation's grace window). Fast hashes are compared first; a failure costs
   * one scrypt derivation per scrypt-hashed candidate, and at least one (the decoy).
   */
  async match(secret: string, candidates: readonly string[]): Promise<string | undefined> {
    const fast = Buffer.from(sha256Hash(secret));
    const slow: { stored: string; parts: string[] }[] = [];
    for (const stored of candidates) {
      const parts = stored.split('$');
      if (parts[0] === 'sha256' && sameBytes(fast, Buffer.from(stored))) return stored;
      if (parts[0] === 'scrypt' && parts[4] && parts[5]) slow.push({ stored, parts });
    }
    for (const { stored, parts } of slow) {
      const [, n, r, p, salt, hash] = parts;
      const actual = await this.scrypt(secret, Buffer.from(salt!, 'base64'), { N: Number(n), r: Number(r), p: Number(p), keyLength: PARAMS.keyLength });
      if (sameBytes(actual, Buffer.from(hash!, 'base64'))) return stored;
    }
    if (slow.length === 0) await this.scrypt(secret, this.decoySalt, PARAMS);
    return undefined;
  }
}
