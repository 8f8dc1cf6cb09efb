import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { BlobStore } from '../storage/blob-store.js';
import { FilesystemBlobStore } from '../storage/fs.js';

declare module 'fastify' {
  interface FastifyInstance {
    blobStore: BlobStore;
  }
}

export type StorageConfig = { driver: 'filesystem'; dir: string };

export async function openBlobStore(config: StorageConfig): Promise<BlobStore> {
  switch (config.driver) {
    case 'filesystem':
      return new FilesystemBlobStore(config.dir).init();
  }
}

export interface StoragePluginOptions {
  storage: StorageConfig;
}

export default fp<StoragePluginOptions>(
  async function storagePlugin(app: FastifyInstance, options) {
    const store = await openBlobStore(options.storage);
    app.decorate('blobStore', store);
    app.log.info({ driver: store.driver }, 'blob storage ready');
  },
  { name: 'wharf-storage' },
);
