import type { ProjectStore } from '../metadata/projects.js';
import { projectsWith, repositoryActions, type Principal } from './policy.js';
import { projectOf, type Access } from './scopes.js';

export interface GrantContext {
  /**
   * The principal proved itself with its password (or robot secret) in this request. Only
   * then may the token carry the management scope: a token from an anonymous request or
   * from a refresh token never can, so a leaked token or refresh token is no account.
   */
  passwordLogin: boolean;
}

/**
 * What a token may carry: for each requested scope, the intersection of the requested
 * actions and what the principal holds now. Scopes that yield nothing are dropped.
 */
export async function grantAccess(principal: Principal, requested: Access[], projects: ProjectStore, context: GrantContext): Promise<Access[]> {
  const granted: Access[] = [];
  const facts = new Map<string, Awaited<ReturnType<ProjectStore['get']>>>();
  for (const scope of requested) {
    if (scope.type === 'registry') {
      if (!scope.actions.includes('*') || granted.some((a) => a.type === 'registry' && a.name === scope.name)) continue;
      // Anyone may list the catalog; the listing is filtered to what they can see.
      if (scope.name === 'catalog') granted.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      // What the management API then allows is the principal's policy, checked per call.
      if (scope.name === 'management' && context.passwordLogin && principal.kind !== 'anonymous') granted.push({ type: 'registry', name: 'management', actions: ['*'] });
      continue;
    }
    const project = projectOf(scope.name);
    if (!facts.has(project)) facts.set(project, await projects.get(project));
    const allowed = repositoryActions(principal, facts.get(project));
    const wanted = scope.actions.includes('*') ? [...allowed] : scope.actions;
    const actions = wanted.filter((a) => allowed.has(a));
    if (actions.length > 0) granted.push({ type: 'repository', name: scope.name, actions });
  }
  return granted;
}

/** Projects whose repositories `principal` may see in the catalog; undefined means all. */
export async function visibleProjects(principal: Principal, projects: ProjectStore): Promise<Set<string> | undefined> {
  const granted = projectsWith(principal, 'repository:pull');
  if (granted === 'all') return undefined;
  return new Set([...(granted.public ? await projects.publicNames() : []), ...granted.names]);
}
