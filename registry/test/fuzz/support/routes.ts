import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import distribution from '../../../src/http/distribution/index.js';
import { NAMED_PREFIX } from '../../../src/http/distribution/route-paths.js';
import token from '../../../src/http/token.js';

/** Where a route lives: the surface decides which credentials it reads. */
export type Surface = 'v2' | 'token' | 'api';

/** A JSON schema as far as the generators read it (TypeBox schemas and OpenAPI both fit). */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
}

export interface RouteSpec {
  surface: Surface;
  method: string;
  /** The path as documented, with `{param}` placeholders: `/v2/{name}/manifests/{reference}`. */
  template: string;
  params: string[];
  query: Record<string, JsonSchema>;
  /** The request body's schema, when the route takes a structured body. */
  body?: JsonSchema;
  /** How the body is sent when it is structured. */
  bodyType?: 'json' | 'form';
  /** The repository action the /v2 authorization hook asks of a token. */
  action?: string;
}

/**
 * Anything, callable, at any depth: the route plugins read services and stores from
 * the instance when they register, but only call them while serving a request, which
 * this instance never does. `then` stays undefined so that nothing mistakes it for a promise.
 */
function inert(): unknown {
  const target = function () {} as unknown as object;
  const proxy: unknown = new Proxy(target, {
    get: (_t, key) => (key === 'then' ? undefined : key === Symbol.toPrimitive ? () => 'inert' : proxy),
    apply: () => proxy,
  });
  return proxy;
}

function templateOf(url: string): string {
  const path = url.startsWith(NAMED_PREFIX) ? `/v2/:name/${url.slice(NAMED_PREFIX.length + ':name/'.length)}` : url;
  return path.replace(/:([A-Za-z_]+)/g, '{$1}');
}

/**
 * The /v2 and /token routes, read from the registry's own route plugins as they
 * register (an `onRoute` hook), so a route added there is fuzzed without touching
 * this suite. Their query and body schemas come along.
 */
export async function dataPlaneRoutes(): Promise<RouteSpec[]> {
  const app: FastifyInstance = Fastify({ exposeHeadRoutes: false });
  for (const decoration of ['auth', 'services', 'metadata']) app.decorate(decoration, inert());
  const routes: RouteSpec[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const template = templateOf(route.url);
    const schema = (route.schema ?? {}) as { querystring?: JsonSchema; body?: JsonSchema };
    for (const method of methods) {
      routes.push({
        surface: template === '/token' ? 'token' : 'v2',
        method,
        template,
        params: [...template.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]!),
        query: schema.querystring?.properties ?? {},
        ...(schema.body && { body: schema.body, bodyType: 'form' as const }),
        ...(route.config && typeof (route.config as { action?: string }).action === 'string' && { action: (route.config as { action: string }).action }),
      });
    }
  });
  await app.register(token);
  await app.register(distribution);
  await app.ready();
  await app.close();
  return routes;
}

interface OpenApiOperation {
  parameters?: { name: string; in: string; schema: JsonSchema }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
}

/** The management routes, from the OpenAPI document the running registry serves. */
export function managementRoutes(openapi: { paths: Record<string, Record<string, OpenApiOperation>> }): RouteSpec[] {
  const routes: RouteSpec[] = [];
  for (const [template, operations] of Object.entries(openapi.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const parameters = operation.parameters ?? [];
      const json = operation.requestBody?.content['application/json']?.schema;
      routes.push({
        surface: 'api',
        method: method.toUpperCase(),
        template,
        params: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        ...(json && { body: json, bodyType: 'json' as const }),
      });
    }
  }
  return routes;
}
