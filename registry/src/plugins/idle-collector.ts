import type { FastifyInstance } from 'fastify';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { exposedGc, IdleCollector, watchEventLoop } from '../idle-collector.js';

/** How much more memory than after the last collection a burst must leave held (heldMemory) for a quiet spell to collect. */
export const IDLE_COLLECTION_MIN_GROWTH = 16 * 1024 * 1024;

/**
 * What a full collection of the main thread could free: its old generation in use, and the memory
 * its objects hold outside the heap (buffers). The young generation is left out: scavenges free it.
 */
function heldMemory(): number {
  let held = getHeapStatistics().external_memory;
  for (const space of getHeapSpaceStatistics()) if (!space.space_name.startsWith('new_')) held += space.space_used_size;
  return held;
}

/**
 * Collects garbage, here and on the embedded database's thread, when the registry goes
 * quiet after work that left memory behind (idle-collector.ts). Needs --expose-gc, which REGISTRY_NODE_FLAGS
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
      help: 'Full garbage collections run because the process went quiet after work that left memory behind',
      registers: [app.metrics],
    });
    const collector = new IdleCollector(
      () => {
        gc();
        app.metadata.sql.collectGarbage?.();
        collections.inc();
      },
      heldMemory,
      IDLE_COLLECTION_MIN_GROWTH,
    );
    const watch = watchEventLoop(collector);
    app.addHook('onClose', async () => watch.stop());
  },
  { name: 'wharf-idle-collector', dependencies: ['wharf-metadata', 'wharf-metrics'] },
);
