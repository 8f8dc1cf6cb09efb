// The shaped link of the proxy-cache bench: real nginx (Debian) in front of a real
// distribution 2.8.2, the upstream that stands in for Docker Hub.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeLink, parseLinkShape } from '../src/proxy-cache/link.js';
import { startDockerRegistry, startShapedLink, type Upstream } from '../src/proxy-cache/servers.js';

describe('link options', () => {
  it('is loopback without either option, and takes rate and latency apart or together', () => {
    expect(parseLinkShape(undefined, undefined)).toBeUndefined();
    expect(parseLinkShape('50', undefined)).toEqual({ mibPerSecond: 50 });
    expect(parseLinkShape(undefined, '20')).toEqual({ rttMs: 20 });
    expect(describeLink({ mibPerSecond: 50, rttMs: 20 })).toBe('a 50 MiB/s link with 20 ms per request');
  });

  it('refuses rates and latencies that are not positive numbers', () => {
    expect(() => parseLinkShape('0', undefined)).toThrow(/--link-mibps must be a positive number, not 0/);
    expect(() => parseLinkShape(undefined, 'soon')).toThrow(/--link-rtt-ms must be a number of milliseconds/);
    expect(() => parseLinkShape(undefined, '-5')).toThrow(/--link-rtt-ms/);
  });
});

describe('the shaped link (nginx in front of distribution 2.8.2, a stand-in for Docker Hub)', () => {
  let dir: string;
  let upstream: Upstream;
  let link: Upstream;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-bench-link-'));
    upstream = await startDockerRegistry(join(dir, 'upstream'));
    link = await startShapedLink(join(dir, 'link'), upstream, { rttMs: 150 });
  });

  afterAll(async () => {
    await link?.stop();
    await upstream?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function timed(origin: string): Promise<{ status: number; ms: number }> {
    const t0 = performance.now();
    const res = await fetch(`${origin}/v2/`);
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0 };
  }

  it('holds every request for the latency before the upstream answers it, and the upstream still counts it', async () => {
    const before = await upstream.requestCount();
    const direct = await timed(upstream.origin);
    const shaped = [await timed(link.origin), await timed(link.origin)];
    expect(direct.status).toBe(200);
    expect(shaped.map((r) => r.status)).toEqual([200, 200]);
    for (const r of shaped) expect(r.ms).toBeGreaterThanOrEqual(145);
    expect(direct.ms).toBeLessThan(145);
    expect((await upstream.requestCount()) - before).toBe(3);
  });
});
