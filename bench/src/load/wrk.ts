import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../util/exec.js';

/** wrk's own summary, printed as one JSON line by the script below. */
export interface WrkResult {
  requests: number;
  bytes: number;
  durationS: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyMs: { p50: number; p99: number; max: number };
}

const MARKER = 'WRK_RESULT ';

// Called by wrk once at the end with the merged statistics of all threads.
const REPORT_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARKER}{"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  /** Where to write the report script. */
  workDir: string;
}

/** Runs wrk (keep-alive HTTP/1.1 GETs) against one URL and returns its totals. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const script = join(options.workDir, 'wrk-report.lua');
  await writeFile(script, REPORT_SCRIPT);
  const args = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${options.durationS}s`, '--timeout', '60s', '--latency', '-s', script];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  const { code, stdout, stderr } = await exec('wrk', args, { timeoutMs: (options.durationS + 120) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${stderr || stdout}`);
  const raw = JSON.parse(line.slice(MARKER.length)) as {
    requests: number;
    bytes: number;
    duration_us: number;
    errors: WrkResult['errors'];
    latency_us: { p50: number; p99: number; max: number };
  };
  return {
    requests: raw.requests,
    bytes: raw.bytes,
    durationS: raw.duration_us / 1e6,
    errors: raw.errors,
    latencyMs: { p50: raw.latency_us.p50 / 1000, p99: raw.latency_us.p99 / 1000, max: raw.latency_us.max / 1000 },
  };
}

/** Errors wrk counted, as text; empty when there were none. */
export function wrkErrors(result: WrkResult): string {
  return Object.entries(result.errors)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
}
