import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

// scrypt is memory-hard; N=2^15, r=8 uses 32 MiB per hash (OWASP's minimum for scrypt).
const PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 128 * options.N! * options.r! * 2 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

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

export async function hashRobotSecret(secret: string, generated: boolean): Promise<string> {
  return generated ? sha256Hash(secret) : hashPassword(secret);
}

export async function verifyRobotSecret(secret: string, stored: string): Promise<boolean> {
  if (!stored.startsWith('sha256$')) return verifyPassword(secret, stored);
  const expected = Buffer.from(stored);
  const actual = Buffer.from(sha256Hash(secret));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
