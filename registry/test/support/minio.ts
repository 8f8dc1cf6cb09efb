import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './ports.js';

export interface RunningMinio {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Creates a bucket and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** Stops the server, keeping its data and port for start(). */
  stop(): Promise<void>;
  /** Starts it again after stop(), on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

const ACCESS_KEY = 'wharf-test';
const SECRET_KEY = 'wharf-test-secret';
const READY_TIMEOUT_MS = 60_000;

async function waitReady(endpoint: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`minio exited during startup (${child.exitCode ?? child.signalCode}):\n${log()}`);
    const ok = await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`minio not ready after ${READY_TIMEOUT_MS} ms:\n${log()}`);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a real MinIO (`make tools` builds it into .tools/bin) on a loopback port, with
 * its data in a fresh temp dir and fixed root credentials.
 */
export async function startMinio(toolsBin: string): Promise<RunningMinio> {
  const binary = join(toolsBin, 'minio');
  await access(binary, constants.X_OK).catch(() => {
    throw new Error(`${binary} is missing: run \`make tools\` to build MinIO`);
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-minio-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  let child: ChildProcess | undefined;

  const start = async () => {
    let output = '';
    const proc = spawn(binary, ['server', dataDir, '--address', `127.0.0.1:${port}`, '--quiet'], {
      env: {
        PATH: process.env.PATH,
        HOME: dataDir,
        MINIO_ROOT_USER: ACCESS_KEY,
        MINIO_ROOT_PASSWORD: SECRET_KEY,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8192);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    child = proc;
    try {
      await waitReady(endpoint, proc, () => output);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc) return;
    proc.kill('SIGCONT');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited(proc);
    clearTimeout(timer);
  };

  await start();
  let buckets = 0;
  return {
    endpoint,
    region,
    accessKeyId: ACCESS_KEY,
    secretAccessKey: SECRET_KEY,
    async createBucket(name = `wharf-${process.pid}-${++buckets}`) {
      const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
      return name;
    },
    stop,
    start,
    async close() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
