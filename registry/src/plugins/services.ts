import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { BlobService } from '../services/blobs.js';
import { ListingService } from '../services/listings.js';
import { ManifestService } from '../services/manifests.js';
import { reservationReuseSeconds, UploadService, type UploadLimits } from '../services/uploads.js';
import { QuotaGuard } from '../services/quota.js';
import { ArtifactEvents } from '../events/artifact-events.js';
import { ManifestContentCache, ReferenceCache } from '../services/manifest-cache.js';

export interface RegistryServices {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
  /** Artifact pushes, pulls and deletes, for webhooks and event-based replication. */
  events: ArtifactEvents;
  /** Storage quota checks; webhooks observe their refusals and warnings. */
  quota: QuotaGuard;
  /** Present with the embedded database only (see ReferenceCache). */
  references?: ReferenceCache;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: RegistryServices;
  }
}

export interface ServicesOptions {
  /** The garbage collector's grace window, which bounds how long a blob reservation is reused. */
  gcGraceSeconds: number;
  uploadLimits: UploadLimits;
}

export default fp(
  async function servicesPlugin(app: FastifyInstance, options: ServicesOptions) {
    const quota = new QuotaGuard(app.metadata);
    const references = app.metadata.sql.driver === 'pglite' ? new ReferenceCache() : undefined;
    app.decorate('services', {
      blobs: new BlobService(app.metadata, app.blobStore, quota),
      uploads: new UploadService(app.metadata, app.blobStore, quota, options.uploadLimits, reservationReuseSeconds(options.gcGraceSeconds)),
      manifests: new ManifestService(app.metadata, new ManifestContentCache(), references),
      listings: new ListingService(app.metadata),
      events: new ArtifactEvents(app.log.child({ component: 'events' })),
      quota,
      ...(references && { references }),
    });
  },
  { name: 'wharf-services', dependencies: ['wharf-metadata', 'wharf-storage'] },
);
