// Runs the operator under test as real processes (node dist/operator/src/main.js), authenticated
// as the wharf-operator ServiceAccount with exactly the RBAC in config/rbac.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeKubeconfig } from './kubeconfig.js';
import { controlPlane } from './context.js';
import { ROOT, apply, raw, type Clients } from './kube.js';
import { buildKustomization } from './kustomize.js';
import { freePort, GiveUp, startProcess, stopProcess, tail, waitFor, type ManagedProcess } from './processes.js';

export const OPERATOR_NAMESPACE = 'wharf-system';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:wharf-operator`;

/** Installs config/rbac and returns a kubeconfig holding a token of the operator's ServiceAccount. */
export async function operatorKubeconfig(c: Clients): Promise<string> {
  await raw(c, 'PATCH', `/api/v1/namespaces/${OPERATOR_NAMESPACE}?fieldManager=wharf-test&force=true`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } }, 'application/apply-patch+yaml');
  for (const obj of buildKustomization(join(ROOT, 'config/rbac'))) await apply(c, obj);
  const tr = await raw<{ status: { token: string } }>(c, 'POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/wharf-operator/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 7200 },
  });
  const cp = controlPlane();
  const dir = join(cp.workDir, 'operators');
  mkdirSync(dir, { recursive: true });
  return writeKubeconfig(join(dir, 'operator.kubeconfig'), cp.server, cp.caCert, { token: tr.status.token }, OPERATOR_NAMESPACE);
}

export interface OperatorProcessOptions {
  kubeconfig: string;
  identity: string;
  args?: string[];
  env?: Record<string, string>;
}

let logCounter = 0;

export class OperatorProcess {
  private constructor(
    readonly identity: string,
    readonly port: number,
    private readonly proc: ManagedProcess,
  ) {}

  static async start(o: OperatorProcessOptions): Promise<OperatorProcess> {
    const port = await freePort();
    const cp = controlPlane();
    const log = join(cp.workDir, 'operators', `${o.identity}-${++logCounter}.log`);
    const proc = startProcess(
      `operator ${o.identity}`,
      process.execPath,
      [join(ROOT, 'dist/operator/src/main.js'), '--kubeconfig', o.kubeconfig, '--identity', o.identity, '--health-addr', `127.0.0.1:${port}`, '--namespace', OPERATOR_NAMESPACE, ...(o.args ?? [])],
      log,
      { ...process.env, ...o.env, LOG_LEVEL: 'debug' },
    );
    const op = new OperatorProcess(o.identity, port, proc);
    await waitFor(`operator ${o.identity} /healthz`, async () => {
      if (proc.child.exitCode !== null) throw new GiveUp(`operator exited with ${proc.child.exitCode}:\n${tail(log)}`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return res.ok ? true : undefined;
    }, 30_000, 100);
    return op;
  }

  get logFile(): string {
    return this.proc.logFile;
  }

  get pid(): number {
    return this.proc.child.pid!;
  }

  get running(): boolean {
    return this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  async readyz(): Promise<number> {
    return (await fetch(`http://127.0.0.1:${this.port}/readyz`)).status;
  }

  async metricsText(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
  }

  /**
   * Sum of a counter/gauge over all label sets matching `labels` (e.g. {result: "success"}).
   * A metric the process does not export at all is an error, not 0: a renamed or removed metric
   * must not turn "is 0" checks into checks of nothing. A labelled counter that was never
   * incremented has no samples yet, and sums to 0.
   */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await this.metricsText();
    if (!text.split('\n').some((line) => line.startsWith(`# TYPE ${name} `))) throw new Error(`operator ${this.identity} exports no metric ${name}`);
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const lbls = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, v]) => lbls[k] === v)) sum += Number(m[4]);
    }
    return sum;
  }

  /** SIGKILL: the process dies at once, holding its lease. */
  async kill(): Promise<void> {
    this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }

  /** SIGTERM: graceful stop (releases the lease). Returns the exit code. */
  async stop(): Promise<number | null> {
    await stopProcess(this.proc, 'SIGTERM', 25_000);
    return this.proc.child.exitCode;
  }

  logs(lines = 60): string {
    return tail(this.proc.logFile, lines);
  }

  /**
   * The operator's log entries so far (pino JSON lines, `time` in ms since the epoch). Lines that
   * are not JSON (Node.js warnings on stderr) are not entries; the text after the last newline
   * is a line still being written.
   */
  logEntries(): { msg?: string; time: number; [key: string]: unknown }[] {
    const lines = readFileSync(this.proc.logFile, 'utf8').split('\n').slice(0, -1);
    return lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg?: string; time: number });
  }
}
