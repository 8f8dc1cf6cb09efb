import { type Blob, type Image, sha256 } from './oci.js';

/** Thrown for any answer other than the expected one (including network errors). */
export class PushError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * A distribution API client for load tests: blobs in chunked uploads (POST, PATCH
 * with Content-Range, PUT), an optional bearer token, and a hook that observes every
 * response (to see which replica answered).
 */
export class PushClient {
  constructor(
    readonly base: string,
    private readonly token?: string,
    private readonly observe: (res: Response, what: string) => void = () => undefined,
  ) {}

  private async send(what: string, path: string, init: RequestInit, expected: number): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(path.startsWith('http') ? path : `${this.base}${path}`, {
        redirect: 'manual',
        signal: AbortSignal.timeout(30_000),
        ...init,
        headers: { ...(this.token && { Authorization: `Bearer ${this.token}` }), ...(init.headers as Record<string, string>) },
      });
    } catch (err) {
      throw new PushError(`${what}: ${(err as Error).message}`);
    }
    this.observe(res, what);
    if (res.status !== expected) throw new PushError(`${what}: ${res.status} ${(await res.text()).slice(0, 300)}`, res.status);
    return res;
  }

  /** Uploads `blob` in chunks of `chunkSize`; returns the upload's responses' Location paths. */
  async pushBlobChunked(repo: string, blob: Blob, chunkSize: number): Promise<void> {
    const started = await this.send('start upload', `/v2/${repo}/blobs/uploads/`, { method: 'POST' }, 202);
    let location = started.headers.get('location')!;
    await started.arrayBuffer();
    for (let offset = 0; offset < blob.size; offset += chunkSize) {
      const chunk = blob.data.subarray(offset, Math.min(offset + chunkSize, blob.size));
      const res = await this.send(
        'patch',
        location,
        { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}`, 'Content-Length': String(chunk.length) }, body: chunk },
        202,
      );
      location = res.headers.get('location')!;
      await res.arrayBuffer();
    }
    const sep = location.includes('?') ? '&' : '?';
    const done = await this.send('finish upload', `${location}${sep}digest=${blob.digest}`, { method: 'PUT', headers: { 'Content-Length': '0' } }, 201);
    await done.arrayBuffer();
  }

  async pushBlob(repo: string, blob: Blob): Promise<void> {
    const res = await this.send(
      'monolithic upload',
      `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`,
      { method: 'POST', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) }, body: blob.data },
      201,
    );
    await res.arrayBuffer();
  }

  async pushManifest(repo: string, reference: string, manifest: Blob, mediaType: string): Promise<void> {
    const res = await this.send('put manifest', `/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'Content-Type': mediaType }, body: manifest.data }, 201);
    await res.arrayBuffer();
  }

  async pushImage(repo: string, tag: string, image: Image, chunkSize?: number): Promise<void> {
    for (const blob of [image.config, ...image.layers]) {
      if (chunkSize && blob.size > chunkSize) await this.pushBlobChunked(repo, blob, chunkSize);
      else await this.pushBlob(repo, blob);
    }
    await this.pushManifest(repo, tag, image.manifest, image.mediaType);
  }

  async deleteManifest(repo: string, reference: string): Promise<void> {
    const res = await this.send('delete manifest', `/v2/${repo}/manifests/${reference}`, { method: 'DELETE' }, 202);
    await res.arrayBuffer();
  }

  /** GETs the manifest by `reference` and returns its bytes. */
  async manifest(repo: string, reference: string): Promise<Buffer> {
    const res = await this.send('get manifest', `/v2/${repo}/manifests/${reference}`, { headers: { Accept: '*/*' } }, 200);
    return Buffer.from(await res.arrayBuffer());
  }

  /** GETs the blob and checks its digest; throws on a mismatch. */
  async verifyBlob(repo: string, digest: string): Promise<void> {
    const res = await this.send('get blob', `/v2/${repo}/blobs/${digest}`, {}, 200);
    const data = Buffer.from(await res.arrayBuffer());
    if (sha256(data) !== digest) throw new PushError(`blob ${digest} in ${repo} came back with digest ${sha256(data)}`);
  }
}
