import { createHash, type Hash } from 'node:crypto';
import { ociError } from './errors.js';

/** Digest algorithms this registry accepts, with their hex lengths (OCI image-spec "Digests"). */
const algorithms = {
  sha256: { hash: 'sha256', hexLength: 64 },
  sha512: { hash: 'sha512', hexLength: 128 },
} as const;

export type DigestAlgorithm = keyof typeof algorithms;
export const DEFAULT_ALGORITHM: DigestAlgorithm = 'sha256';

export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  readonly value: string;
}

// digest ::= algorithm ":" encoded (image-spec descriptor.md)
const DIGEST_GRAMMAR = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Parses a digest string; returns undefined when it is not a digest this registry can verify. */
export function tryParseDigest(value: string): ParsedDigest | undefined {
  const m = DIGEST_GRAMMAR.exec(value);
  if (!m) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  const spec = Object.hasOwn(algorithms, algorithm) ? algorithms[algorithm] : undefined;
  const hex = m[2]!;
  if (!spec || hex.length !== spec.hexLength || !/^[a-f0-9]+$/.test(hex)) return undefined;
  return { algorithm, hex, value };
}

export function isDigest(value: string): boolean {
  return tryParseDigest(value) !== undefined;
}

/** Parses a digest or throws DIGEST_INVALID naming the offending value. */
export function parseDigest(value: string | undefined, what = 'digest'): ParsedDigest {
  const parsed = value === undefined ? undefined : tryParseDigest(value);
  if (!parsed) throw ociError('DIGEST_INVALID', { [what]: value ?? null }, { message: `invalid ${what}: expected sha256:<64 hex> or sha512:<128 hex>` });
  return parsed;
}

export function newHasher(algorithm: DigestAlgorithm = DEFAULT_ALGORITHM): Hash {
  return createHash(algorithms[algorithm].hash);
}

export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = DEFAULT_ALGORITHM): string {
  return `${algorithm}:${newHasher(algorithm).update(data).digest('hex')}`;
}
