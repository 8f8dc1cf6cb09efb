import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { LimitsConfig } from '../config.js';
import { BodyDeadlines } from '../http/body-deadline.js';
import { ConnectionCap } from '../http/connection-cap.js';
import { closeWhenBodyUnread } from '../http/lingering-close.js';

/**
 * What one client may hold of the server: the time to send headers, the pace of a
 * request body, the number of open connections; and a graceful close after any answer
 * given before the body was read.
 */
export default fp<{ http: LimitsConfig['http'] }>(
  async function clientLimits(app: FastifyInstance, { http }) {
    // Node checks header deadlines on a timer (every 30 s by default, which would double
    // a short timeout); it also closes connections that send nothing at all.
    Object.assign(app.server, { headersTimeout: http.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, Math.max(50, http.headersTimeoutMs / 4)) });
    if (http.maxConnectionsPerClient > 0) new ConnectionCap(http.maxConnectionsPerClient, app.log).install(app.server);
    app.addHook('onSend', closeWhenBodyUnread);
    if (http.bodyMinBytesPerSecond > 0) {
      const deadlines = new BodyDeadlines({ minBytesPerSecond: http.bodyMinBytesPerSecond, windowMs: http.bodyRateWindowMs, graceMs: http.bodyGraceMs }, app.log);
      app.addHook('onRequest', deadlines.watch);
      app.addHook('preParsing', deadlines.guardParsedBody);
      app.addHook('onClose', async () => deadlines.close());
    }
  },
  { name: 'wharf-client-limits' },
);
