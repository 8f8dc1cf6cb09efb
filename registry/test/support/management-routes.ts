import type { FastifyInstance } from 'fastify';

export interface Route {
  method: string;
  url: string;
}

/** The public OpenAPI document: readable by anyone, so not a management call. */
export const PUBLIC_MANAGEMENT_ROUTES = ['GET /api/v1/openapi.json'];

/** Every route under /api/v1 as the app registered it (not a hand-written list, so new routes are covered). */
export function managementRoutes(app: FastifyInstance): Route[] {
  const routes = app.management.routes.filter((r) => !PUBLIC_MANAGEMENT_ROUTES.includes(`${r.method} ${r.url}`));
  if (routes.length < 20) throw new Error(`expected the management API's routes, found ${routes.length}: ${JSON.stringify(routes)}`);
  return routes;
}

/** The route's path with each `:param` replaced from `values` (unknown parameters get `x`). */
export function fillRoute(url: string, values: Record<string, string>): string {
  return url.replace(/:(\w+)/g, (_m, name: string) => encodeURIComponent(values[name] ?? 'x'));
}

/**
 * A body that the route would accept and act on, so a refused call is refused for its
 * credentials and not for its input. Routes without a known body get `{}`.
 */
export function actingBody(route: Route): unknown {
  if (route.method === 'GET' || route.method === 'DELETE' || route.method === 'HEAD') return undefined;
  const path = route.url.replace(/^\/api\/v1/, '');
  const bodies: Record<string, unknown> = {
    'PUT /users/:username': { password: 'taken-over-password', admin: true },
    'PUT /projects/:project': { public: true },
    'PUT /projects/:project/quota': { limitBytes: 1 },
    'PUT /projects/:project/members/:username': { role: 'projectAdmin' },
    'PUT /projects/:project/robots/:robot': { permissions: [{ access: [{ resource: 'repository', action: 'pull' }, { resource: 'repository', action: 'push' }] }] },
    'PUT /robots/:robot': { permissions: [{ namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }] },
    'POST /gc': { dryRun: true },
    'PUT /registries/:name': { provider: 'wharf', url: 'http://127.0.0.1:9' },
    'PUT /replication/policies/:name': { mode: 'push', registry: 'x' },
    'POST /replication/executions': { policy: 'x' },
  };
  return bodies[`${route.method} ${path}`] ?? {};
}

/** Calls one management route with `authorization` (or none). */
export async function callRoute(base: string, route: Route, values: Record<string, string>, authorization?: string): Promise<Response> {
  const body = actingBody(route);
  return fetch(`${base}${fillRoute(route.url, values)}`, {
    method: route.method,
    headers: { ...(authorization && { Authorization: authorization }), ...(body !== undefined && { 'Content-Type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}
