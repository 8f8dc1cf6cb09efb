import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { StorageConfig } from '../config.js';
import type { BlobStore } from '../storage/blob-store.js';
import { FilesystemBlobStore } from '../storage/fs.js';
import { S3BlobStore } from '../storage/s3.js';

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
    case 's3':
      return new S3BlobStore(config.s3);
  }
}

export interface StoragePluginOptions {
  storage: StorageConfig;
}

export default fp<StoragePluginOptions>(
  async function storagePlugin(app: FastifyInstance, options) {
    const store = await openBlobStore(options.storage);
    app.decorate('blobStore', store);
    if (store instanceof S3BlobStore) app.addHook('onClose', async () => store.close());
    app.log.info({ driver: store.driver }, 'blob storage ready');
  },
  { name: 'wharf-storage' },
);
