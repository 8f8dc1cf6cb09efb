import { ociError } from '../oci/errors.js';
import { isValidRepositoryName } from '../oci/reference.js';

/**
 * Scopes of the distribution token spec: `repository:<name>:<action>[,<action>]`,
 * `registry:catalog:*`, and Wharf's `registry:management:*` (the management API).
 * Access entries in tokens use the same triple.
 */
export interface Access {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export const REPOSITORY_ACTIONS = ['pull', 'push', 'delete', '*'] as const;

/** The scope a bearer token needs to call the management API (/api/v1). */
export const MANAGEMENT_SCOPE = 'registry:management:*';

/** The `registry` resources a token can name. */
const REGISTRY_RESOURCES = ['catalog', 'management'];

/** Whether a token's access list carries the management scope. */
export function grantsManagement(access: readonly Access[]): boolean {
  return access.some((a) => a.type === 'registry' && a.name === 'management' && a.actions.includes('*'));
}

/**
 * Parses one scope; undefined for scopes this registry does not grant (they are ignored,
 * as the spec allows). A repository scope on a name that no repository can have is
 * refused (NAME_INVALID): a token must never carry a grant on `demo/../x`.
 */
export function parseScope(scope: string): Access | undefined {
  // The name may contain ':' only in a `host:port/` prefix, which repository names here never have.
  const m = /^(repository|registry)(?:\([a-z0-9]+\))?:([^:]+):([a-z*]+(?:,[a-z*]+)*)$/.exec(scope.trim());
  if (!m) return undefined;
  const type = m[1] as Access['type'];
  const actions = [...new Set(m[3]!.split(','))];
  if (type === 'registry') return REGISTRY_RESOURCES.includes(m[2]!) ? { type, name: m[2]!, actions: actions.filter((a) => a === '*') } : undefined;
  if (!isValidRepositoryName(m[2]!)) {
    throw ociError('NAME_INVALID', { scope: scope.slice(0, 300) }, { message: `invalid repository name in scope ${JSON.stringify(scope.slice(0, 300))}` });
  }
  return { type, name: m[2]!, actions: actions.filter((a) => (REPOSITORY_ACTIONS as readonly string[]).includes(a)) };
}

/** Scopes from repeated `scope` parameters, each possibly space-separated (the OAuth2 form). */
export function parseScopes(values: string | string[] | undefined): Access[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  return list.flatMap((v) => v.split(' ')).filter((s) => s.length > 0).map(parseScope).filter((a): a is Access => a !== undefined);
}

export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

/** The project of a repository: its first path segment. */
export function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash === -1 ? repository : repository.slice(0, slash);
}
