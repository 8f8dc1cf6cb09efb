import swagger from '@fastify/swagger';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { MANAGEMENT_SCOPE } from '../../auth/scopes.js';
import { ProjectService } from '../../services/projects.js';
import { RobotService } from '../../services/robots.js';
import { UserService } from '../../services/users.js';
import audit from './audit.js';
import gc from './gc.js';
import { principalHook } from './principal.js';
import projects from './projects.js';
import replication from './replication.js';
import { replicationSchemas } from './replication-schemas.js';
import robots from './robots.js';
import { sharedSchemas } from './schemas.js';
import users from './users.js';

export interface ManagementServices {
  projects: ProjectService;
  robots: RobotService;
  users: UserService;
  /** Every route under /api/v1, as registered (for route-wide checks: tests, fuzzing). */
  routes: readonly { method: string; url: string }[];
}

declare module 'fastify' {
  interface FastifyInstance {
    management: ManagementServices;
  }
}

export const API_PREFIX = '/api/v1';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', principalHook(app.auth));
  await app.register(projects);
  await app.register(robots);
  await app.register(users);
  await app.register(audit);
  await app.register(gc);
  await app.register(replication);
};

/**
 * The management API under /api/v1, for people and for declarative callers (the
 * operator): create-or-update by name with PUT, stable ids, 409 on conflicts,
 * paginated lists. The OpenAPI document is generated from the route schemas.
 */
async function management(app: FastifyInstance): Promise<void> {
  const routeTable: { method: string; url: string }[] = [];
  app.decorate('management', {
    projects: new ProjectService(
      app.metadata,
      app.auth.audit,
      () => app.services.references?.clear(),
      () => app.proxy.projects.invalidate(),
    ),
    robots: new RobotService(app.metadata, app.auth.audit, app.auth.passwords),
    users: new UserService(app.metadata, app.auth.audit, app.auth.passwords),
    routes: routeTable,
  });
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(`${API_PREFIX}/`)) return;
    for (const method of [route.method].flat()) routeTable.push({ method, url: route.url });
  });
  for (const schema of [...sharedSchemas, ...replicationSchemas]) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Wharf management API', version: 'v1', description: 'Projects, members, robot accounts, quotas, users, the audit log, and replication (remote registries, policies, executions).' },
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          basic: { type: 'http', scheme: 'basic' },
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: `A token from /token that carries the scope ${MANAGEMENT_SCOPE}, which /token grants only with a password; other tokens are refused` },
        },
      },
      security: [{ basic: [] }, { bearer: [] }],
    },
    hideUntagged: true,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(routes, { prefix: API_PREFIX });
  app.get(`${API_PREFIX}/openapi.json`, { schema: { hide: true } }, async () => app.swagger());
}

export default fp(management, { name: 'wharf-management', dependencies: ['wharf-auth', 'wharf-metadata', 'wharf-jobs', 'wharf-services', 'wharf-proxy', 'wharf-replication'] });
