import { createReadStream } from 'node:fs';
import type { Blob } from './content.js';
import { MEDIA_TYPE } from './content.js';
import type { Body, HttpClient, HttpResponse } from './http.js';

/**
 * How a registry takes a whole blob. `single-post`: one `POST …/uploads/?digest=`
 * carrying the body (201). `post-put`: `POST …/uploads/` for a session (202), then one
 * `PUT <location>?digest=` carrying the body, for registries that do not take the
 * single request (the spec's fallback).
 */
export type UploadShape = 'single-post' | 'post-put';

export class UnexpectedStatusError extends Error {
  readonly code = 'UNEXPECTED_STATUS';
  constructor(method: string, url: string, expected: number, res: HttpResponse) {
    super(`${method} ${url}: expected ${expected}, got ${res.status}: ${res.body.toString('utf8', 0, 300)}`);
  }
}

/** The distribution API calls a push needs, over one keep-alive client. */
export class RegistryClient {
  constructor(readonly http: HttpClient) {}

  private async expect(status: number, method: string, path: string, headers?: Record<string, string>, body?: Body): Promise<HttpResponse> {
    const res = await this.http.send(method, path, headers, body);
    if (res.status !== status) throw new UnexpectedStatusError(method, path, status, res);
    return res;
  }

  /** POST …/uploads/: a new session; returns its location. */
  async startUpload(repo: string): Promise<string> {
    const res = await this.expect(202, 'POST', `/v2/${repo}/blobs/uploads/`);
    const location = res.headers.location;
    if (!location) throw new Error(`POST /v2/${repo}/blobs/uploads/: 202 without Location`);
    return location;
  }

  /** PUT <location>?digest=: the whole blob in the closing request. */
  async finishUpload(location: string, digest: string, body: Body): Promise<void> {
    const url = new URL(location, this.http.origin);
    url.searchParams.set('digest', digest);
    await this.expect(201, 'PUT', url.href, { 'content-type': 'application/octet-stream' }, body);
  }

  /** Pushes a blob in the given shape. */
  async uploadBlob(repo: string, blob: Blob, shape: UploadShape): Promise<void> {
    if (shape === 'post-put') return this.finishUpload(await this.startUpload(repo), blob.digest, blob.chunks);
    await this.expect(201, 'POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { 'content-type': 'application/octet-stream' }, blob.chunks);
  }

  /** Pushes a blob stored in a file, with the POST-then-PUT shape every registry takes. */
  async uploadFile(repo: string, file: string, digest: string, size: number): Promise<void> {
    const location = await this.startUpload(repo);
    await this.finishUpload(location, digest, { stream: () => createReadStream(file), length: size });
  }

  async putManifest(repo: string, reference: string, manifest: Buffer): Promise<void> {
    await this.expect(201, 'PUT', `/v2/${repo}/manifests/${reference}`, { 'content-type': MEDIA_TYPE.manifest }, [manifest]);
  }

  /**
   * Whether the registry takes a single-request monolithic POST: sends a small blob
   * that way; a 202 means the registry opened a session instead and ignored the body
   * (as distribution v3 does), so the session is completed with a PUT.
   */
  async probeUploadShape(repo: string, blob: Blob): Promise<UploadShape> {
    const res = await this.http.send('POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { 'content-type': 'application/octet-stream' }, blob.chunks);
    if (res.status === 201) return 'single-post';
    if (res.status !== 202 || !res.headers.location) throw new UnexpectedStatusError('POST', `/v2/${repo}/blobs/uploads/?digest=`, 201, res);
    await this.finishUpload(res.headers.location, blob.digest, blob.chunks);
    return 'post-put';
  }
}
