import { pino } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { listenWhileStarting } from './http/starting.js';

const SHUTDOWN_DEADLINE_MS = 25_000;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`wharf-registry: ${(err as Error).message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Log lines are written asynchronously: under load, lines that arrive while a write is
  // in flight go out together in the next one, instead of one synchronous write each.
  // pino flushes what is left when the process exits.
  const logger = pino({ level: config.logLevel }, pino.destination({ dest: 1, sync: false }));
  const starting = await listenWhileStarting(config.host, config.port);
  logger.info({ address: `${config.host}:${config.port}` }, 'starting: /healthz answers, /readyz says 503 until the database and storage are open');
  // Stopped while starting: exit at once, through 'exit' handlers (the embedded database's initdb child is one).
  const stopWhileStarting = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopped while starting');
    process.exit(1);
  };
  process.once('SIGTERM', stopWhileStarting);
  process.once('SIGINT', stopWhileStarting);
  let app;
  try {
    app = await buildApp({
      config,
      loggerInstance: logger,
      replication: { settings: { chunkSize: config.replication.chunkSizeBytes, maxAttempts: config.replication.maxAttempts, retryBaseMs: config.replication.retryBaseMs, parallelTasks: config.replication.parallelTasks } },
    });
  } finally {
    await starting.close();
    process.off('SIGTERM', stopWhileStarting);
    process.off('SIGINT', stopWhileStarting);
  }
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests, stopping background jobs');
    // Inside Kubernetes' default 30 s termination grace period: past it, cut what is left.
    const deadline = setTimeout(() => {
      app.log.warn({ ms: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed: closing the remaining connections');
      app.server.closeAllConnections();
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    try {
      await app.close();
      app.log.info('shut down cleanly');
    } catch (err) {
      app.log.error({ err }, 'error while shutting down');
      process.exitCode = 1;
    }
    process.exit();
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  const address = await app.listen({ host: config.host, port: config.port });
  app.log.info({ address, dataDir: config.dataDir, database: config.database.url ? 'postgresql' : 'pglite', storage: config.storage.driver, auth: config.auth.mode }, 'wharf registry listening');
}

main().catch((err) => {
  process.stderr.write(`wharf-registry: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
