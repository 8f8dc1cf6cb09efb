import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { defaultJobsConfig, defaultLimitsConfig, defaultWebhooksConfig, type RegistryConfig } from './config.js';
import distribution from './http/distribution/index.js';
import { rewriteDistributionUrl } from './http/distribution/route-paths.js';
import errors, { clientErrorHandler, frameworkErrorHandler } from './http/errors.js';
import health from './http/health.js';
import inputEdge from './http/input-edge.js';
import type { Metadata } from './metadata/index.js';
import metadataPlugin from './plugins/metadata.js';
import servicesPlugin from './plugins/services.js';
import storagePlugin from './plugins/storage.js';
import authPlugin from './plugins/auth.js';
import token from './http/token.js';
import management from './http/management/index.js';
import metrics from './http/metrics.js';
import jobsPlugin, { type JobsPluginOptions } from './plugins/jobs.js';
import metricsPlugin from './plugins/metrics.js';
import idleCollectorPlugin from './plugins/idle-collector.js';
import clientLimitsPlugin from './plugins/client-limits.js';
import proxyPlugin from './plugins/proxy.js';
import webhooksPlugin from './plugins/webhooks.js';
import { connectWebhookSources } from './webhooks/sources.js';
import replicationPlugin, { type ReplicationPluginOptions } from './plugins/replication.js';
import { describeSchemaErrors } from './http/validation-message.js';

export interface AppOptions {
  config: Pick<RegistryConfig, 'database' | 'storage' | 'logLevel' | 'auth'> & Partial<Pick<RegistryConfig, 'jobs' | 'trustedProxies' | 'limits'>> & { proxy?: Partial<RegistryConfig['proxy']>; webhooks?: Partial<RegistryConfig['webhooks']> };
  logger?: FastifyServerOptions['logger'];
  /** A ready pino logger (main.ts: asynchronous writes to stdout); `logger` options otherwise. */
  loggerInstance?: FastifyBaseLogger;
  /** An already opened metadata handle (tests that restart the app around one database). */
  metadata?: Metadata;
  /** Job worker tuning (tests shorten leases and retries). */
  jobs?: Omit<JobsPluginOptions, 'jobs'>;
  /** Replication tuning (tests shorten retries and chunks). */
  replication?: ReplicationPluginOptions;
}

/**
 * Builds the registry app: infrastructure plugins (database, storage), then
 * services, then the HTTP surfaces. Closing the app closes the pools.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? { level: options.config.logLevel } }),
    // One access-log line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    rewriteUrl: (req) => rewriteDistributionUrl(req.url ?? '/'),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    exposeHeadRoutes: false,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    bodyLimit: 1024 * 1024,
    // X-Forwarded-For/-Host/-Proto are believed only from these peers (request.ip, .host, .protocol).
    trustProxy: options.config.trustedProxies?.length ? options.config.trustedProxies : false,
    // Unknown fields are an error, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(describeSchemaErrors(errors, dataVar)),
    // The embedded database's first start runs initdb, which can take tens of seconds on a busy machine.
    pluginTimeout: 120_000,
  });

  // close() closes idle keep-alive connections once; a connection whose response is still
  // being sent at that moment would stay open for the keep-alive timeout (72 s) after it
  // turns idle. Keep closing idle connections until the server has closed.
  let idleSweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 100);
    idleSweep.unref();
  });
  app.addHook('onClose', async () => clearInterval(idleSweep));

  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, url: request.originalUrl, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  const limits = options.config.limits ?? defaultLimitsConfig();
  await app.register(errors);
  // Before every other hook: nothing may reach the database with text it cannot store.
  await app.register(inputEdge);
  await app.register(clientLimitsPlugin, { http: limits.http });
  await app.register(metadataPlugin, { database: options.config.database, ...(options.metadata && { metadata: options.metadata }) });
  await app.register(storagePlugin, { storage: options.config.storage });
  await app.register(metricsPlugin);
  await app.register(authPlugin, { auth: options.config.auth });
  await app.register(servicesPlugin, { gcGraceSeconds: (options.config.jobs ?? defaultJobsConfig()).gc.graceSeconds, uploadLimits: limits.uploads });
  const proxy = options.config.proxy ?? {};
  await app.register(proxyPlugin, {
    ...(proxy.spoolDir && { spoolDir: proxy.spoolDir }),
    timeouts: { ...(proxy.responseTimeoutMs && { responseMs: proxy.responseTimeoutMs }), ...(proxy.bodyIdleTimeoutMs && { bodyIdleMs: proxy.bodyIdleTimeoutMs }) },
    ...(proxy.prefetch !== undefined && { prefetch: proxy.prefetch }),
    ...(proxy.prefetchRetryMs !== undefined && { prefetchRetryMs: proxy.prefetchRetryMs }),
  });
  await app.register(idleCollectorPlugin);
  await app.register(webhooksPlugin, { webhooks: { ...defaultWebhooksConfig(), ...options.config.webhooks } });
  await app.register(jobsPlugin, { ...options.jobs, jobs: options.config.jobs ?? defaultJobsConfig() });
  await app.register(replicationPlugin, options.replication ?? {});
  connectWebhookSources(app);
  await app.register(health);
  await app.register(metrics);
  if (app.auth.tokens) await app.register(token);
  await app.register(distribution);
  await app.register(management);
  return app;
}
