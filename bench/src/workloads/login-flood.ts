import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { HttpClient } from '../oci/http.js';

/**
 * The flood, on a thread of its own so that its loop does not delay the latency probe on
 * the main thread: `clients` loops, each on one keep-alive connection, sending GET /token
 * with Basic credentials whose password is wrong (a new one every time) until told to
 * stop. A refused connection or reset is counted and retried after 10 ms.
 */
const FLOOD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, clients, username } = workerData;
const statuses = {};
let answered = 0, errors = 0, stopped = false, warm = false;
const started = Date.now();
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
function once(agent, password) {
  return new Promise((resolve) => {
    const authorization = 'Basic ' + Buffer.from(username + ':' + password).toString('base64');
    const req = http.request(url, { agent, headers: { authorization } }, (res) => {
      res.resume();
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        answered++;
        if (!warm && answered >= clients) { warm = true; parentPort.postMessage({ warm: true }); }
        resolve();
      });
    });
    req.on('error', () => { errors++; setTimeout(resolve, 10); });
    req.end();
  });
}
async function loop(i) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let n = 0; !stopped; n++) await once(agent, 'wrong-' + i + '-' + n);
  agent.destroy();
}
Promise.all(Array.from({ length: clients }, (_, i) => loop(i))).then(() =>
  parentPort.postMessage({ done: { statuses, answered, errors, durationS: (Date.now() - started) / 1000 } }));
`;

export interface FloodCounts {
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  answered: number;
  /** Connection errors (refused, reset). */
  errors: number;
  durationS: number;
}

export interface LoginFlood {
  /** Settles once every client has had an answer: the flood is under way. */
  warm: Promise<void>;
  stop(): Promise<FloodCounts>;
}

/** Starts `clients` loops of wrong-password token requests for `username` against `origin`. */
export function startLoginFlood(origin: string, options: { clients: number; username: string; service: string }): LoginFlood {
  const url = `${origin}/token?service=${encodeURIComponent(options.service)}&scope=${encodeURIComponent('repository:bench/login:pull')}`;
  const worker = new Worker(FLOOD_SOURCE, { eval: true, workerData: { url, clients: options.clients, username: options.username } });
  let onWarm!: () => void;
  let onDone!: (counts: FloodCounts) => void;
  let onFailed!: (err: Error) => void;
  const warm = new Promise<void>((resolve) => (onWarm = resolve));
  const done = new Promise<FloodCounts>((resolve, reject) => {
    onDone = resolve;
    onFailed = reject;
  });
  worker.on('message', (m: { warm?: true; done?: FloodCounts }) => {
    if (m.warm) onWarm();
    if (m.done) onDone(m.done);
  });
  worker.once('error', onFailed);
  worker.once('exit', (code) => onFailed(new Error(`the flood thread exited with code ${code} before reporting`)));
  return {
    warm: Promise.race([warm, done.then(() => undefined)]),
    stop: async () => {
      worker.postMessage('stop');
      const counts = await done;
      await worker.terminate();
      return counts;
    },
  };
}

export interface ProbeLatencies {
  /** Milliseconds per request, in order. */
  blobMs: number[];
  manifestMs: number[];
}

/**
 * Alternates a GET of the blob (read to the last byte) and a GET of the manifest on one
 * keep-alive connection, `samples` of each (fewer if `maxSeconds` pass first: a registry
 * that takes seconds per GET would otherwise hold the run for an hour), timing each from
 * request to last byte. Every answer must be a 200 of the expected size.
 */
export async function probeLatency(
  http: HttpClient,
  target: { blobPath: string; blobSize: number; manifestPath: string; headers: Record<string, string> },
  samples: number,
  maxSeconds = Infinity,
): Promise<ProbeLatencies> {
  const deadline = performance.now() + maxSeconds * 1000;
  const blobMs: number[] = [];
  const manifestMs: number[] = [];
  const timed = async (path: string, headers: Record<string, string>, size: number | undefined, into: number[]) => {
    const start = performance.now();
    const res = await http.send('GET', path, headers);
    const ms = performance.now() - start;
    if (res.status !== 200 || (size !== undefined && res.body.length !== size)) {
      throw new Error(`GET ${path}: status ${res.status}, ${res.body.length} bytes: ${res.body.toString('utf8', 0, 200)}`);
    }
    into.push(ms);
  };
  for (let i = 0; i < samples && performance.now() < deadline; i++) {
    await timed(target.blobPath, target.headers, target.blobSize, blobMs);
    await timed(target.manifestPath, { ...target.headers, accept: 'application/vnd.oci.image.manifest.v1+json' }, undefined, manifestMs);
  }
  return { blobMs, manifestMs };
}
