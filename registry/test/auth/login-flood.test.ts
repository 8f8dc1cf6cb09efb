import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultLoginConfig } from '../../src/config.js';
import { basic, fetchToken, ManagementClient } from '../support/auth.js';
import { ClientAt, metricValue } from '../support/login.js';
import { eventually } from '../support/raw-http.js';
import { OCI_MANIFEST, randomBlob, RegistryClient, singleLayerImage } from '../support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tempDir, tokenAuth, type RunningRegistry } from '../support/registry.js';

const CLIENTS = 12;
const REPO = 'flood/app';

interface FloodAnswer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
}

/**
 * 12 clients, each on a keep-alive connection of its own, sending GET /token with a wrong
 * password in a loop until stopped. `firstThrottled` settles at the first 429, or fails
 * (and the flood stops) once `maxAttempts` have been answered without one.
 */
class LoginFlood {
  readonly answers: FloodAnswer[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[];
  private readonly clients: Client[];
  readonly firstThrottled: Promise<void>;
  private onThrottled!: () => void;
  private onGaveUp!: (err: Error) => void;

  constructor(base: string, username: string, maxAttempts: number) {
    this.firstThrottled = new Promise((resolve, reject) => {
      this.onThrottled = resolve;
      this.onGaveUp = (err) => {
        this.stopped = true;
        reject(err);
      };
    });
    this.clients = Array.from({ length: CLIENTS }, () => new Client(base, { pipelining: 1 }));
    this.loops = this.clients.map(async (client, i) => {
      try {
        for (let n = 0; !this.stopped; n++) {
          const res = await client.request({ method: 'GET', path: `/token?service=wharf-test&scope=repository:${REPO}:pull`, headers: { authorization: basic(username, `wrong-${i}-${n}`) } });
          const body = (await res.body.json()) as { errors?: { code: string }[] };
          const retryAfter = res.headers['retry-after'];
          this.answers.push({ status: res.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, code: body.errors?.[0]?.code });
          if (res.statusCode === 429) this.onThrottled();
          else if (this.answers.length >= maxAttempts) this.onGaveUp(new Error(`${this.answers.length} wrong passwords answered without a single 429`));
        }
      } catch (err) {
        this.onGaveUp(err as Error);
        throw err;
      }
    });
  }

  /** Stops the loops; rejects if any of them failed. */
  async stop(): Promise<void> {
    this.stopped = true;
    const settled = await Promise.allSettled(this.loops);
    await Promise.all(this.clients.map((c) => c.close()));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

describe('a flood of wrong passwords', () => {
  let registry: RunningRegistry;
  let pullToken: string;
  const layer = randomBlob(1024 * 1024);
  const { config, manifest } = singleLayerImage(layer);

  beforeAll(async () => {
    // A client may fail 12 times at once (the default is 30): the same behaviour, in fewer derivations on a busy test machine.
    registry = await startRegistry({ auth: tokenAuth({ login: { ...defaultLoginConfig(), perClient: { failures: CLIENTS, windowSeconds: 60 } } }) });
    await new ManagementClient(registry.url).project('flood');
    const admin = { username: 'admin', password: TEST_ADMIN_PASSWORD };
    const push = await fetchToken(registry.url, [`repository:${REPO}:pull,push`], admin);
    const client = new RegistryClient(registry.url);
    const auth = { Authorization: `Bearer ${push.token}` };
    for (const blob of [config, layer]) {
      const res = await client.fetch(`/v2/${REPO}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: blob.data });
      expect(res.status).toBe(201);
    }
    const put = await client.fetch(`/v2/${REPO}/manifests/v1`, { method: 'PUT', headers: { ...auth, 'Content-Type': OCI_MANIFEST }, body: manifest.data });
    expect(put.status).toBe(201);
    pullToken = push.token!;
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('is answered with 429 and Retry-After, while blobs, manifests and health keep being served', async () => {
    // 'admin' is a real account; the flood's address is the one the test set it up from.
    const flood = new LoginFlood(registry.url, 'admin', 100);
    try {
      await flood.firstThrottled;
      const answeredBefore = flood.answers.length;
      const auth = { Authorization: `Bearer ${pullToken}` };
      for (let round = 0; round < 3; round++) {
        const blob = await fetch(`${registry.url}/v2/${REPO}/blobs/${layer.digest}`, { headers: auth });
        expect(blob.status).toBe(200);
        expect(`sha256:${createHash('sha256').update(Buffer.from(await blob.arrayBuffer())).digest('hex')}`).toBe(layer.digest);
        const got = await fetch(`${registry.url}/v2/${REPO}/manifests/v1`, { headers: { ...auth, Accept: OCI_MANIFEST } });
        expect(got.status).toBe(200);
        expect(Buffer.from(await got.arrayBuffer()).equals(manifest.data)).toBe(true);
        expect((await fetch(`${registry.url}/healthz`)).status).toBe(200);
      }
      // The flood was still going: its clients are answered after those were served too.
      await eventually(async () => flood.answers.length > answeredBefore, 60_000, 'another answer to the flood');
    } finally {
      await flood.stop();
    }
    const throttled = flood.answers.filter((a) => a.status === 429);
    expect(flood.answers.every((a) => a.status === 401 || a.status === 429)).toBe(true);
    expect(throttled.length).toBeGreaterThan(0);
    for (const answer of throttled) {
      expect(answer.code).toBe('TOOMANYREQUESTS');
      expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
    }
    expect(await metricValue(registry.url, 'wharf_login_throttled_total', 'limit="client"')).toBe(throttled.length);
  });
});

/**
 * Ties up every thread of libuv's pool (an open() of a FIFO blocks until a writer comes)
 * and releases them when asked, from a child process, since opening the write ends here
 * would need the pool as well.
 */
async function blockLibuvPool(dir: string): Promise<{ release: () => Promise<void> }> {
  const size = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: size }, (_, i) => join(dir, `fifo-${i}`));
  execFileSync('mkfifo', fifos);
  const opened: Promise<FileHandle>[] = fifos.map((f) => open(f, 'r'));
  return {
    release: async () => {
      await new Promise<void>((resolve, reject) => {
        const writer = spawn('sh', ['-c', 'for f; do : > "$f"; done', 'sh', ...fifos], { stdio: 'ignore' });
        writer.once('error', reject);
        writer.once('exit', () => resolve());
      });
      await Promise.all(opened.map(async (handle) => (await handle).close()));
    },
  };
}

describe('password hashing and refusals', () => {
  let registry: RunningRegistry;
  let dir: string;
  const REFUSAL_DELAY_S = 5;

  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth({ login: { ...defaultLoginConfig(), perClient: { failures: 3, windowSeconds: 3600 }, refusalDelaySeconds: REFUSAL_DELAY_S } }) });
    dir = await tempDir('wharf-libuv-');
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
    if (dir) await removeDir(dir);
  });

  it("does not run on libuv's thread pool, which file I/O needs", async () => {
    const wrongLogin = () => fetch(`${registry.url}/api/v1/users/admin`, { headers: { Authorization: basic('admin', 'not-the-admin-password') } });
    const pool = await blockLibuvPool(dir);
    let fileOpDone = false;
    // Proof that the pool is held: a file operation queued now cannot finish until release.
    const fileOp = stat(dir).then(() => {
      fileOpDone = true;
    });
    try {
      // The bound only ends the old behaviour, where the login waited for the pool and this hung.
      const answer = await Promise.race([wrongLogin(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the login waited for the blocked libuv pool')), 60_000))]);
      expect(answer.status).toBe(401);
      expect(fileOpDone).toBe(false);
    } finally {
      await pool.release();
    }
    await fileOp;
    expect(fileOpDone).toBe(true);
    // And the login was checked with scrypt, on the hashing pool.
    const before = await metricValue(registry.url, 'wharf_password_hashes_total');
    expect((await wrongLogin()).status).toBe(401);
    expect(await metricValue(registry.url, 'wharf_password_hashes_total')).toBe(before + 1);
  });

  it('holds a 429 for the refusal delay, so that a looping client gets one answer per delay', async () => {
    const client = new ClientAt(registry.url, '127.0.0.40');
    try {
      for (let i = 0; i < 3; i++) expect((await client.token('admin', `wrong-${i}`)).status).toBe(401);
      const throttled = () => metricValue(registry.url, 'wharf_login_throttled_total', 'limit="client"');
      const before = await throttled();
      let answered = false;
      const refused = client.token('admin', 'wrong-again').then((answer) => {
        answered = true;
        return answer;
      });
      // The registry has decided (the refusal is counted), and still holds the answer.
      await eventually(async () => (await throttled()) === before + 1, 30_000, 'the refusal to be counted');
      expect(answered).toBe(false);
      const answer = await refused;
      expect(answer.status).toBe(429);
      expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
    } finally {
      await client.close();
    }
  });
});
