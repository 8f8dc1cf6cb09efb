import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { StorageConfig } from '../config.js';
import type { BlobStore } from '../storage/blob-store.js';
import { FilesystemBlobStore } from '../storage/fs.js';

declare module 'fastify' {
  interface FastifyInstance {
    blobStore: BlobStore;
  }
}

export type { StorageConfig };

export async function openBlobStore(config: StorageConfig): Promise<BlobStore> {
  switch (config.driver) {
    case 'filesystem':
      return new FilesystemBlobStore(config.dir).init();
    case 's3': {
      // Loaded only when used: the AWS SDK adds tens of megabytes to a filesystem-backed process.
      const { S3BlobStore } = await import('../storage/s3.js');
      return new S3BlobStore(config.s3);
    }
  }
}

export interface StoragePluginOptions {
  storage: StorageConfig;
}

export default fp<StoragePluginOptions>(
  async function storagePlugin(app: FastifyInstance, options) {
    const store = await openBlobStore(options.storage);
    app.decorate('blobStore', store);
    app.addHook('onClose', async () => store.close?.());
    app.log.info({ driver: store.driver }, 'blob storage ready');
  },
  { name: 'wharf-storage' },
);
