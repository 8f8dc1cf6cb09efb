import type { Readable } from 'node:stream';
import type { ArtifactEvents } from '../events/artifact-events.js';
import type { Metadata } from '../metadata/index.js';
import { parseDigest } from '../oci/digest.js';
import type { BlobService } from '../services/blobs.js';
import type { ListingService } from '../services/listings.js';
import type { ManifestService } from '../services/manifests.js';
import type { UploadService } from '../services/uploads.js';
import { KnownBlobs, type BlobUpload, type DestinationEndpoint, type ManifestBytes, type SourceEndpoint } from './endpoints.js';

export interface LocalServices {
  meta: Metadata;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
  events: ArtifactEvents;
}

const PAGE = 1000;
const isUnknown = (err: unknown) => ['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN'].includes((err as { code?: string }).code ?? '');

/**
 * This registry as a copy's source (push mode) or destination (pull mode), through the
 * same services as the /v2 API: uploads are verified and held to quotas, manifests
 * must find their blobs, and writes publish artifact events as `actor`.
 */
export class LocalEndpoint implements SourceEndpoint, DestinationEndpoint {
  readonly label = 'local';
  private readonly known = new KnownBlobs();

  constructor(
    private readonly s: LocalServices,
    /** Who the writes are attributed to (`replication:<policy>`). */
    private readonly actor: string,
  ) {}

  async repositories(): Promise<string[]> {
    const all: string[] = [];
    for (let last: string | undefined; ; ) {
      const page = await this.s.listings.catalog({ n: PAGE, ...(last !== undefined && { last }) });
      all.push(...page.items);
      if (!page.next) return all;
      last = page.next;
    }
  }

  async tags(repository: string): Promise<string[]> {
    const all: string[] = [];
    try {
      for (let last: string | undefined; ; ) {
        const page = await this.s.listings.tags(repository, { n: PAGE, ...(last !== undefined && { last }) });
        all.push(...page.items);
        if (!page.next) return all;
        last = page.next;
      }
    } catch (err) {
      if (isUnknown(err)) return all;
      throw err;
    }
  }

  async manifest(repository: string, reference: string): Promise<ManifestBytes | undefined> {
    const found = await this.s.manifests.find(repository, reference);
    return found && { digest: found.digest, mediaType: found.mediaType, content: found.content };
  }

  async blob(repository: string, digest: string, offset: number, length: number, signal: AbortSignal): Promise<Readable> {
    const handle = await this.s.blobs.find(repository, digest);
    return this.s.blobs.open(handle, { start: offset, end: offset + length - 1 }, signal);
  }

  async referrers(repository: string, digest: string): Promise<string[]> {
    return (await this.s.listings.referrers(repository, digest)).map((r) => r.digest);
  }

  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    return (await this.s.manifests.find(repository, reference))?.digest;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    try {
      await this.s.blobs.find(repository, digest);
      this.known.remember(digest, repository);
      return true;
    } catch (err) {
      if (isUnknown(err)) return false;
      throw err;
    }
  }

  async mountBlob(repository: string, digest: string): Promise<boolean> {
    const from = this.known.elsewhere(digest, repository);
    if (!from) return false;
    return (await this.s.blobs.mount(repository, from, digest)) !== undefined;
  }

  async putBlob(upload: BlobUpload): Promise<number> {
    const { repository, digest, size, signal } = upload;
    await this.requireProject(repository);
    let session: { id: string; size: number } | undefined;
    const resume = upload.resumeFrom;
    if (resume && resume.digest === digest && resume.repository === repository) {
      session = await this.s.uploads.session(repository, resume.location).catch(() => undefined);
    }
    session ??= await this.s.uploads.start(repository, this.actor, signal);
    let offset = session.size;
    let sent = 0;
    while (offset < size) {
      const length = Math.min(upload.chunkSize, size - offset);
      const body = await upload.open(offset, length);
      await this.s.uploads.append(repository, session.id, { body, range: { start: offset, end: offset + length - 1 }, length }, signal);
      offset += length;
      sent += length;
      await upload.save({ digest, repository, location: session.id });
    }
    await this.s.uploads.finish(repository, session.id, parseDigest(digest), undefined, signal);
    this.known.remember(digest, repository);
    return sent;
  }

  async putManifest(repository: string, reference: string, manifest: ManifestBytes): Promise<void> {
    await this.requireProject(repository);
    await this.s.manifests.put(repository, reference, manifest.content, manifest.mediaType);
    const tag = reference.includes(':') ? undefined : reference;
    this.s.events.publish({
      type: 'pushed',
      project: repository.split('/', 1)[0]!,
      repository,
      digest: manifest.digest,
      ...(tag !== undefined && { tag }),
      mediaType: manifest.mediaType,
      size: manifest.content.length,
      actor: this.actor,
      at: new Date(),
    });
  }

  async deleteManifest(repository: string, reference: string): Promise<boolean> {
    try {
      await this.s.manifests.delete(repository, reference);
    } catch (err) {
      if (isUnknown(err)) return false;
      throw err;
    }
    const byDigest = reference.includes(':');
    this.s.events.publish({
      type: 'deleted',
      project: repository.split('/', 1)[0]!,
      repository,
      ...(byDigest ? { digest: reference } : { tag: reference }),
      actor: this.actor,
      at: new Date(),
    });
    return true;
  }

  /** Pull mode writes only into existing projects, never into a proxy cache. */
  private async requireProject(repository: string): Promise<void> {
    const name = repository.split('/', 1)[0]!;
    const project = await this.s.meta.projects.get(name);
    if (!project) throw new ReplicationInputError(`project ${name} does not exist here; create it before pulling into ${repository}`);
    if (await this.s.meta.proxyCaches.byProject(name)) throw new ReplicationInputError(`project ${name} is a proxy cache; replication cannot write into it`);
  }
}

/** A task that can never succeed as configured (no retry helps). */
export class ReplicationInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicationInputError';
  }
}
