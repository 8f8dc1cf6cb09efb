import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { exposedGc, IdleCollector, watchEventLoop } from '../idle-collector.js';

/**
 * Collects garbage, here and on the embedded database's thread, when the registry goes
 * quiet after work (idle-collector.ts). Needs --expose-gc, which REGISTRY_NODE_FLAGS
 * sets; started without it (tests that build the app in their own process), it is off.
 */
export default fp(
  async function idleCollectorPlugin(app: FastifyInstance) {
    const gc = exposedGc();
    if (!gc) {
      app.log.debug('idle garbage collection off: Node.js was started without --expose-gc');
      return;
    }
    const collections = new Counter({
      name: 'wharf_idle_collections_total',
      help: 'Full garbage collections run because the process went quiet after work',
      registers: [app.metrics],
    });
    const collector = new IdleCollector(() => {
      gc();
      app.metadata.sql.collectGarbage?.();
      collections.inc();
    });
    const watch = watchEventLoop(collector);
    app.addHook('onClose', async () => watch.stop());
  },
  { name: 'wharf-idle-collector', dependencies: ['wharf-metadata', 'wharf-metrics'] },
);
