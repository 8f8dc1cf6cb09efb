import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { BlobService } from '../services/blobs.js';
import { ListingService } from '../services/listings.js';
import { ManifestService } from '../services/manifests.js';
import { UploadService } from '../services/uploads.js';

export interface RegistryServices {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: RegistryServices;
  }
}

export default fp(
  async function servicesPlugin(app: FastifyInstance) {
    app.decorate('services', {
      blobs: new BlobService(app.metadata, app.blobStore),
      uploads: new UploadService(app.metadata, app.blobStore),
      manifests: new ManifestService(app.metadata),
      listings: new ListingService(app.metadata),
    });
  },
  { name: 'wharf-services', dependencies: ['wharf-metadata', 'wharf-storage'] },
);
