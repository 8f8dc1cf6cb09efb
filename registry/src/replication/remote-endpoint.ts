import type { Readable } from 'node:stream';
import { RemoteError, type RemoteRegistry } from '../remote/index.js';
import { KnownBlobs, type BlobUpload, type DestinationEndpoint, type ManifestBytes, type SourceEndpoint } from './endpoints.js';

const notFound = (err: unknown) => err instanceof RemoteError && err.failure === 'not-found';

/** Another registry as a copy's source or destination, through the one remote client. */
export class RemoteEndpoint implements SourceEndpoint, DestinationEndpoint {
  readonly label: string;
  private readonly known = new KnownBlobs();

  constructor(private readonly client: RemoteRegistry) {
    this.label = client.origin;
  }

  repositories(signal: AbortSignal): Promise<string[]> {
    return this.client.catalog(signal);
  }

  async tags(repository: string, signal: AbortSignal): Promise<string[]> {
    try {
      return await this.client.listTags(repository, signal);
    } catch (err) {
      if (notFound(err)) return [];
      throw err;
    }
  }

  async manifest(repository: string, reference: string, signal: AbortSignal): Promise<ManifestBytes | undefined> {
    try {
      return await this.client.getManifest(repository, reference, signal);
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async blob(repository: string, digest: string, offset: number, length: number, signal: AbortSignal): Promise<Readable> {
    return (await this.client.getBlob(repository, digest, signal, offset, length)).body;
  }

  async referrers(repository: string, digest: string, signal: AbortSignal): Promise<string[]> {
    try {
      const { content } = await this.client.referrers(repository, digest, undefined, signal);
      const index = JSON.parse(content.toString('utf8')) as { manifests?: { digest?: unknown }[] };
      return (index.manifests ?? []).map((m) => m.digest).filter((d): d is string => typeof d === 'string');
    } catch (err) {
      // No referrers API (distribution 2.x answers 404): nothing to copy.
      if (notFound(err) || (err instanceof RemoteError && err.failure === 'protocol' && err.details.status === 400)) return [];
      throw err;
    }
  }

  async manifestDigest(repository: string, reference: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      return (await this.client.headManifest(repository, reference, signal)).digest;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async hasBlob(repository: string, digest: string, signal: AbortSignal): Promise<boolean> {
    try {
      await this.client.headBlob(repository, digest, signal);
      this.known.remember(digest, repository);
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  async mountBlob(repository: string, digest: string, signal: AbortSignal): Promise<boolean> {
    const from = this.known.elsewhere(digest, repository);
    if (!from) return false;
    const started = await this.client.startUpload(repository, { mountFrom: from, digest, signal });
    if (started.mounted) return true;
    // The registry opened an upload instead; the blob goes the usual way with a fresh one.
    return false;
  }

  async putBlob(upload: BlobUpload): Promise<number> {
    const { repository, digest, size, signal } = upload;
    let resumed: string | undefined;
    let offset = 0;
    const resume = upload.resumeFrom;
    if (resume && resume.digest === digest && resume.repository === repository) {
      const held = await this.client.uploadOffset(repository, resume.location, signal).catch(() => undefined);
      if (held !== undefined) {
        resumed = resume.location;
        offset = held;
      }
    }
    let location: string = resumed ?? ((await this.client.startUpload(repository, { signal })) as { location: string }).location;
    let sent = 0;
    if (offset === 0 && size <= upload.chunkSize) {
      const at = location;
      await upload.sendChunks(0, size, (body) => this.client.finishUpload(repository, at, digest, { body, length: size }, signal));
      sent = size;
    } else {
      while (offset < size) {
        const length = Math.min(upload.chunkSize, size - offset);
        const at: string = location;
        const from: number = offset;
        location = await upload.sendChunks(from, length, (body) => this.client.uploadChunk(repository, at, body, from, length, signal));
        offset += length;
        sent += length;
        await upload.save({ digest, repository, location });
      }
      await this.client.finishUpload(repository, location, digest, undefined, signal);
    }
    this.known.remember(digest, repository);
    return sent;
  }

  async putManifest(repository: string, reference: string, manifest: ManifestBytes, signal: AbortSignal): Promise<void> {
    await this.client.putManifest(repository, reference, manifest.content, manifest.mediaType, signal);
  }

  async deleteManifest(repository: string, reference: string, signal: AbortSignal): Promise<boolean> {
    try {
      await this.client.deleteManifest(repository, reference, signal);
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }
}
