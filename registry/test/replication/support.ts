import { setTimeout as sleep } from 'node:timers/promises';
import { ManagementClient } from '../support/auth.js';
import { removeDir, startRegistry, type RunningRegistry, type StartOptions } from '../support/registry.js';
import { blobOf, buildImage, DOCKER_V2S2, indexOf, OCI_INDEX, OCI_MANIFEST, singleLayerImage, type Blob, type Image, type RegistryClient } from '../support/oci.js';

const EMPTY_CONFIG = blobOf('{}');

export interface Execution {
  id: string;
  status: string;
  bytes: number;
  artifacts: number;
  tasks: { total: number; succeeded: number; failed: number; stopped: number; pending: number; inProgress: number };
  message: string;
}

/** Starts an execution of `policy` and waits until it ends. */
export async function runPolicy(api: ManagementClient, policy: string, deadlineMs = 120_000): Promise<Execution> {
  const started = await api.ok('POST', '/replication/executions', { policy });
  return waitForExecution(api, started.id, deadlineMs);
}

export async function waitForExecution(api: ManagementClient, id: string, deadlineMs = 120_000): Promise<Execution> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const execution = (await api.ok('GET', `/replication/executions/${id}`)) as Execution;
    if (!['Pending', 'InProgress'].includes(execution.status)) return execution;
    if (Date.now() > deadline) throw new Error(`execution ${id} still ${execution.status} after ${deadlineMs} ms: ${JSON.stringify(execution)}`);
    await sleep(200);
  }
}

/** Waits for `check` to hold (a condition, not a time). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export async function tasksOf(api: ManagementClient, id: string): Promise<any[]> {
  return (await api.ok('GET', `/replication/executions/${id}/tasks?limit=500`)).items;
}

/** A referrer of `subject` the way cosign and SBOM tools push them: an OCI manifest with a subject, an empty config and one layer. */
export function referrerOf(subject: Blob, artifactType: string, payload: string): { manifest: Blob; layer: Blob } {
  const layer = blobOf(payload);
  const manifest = blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size },
      layers: [{ mediaType: artifactType, digest: layer.digest, size: layer.size }],
      subject: { mediaType: OCI_INDEX, digest: subject.digest, size: subject.size },
    }),
  );
  return { manifest, layer };
}

export interface MultiArch {
  images: Image[];
  index: Blob;
  signature: Blob;
  sbom: Blob;
}

/** Pushes a two-platform index tagged `tag`, a cosign-style signature and an SBOM of it. */
export async function pushMultiArch(client: RegistryClient, repo: string, tag: string): Promise<MultiArch> {
  const amd = await buildImage({ architecture: 'amd64', layers: 2 });
  const arm = await buildImage({ architecture: 'arm64', layers: 2 });
  for (const image of [amd, arm]) await client.pushImage(repo, image.manifest.digest, image);
  const index = indexOf([
    { image: amd, architecture: 'amd64' },
    { image: arm, architecture: 'arm64' },
  ]);
  await expectStatus(client.pushManifest(repo, tag, index, OCI_INDEX), 201);
  const signature = referrerOf(index, 'application/vnd.dev.cosign.artifact.sig.v1+json', JSON.stringify({ critical: { image: { 'docker-manifest-digest': index.digest } } }));
  const sbom = referrerOf(index, 'application/spdx+json', JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'test' }));
  for (const r of [signature, sbom]) {
    await expectStatus(client.pushBlob(repo, EMPTY_CONFIG), 201);
    await expectStatus(client.pushBlob(repo, r.layer), 201);
    await expectStatus(client.pushManifest(repo, r.manifest.digest, r.manifest, OCI_MANIFEST), 201);
  }
  return { images: [amd, arm], index, signature: signature.manifest, sbom: sbom.manifest };
}

/** A Docker v2s2 image (it must stay v2s2 at the destination). */
export async function pushDockerImage(client: RegistryClient, repo: string, tag: string): Promise<Blob> {
  const layer = blobOf(Buffer.from(`docker layer ${Math.random()}`));
  const { config, manifest } = singleLayerImage(layer, { docker: true });
  await expectStatus(client.pushBlob(repo, config), 201);
  await expectStatus(client.pushBlob(repo, layer), 201);
  await expectStatus(client.pushManifest(repo, tag, manifest, DOCKER_V2S2), 201);
  return manifest;
}

async function expectStatus(res: Promise<Response>, status: number): Promise<void> {
  const r = await res;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${await r.text()}`);
}

export interface Sites {
  source: RunningRegistry;
  destination: RunningRegistry;
  /** The source's management API (auth off). */
  api: ManagementClient;
  stop(): Promise<void>;
}

/**
 * Two Wharfs on loopback: the source (started with `options`) with project `apps` and the
 * destination registered as remote registry `site-b`, and the destination with project `mirror`.
 */
export async function startSites(options: StartOptions = {}): Promise<Sites> {
  const source = await startRegistry(options);
  const destination = await startRegistry();
  const api = new ManagementClient(source.url, null);
  await api.project('apps');
  await new ManagementClient(destination.url, null).project('mirror');
  await api.ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url });
  return {
    source,
    destination,
    api,
    async stop() {
      for (const r of [source, destination]) {
        await r.stop();
        await removeDir(r.dataDir);
      }
    },
  };
}
