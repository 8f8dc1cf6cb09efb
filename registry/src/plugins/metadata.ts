import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { openMetadata, type DatabaseConfig, type Metadata } from '../metadata/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    metadata: Metadata;
  }
}

export interface MetadataPluginOptions {
  database: DatabaseConfig;
  /** Use an already opened metadata handle instead (tests, multi-surface processes). */
  metadata?: Metadata;
}

export default fp<MetadataPluginOptions>(
  async function metadataPlugin(app: FastifyInstance, options) {
    const metadata = options.metadata ?? (await openMetadata(options.database));
    app.decorate('metadata', metadata);
    app.log.info({ driver: metadata.sql.driver }, 'metadata database ready');
    if (!options.metadata) app.addHook('onClose', async () => metadata.sql.close());
  },
  { name: 'wharf-metadata' },
);
