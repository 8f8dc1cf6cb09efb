import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ConformanceCounts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  disabled: number;
  passed: number;
  failed: string[];
}

/**
 * Reads the totals and the failed test names from the suite's junit.xml. The suite leaves out
 * counts that are 0; the failed tests are read from the test cases themselves (status
 * "failure"/"error", or ginkgo's "failed", "panicked", ...). Totals and test cases must agree on
 * whether anything failed, so that a report in an unexpected shape fails instead of reading as
 * "nothing failed".
 */
export function parseJunit(xml: string): ConformanceCounts {
  const suites = /<testsuites\b([^>]*)>/.exec(xml);
  if (!suites) throw new Error('junit.xml has no <testsuites> element');
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suites[1]!)?.[1] ?? 0);
  const cases = [...xml.matchAll(/<testcase\b([^>]*)>/g)].map((m) => ({ name: /\bname="([^"]*)"/.exec(m[1]!)?.[1] ?? '', status: /\bstatus="([^"]*)"/.exec(m[1]!)?.[1] }));
  const failed = cases.filter((c) => c.status !== undefined && FAILED_STATUSES.has(c.status)).map((c) => c.name);
  const counts = { tests: attr('tests'), failures: attr('failures'), errors: attr('errors'), skipped: attr('skipped'), disabled: attr('disabled') };
  if (cases.length === 0 || cases.some((c) => c.status === undefined) || failed.length > 0 !== counts.failures + counts.errors > 0) {
    throw new Error(`junit.xml does not add up: ${JSON.stringify(counts)}, ${cases.length} test cases, ${failed.length} of them failed`);
  }
  return { ...counts, passed: counts.tests - counts.failures - counts.errors - counts.skipped - counts.disabled, failed };
}

const FAILED_STATUSES = new Set(['failure', 'error', 'failed', 'panicked', 'interrupted', 'aborted', 'timedout']);

export interface ConformanceRun {
  counts: ConformanceCounts;
  output: string;
  resultsDir: string;
}

export interface ConformanceSuite {
  name: string;
  /** The test binary in the tools directory (built by `make tools`). */
  binary: string;
  /** Fewer passed specs than this means the suite silently ran less than it should. */
  minPassed: number;
}

/**
 * The suites `make test` runs: the current one (tools/go.mod) and the one of the v1.1.0
 * era (tools/conformance-v1.1/go.mod), whose published results registries still quote.
 */
export const CONFORMANCE_SUITES: ConformanceSuite[] = [
  { name: 'current', binary: 'oci-conformance.test', minPassed: 800 },
  { name: 'v1.1.0 era', binary: 'oci-conformance-v1.1.test', minPassed: 70 },
];

/**
 * Runs an OCI distribution-spec conformance suite against a registry with all four
 * workflows on.
 */
export async function runConformance(toolsBin: string, host: string, extraEnv: Record<string, string> = {}, suite: ConformanceSuite = CONFORMANCE_SUITES[0]!): Promise<ConformanceRun> {
  const resultsDir = await mkdtemp(join(tmpdir(), 'wharf-conformance-'));
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: resultsDir,
    OCI_ROOT_URL: `http://${host}`,
    OCI_REGISTRY: host,
    OCI_TLS: 'disabled',
    OCI_NAMESPACE: 'conformance/repo1',
    OCI_CROSSMOUNT_NAMESPACE: 'conformance/repo2',
    OCI_TEST_PULL: '1',
    OCI_TEST_PUSH: '1',
    OCI_TEST_CONTENT_DISCOVERY: '1',
    OCI_TEST_CONTENT_MANAGEMENT: '1',
    // Blobs are visible only where pushed or mounted, so a mount without `from` is a normal upload.
    OCI_AUTOMATIC_CROSSMOUNT: 'false',
    OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
    OCI_RESULTS_DIR: resultsDir,
    // The v1.1.0-era suite's name for the same setting.
    OCI_REPORT_DIR: resultsDir,
    ...extraEnv,
  };
  let output = '';
  try {
    const result = await run(join(toolsBin, suite.binary), [], { env, cwd: resultsDir, maxBuffer: 64 * 1024 * 1024 });
    output = result.stdout + result.stderr;
  } catch (err) {
    // The suite exits non-zero when a spec fails; the junit report says which.
    const e = err as { stdout?: string; stderr?: string };
    output = (e.stdout ?? '') + (e.stderr ?? '');
  }
  const xml = await readFile(join(resultsDir, 'junit.xml'), 'utf8').catch(() => {
    throw new Error(`conformance suite wrote no junit.xml; output:\n${output.slice(-4000)}`);
  });
  return { counts: parseJunit(xml), output, resultsDir };
}
