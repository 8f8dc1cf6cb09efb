import { ociError } from './errors.js';
import { tryParseDigest, type ParsedDigest } from './digest.js';

// distribution-spec "Pulling manifests": <name> and <reference> grammars.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Many clients cap `<host>/<name>` at 255 characters; a name alone may not exceed it. */
export const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_GRAMMAR.test(name);
}

/** Throws NAME_INVALID unless `name` matches the spec's repository grammar. */
export function assertRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    const reason = name.length > MAX_NAME_LENGTH
      ? `longer than ${MAX_NAME_LENGTH} characters`
      : 'must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((.|_|__|-+)[a-z0-9]+)*)*';
    throw ociError('NAME_INVALID', { name: name.length > 300 ? `${name.slice(0, 300)}…` : name }, { message: `invalid repository name: ${reason}` });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_GRAMMAR.test(tag);
}

export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: ParsedDigest };

/** A tag or a digest; undefined for anything else, which cannot name a manifest. */
export function tryParseManifestReference(reference: string): ManifestReference | undefined {
  if (reference.includes(':')) {
    const digest = tryParseDigest(reference);
    return digest && { kind: 'digest', digest };
  }
  return isValidTag(reference) ? { kind: 'tag', tag: reference } : undefined;
}

/** A manifest reference is a tag or a digest; anything else is rejected before storage is touched. */
export function parseManifestReference(reference: string): ManifestReference {
  const ref = tryParseManifestReference(reference);
  if (ref) return ref;
  if (reference.includes(':')) throw ociError('DIGEST_INVALID', { reference }, { message: 'invalid manifest digest' });
  throw ociError('TAG_INVALID', { reference }, { message: 'invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}' });
}
