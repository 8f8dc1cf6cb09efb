import picomatch from 'picomatch';
import { ociError } from '../oci/errors.js';

/**
 * Which tags and repositories a rule applies to, as Harbor's selectors: doublestar
 * patterns (picomatch, so `**`, `*`, `?`, `{a,b}` and `[0-9]`) with matches/excludes.
 * Repository patterns match the name inside the project (`app/api` for `proj/app/api`).
 * An absent `…Matches` means every name; an absent `…Excludes` excludes nothing.
 */
export interface Selectors {
  tagMatches?: string;
  tagExcludes?: string;
  repoMatches?: string;
  repoExcludes?: string;
}

export type Matcher = (name: string) => boolean;

const cache = new Map<string, Matcher>();

/** A compiled doublestar pattern; `*` stops at `/`, `**` crosses it; dotfiles (`.sig` tags) match too. */
export function globMatcher(pattern: string): Matcher {
  let matcher = cache.get(pattern);
  if (!matcher) {
    matcher = picomatch(pattern, { dot: true, nobrace: false });
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, matcher);
  }
  return matcher;
}

/** Refuses a pattern picomatch cannot compile, or one that is absurdly long, naming the field. */
export function checkPattern(field: string, pattern: string | undefined): void {
  if (pattern === undefined) return;
  if (pattern.length === 0 || pattern.length > 256) throw ociError('INVALID_REQUEST', { field }, { message: `${field}: a pattern of 1 to 256 characters` });
  try {
    picomatch.makeRe(pattern, { dot: true });
  } catch (err) {
    throw ociError('INVALID_REQUEST', { field, pattern }, { message: `${field}: "${pattern}" is not a valid doublestar pattern (${(err as Error).message})` });
  }
}

export function checkSelectors(where: string, s: Selectors): void {
  checkPattern(`${where}.tagMatches`, s.tagMatches);
  checkPattern(`${where}.tagExcludes`, s.tagExcludes);
  checkPattern(`${where}.repoMatches`, s.repoMatches);
  checkPattern(`${where}.repoExcludes`, s.repoExcludes);
}

/** The repository name the repository patterns see: the path inside the project. */
export function repositoryInProject(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(slash + 1);
}

export function selectsRepository(s: Selectors, repository: string): boolean {
  const name = repositoryInProject(repository);
  return (s.repoMatches === undefined || globMatcher(s.repoMatches)(name)) && (s.repoExcludes === undefined || !globMatcher(s.repoExcludes)(name));
}

export function selectsTag(s: Selectors, tag: string): boolean {
  return (s.tagMatches === undefined || globMatcher(s.tagMatches)(tag)) && (s.tagExcludes === undefined || !globMatcher(s.tagExcludes)(tag));
}
