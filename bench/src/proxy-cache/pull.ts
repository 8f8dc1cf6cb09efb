import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

/** Layers fetched at once, as containerd and Docker do by default. */
const LAYER_CONCURRENCY = 3;

export interface Pull {
  bytes: number;
  ms: number;
  mibPerS: number;
}

interface Descriptor {
  digest: string;
  size: number;
}

/** GET `path` on a keep-alive connection; the body is hashed (sha256) and discarded, or kept when `keep`. */
function get(agent: Agent, url: URL, keep: boolean): Promise<{ status: number; digest: string; bytes: number; body: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { accept: ACCEPT } }, (res) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (keep) chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${hash.digest('hex')}`, bytes, body: keep ? Buffer.concat(chunks) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Pulls `repository:tag` as an image client does: the manifest by tag, then the config
 * and the layers (3 at a time), every blob's digest verified. The time runs from the
 * manifest request to the last byte of the last blob; MiB/s counts the blobs' bytes.
 */
export async function pullImage(origin: string, repository: string, tag: string): Promise<Pull> {
  const agent = new Agent({ keepAlive: true, maxSockets: LAYER_CONCURRENCY });
  try {
    const t0 = performance.now();
    const manifest = await get(agent, new URL(`/v2/${repository}/manifests/${tag}`, origin), true);
    if (manifest.status !== 200) throw new Error(`GET ${origin}/v2/${repository}/manifests/${tag}: ${manifest.status} ${manifest.body?.toString().slice(0, 300)}`);
    const parsed = JSON.parse(manifest.body!.toString()) as { config: Descriptor; layers: Descriptor[] };
    const blobs = [parsed.config, ...parsed.layers];
    let next = 0;
    let bytes = 0;
    const worker = async () => {
      while (next < blobs.length) {
        const want = blobs[next++]!;
        const got = await get(agent, new URL(`/v2/${repository}/blobs/${want.digest}`, origin), false);
        if (got.status !== 200) throw new Error(`GET ${origin}/v2/${repository}/blobs/${want.digest}: ${got.status}`);
        if (got.digest !== want.digest || got.bytes !== want.size) throw new Error(`${origin}/v2/${repository}/blobs/${want.digest}: got ${got.bytes} bytes with digest ${got.digest}`);
        bytes += got.bytes;
      }
    };
    await Promise.all(Array.from({ length: LAYER_CONCURRENCY }, worker));
    const ms = performance.now() - t0;
    return { bytes, ms, mibPerS: bytes / 2 ** 20 / (ms / 1000) };
  } finally {
    agent.destroy();
  }
}
