import { Readable } from 'node:stream';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { canSendDirectly } from '../storage/file-range-stream.js';
import type { DestinationEndpoint, ManifestBytes, SourceEndpoint, UploadCheckpoint } from './endpoints.js';
import { ReplicationInputError } from './local-endpoint.js';
import { Throttle } from './throttle.js';

export interface CopyRequest {
  source: SourceEndpoint;
  destination: DestinationEndpoint;
  srcRepository: string;
  dstRepository: string;
  /** The artifact (a manifest or an index). */
  digest: string;
  /** Tags to point at it at the destination, once everything is there. */
  tags: string[];
  override: boolean;
  copyReferrers: boolean;
  /** 0: unlimited. */
  bandwidthBytesPerSecond: number;
  chunkSize: number;
  /** Uploads a previous attempt left unfinished, by digest. */
  resume: Map<string, UploadCheckpoint>;
  /** Records where the uploads in progress stand (after every chunk). */
  saveCheckpoints(uploads: UploadCheckpoint[], bytes: number): Promise<void>;
  log(line: string): void;
  signal: AbortSignal;
  /** Blobs sent at once. */
  parallelBlobs?: number;
}

export interface CopyResult {
  /** Blob bytes sent. */
  bytes: number;
  blobsSent: number;
  blobsMounted: number;
  blobsPresent: number;
  manifestsSent: number;
  /** Tags left alone because they point elsewhere at the destination and override is off. */
  skippedTags: { tag: string; destinationDigest: string }[];
  /** Tags that already pointed at the artifact. */
  unchangedTags: string[];
}

/**
 * Copies one artifact: everything the destination lacks and nothing else. Each blob is
 * checked with HEAD, mounted from another destination repository when one is known to
 * hold it, else streamed (in chunks when large, resumable). Manifests go after what
 * they name (index children before the index), by digest and byte for byte; referrers
 * follow their subject; the tags come last.
 */
export async function copyArtifact(req: CopyRequest): Promise<CopyResult> {
  const result: CopyResult = { bytes: 0, blobsSent: 0, blobsMounted: 0, blobsPresent: 0, manifestsSent: 0, skippedTags: [], unchangedTags: [] };
  const uploads = new Map(req.resume);
  const throttle = new Throttle(req.bandwidthBytesPerSecond, (n) => void (result.bytes += n));
  const visited = new Set<string>();

  const open = async (digest: string, offset: number, length: number): Promise<Readable> => {
    if (length === 0) return Readable.from([]);
    const body = await req.source.blob(req.srcRepository, digest, offset, length, req.signal);
    const tap = throttle.stream();
    body.on('error', (err) => tap.destroy(err));
    return body.pipe(tap);
  };
  const sendChunks = async <T>(digest: string, offset: number, length: number, send: (chunks: AsyncIterable<Buffer>) => Promise<T>): Promise<T> => {
    if (length === 0) return send(Readable.from([]));
    const body = await req.source.blob(req.srcRepository, digest, offset, length, req.signal);
    try {
      return await send(throttle.iterate(canSendDirectly(body) ? body.chunks() : body));
    } finally {
      // A request that failed before it read the body (connection refused) never started the iteration.
      body.destroy();
    }
  };

  const copyBlob = async (blob: Descriptor): Promise<void> => {
    req.signal.throwIfAborted();
    if (await req.destination.hasBlob(req.dstRepository, blob.digest, req.signal)) {
      result.blobsPresent++;
      return;
    }
    if (await req.destination.mountBlob(req.dstRepository, blob.digest, req.signal)) {
      result.blobsMounted++;
      req.log(`blob ${blob.digest}: mounted`);
      return;
    }
    const resumeFrom = uploads.get(blob.digest);
    const sent = await req.destination.putBlob({
      repository: req.dstRepository,
      digest: blob.digest,
      size: blob.size,
      open: (offset, length) => open(blob.digest, offset, length),
      sendChunks: (offset, length, send) => sendChunks(blob.digest, offset, length, send),
      chunkSize: req.chunkSize,
      ...(resumeFrom && { resumeFrom }),
      save: async (checkpoint) => {
        if (checkpoint) uploads.set(blob.digest, checkpoint);
        else uploads.delete(blob.digest);
        await req.saveCheckpoints([...uploads.values()], result.bytes);
      },
      signal: req.signal,
    });
    uploads.delete(blob.digest);
    result.blobsSent++;
    req.log(`blob ${blob.digest}: sent ${sent} of ${blob.size} bytes${resumeFrom ? ' (resumed an interrupted upload)' : ''}`);
  };

  const copyManifest = async (digest: string, top: boolean): Promise<ManifestBytes> => {
    const manifest = await req.source.manifest(req.srcRepository, digest, req.signal);
    if (!manifest) throw new ReplicationInputError(`${req.source.label} no longer has ${req.srcRepository}@${digest}`);
    if (visited.has(digest)) return manifest;
    visited.add(digest);
    const present = (await req.destination.manifestDigest(req.dstRepository, digest, req.signal)) === digest;
    const parsed = parseManifest(manifest.content, manifest.mediaType);
    if (!present) {
      for (const child of parsed.manifests) await copyManifest(child.digest, false);
      await inParallel(parsed.blobs, req.parallelBlobs ?? 3, copyBlob);
      req.signal.throwIfAborted();
      await req.destination.putManifest(req.dstRepository, digest, manifest, req.signal);
      result.manifestsSent++;
      req.log(`manifest ${digest} (${manifest.mediaType}): sent`);
    } else {
      // Its content is there; children may still have new referrers.
      for (const child of parsed.manifests) await copyManifest(child.digest, false);
      if (top) req.log(`manifest ${digest}: already at the destination`);
    }
    if (req.copyReferrers) {
      for (const referrer of await req.source.referrers(req.srcRepository, digest, req.signal)) {
        if (!visited.has(referrer)) {
          await copyManifest(referrer, false);
          req.log(`referrer ${referrer} of ${digest}: copied`);
        }
      }
    }
    return manifest;
  };

  const artifact = await copyManifest(req.digest, true);
  for (const tag of req.tags) {
    req.signal.throwIfAborted();
    const current = await req.destination.manifestDigest(req.dstRepository, tag, req.signal);
    if (current === req.digest) {
      result.unchangedTags.push(tag);
      continue;
    }
    if (current && !req.override) {
      result.skippedTags.push({ tag, destinationDigest: current });
      req.log(`tag ${tag}: left alone, it points at ${current} at the destination, not ${req.digest} (override is off)`);
      continue;
    }
    await req.destination.putManifest(req.dstRepository, tag, artifact, req.signal);
    req.log(`tag ${tag}: ${current ? `moved from ${current} to` : 'set to'} ${req.digest}`);
  }
  return result;
}

async function inParallel<T>(items: readonly T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await run(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (failure !== undefined) throw failure;
}
