// A real Wharf registry process (node dist/registry/src/main.js) with token auth on, for the
// operator's content controllers to manage as an external Registry.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, ROOT, type Clients } from './kube.js';
import { freePort, startProcess, stopProcess, tail, waitFor, type ManagedProcess } from './processes.js';

export const REGISTRY_ADMIN_PASSWORD = 'wharf-operator-test-admin';

export class RegistryProcess {
  private constructor(
    readonly url: string,
    readonly dataDir: string,
    private readonly proc: ManagedProcess,
  ) {}

  static async start(): Promise<RegistryProcess> {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-op-registry-'));
    const log = join(dataDir, 'registry.log');
    const proc = startProcess('registry', process.execPath, [join(ROOT, 'dist/registry/src/main.js'), '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--auth', 'token'], log, {
      ...process.env,
      WHARF_ADMIN_PASSWORD: REGISTRY_ADMIN_PASSWORD,
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor('registry /readyz', async () => {
      if (proc.child.exitCode !== null) throw new Error(`registry exited with ${proc.child.exitCode}:\n${tail(log)}`);
      return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined;
    }, 180_000, 200);
    return new RegistryProcess(url, dataDir, proc);
  }

  /** A management-API call as the admin (Basic). */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: { Authorization: `Basic ${Buffer.from(`admin:${REGISTRY_ADMIN_PASSWORD}`).toString('base64')}`, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const res = await this.api(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Requests the registry counted (wharf_http_requests_total) with a method that writes, by method and route. */
  async writeCounts(): Promise<Record<string, number>> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    if (!text.includes('# TYPE wharf_http_requests_total ')) throw new Error('the registry exports no wharf_http_requests_total');
    const writes: Record<string, number> = {};
    for (const m of text.matchAll(/^wharf_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
      const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (['GET', 'HEAD'].includes(labels.method!)) continue;
      const key = `${labels.method} ${labels.route}`;
      writes[key] = (writes[key] ?? 0) + Number(m[2]);
    }
    return writes;
  }

  logs(lines = 60): string {
    return tail(this.proc.logFile, lines);
  }

  async stop(): Promise<void> {
    await stopProcess(this.proc);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** What changed between two `writeCounts()` readings. */
export function countsAdded(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).filter(([k, v]) => v !== (before[k] ?? 0)).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

/**
 * Makes `registry` the external Registry `name` in `namespace`: the admin credentials Secret
 * `wharf-admin` and a Registry with spec.external pointing at it.
 */
export async function applyExternalRegistry(c: Clients, namespace: string, registry: RegistryProcess, name = 'ext'): Promise<void> {
  await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'wharf-admin', namespace }, stringData: { username: 'admin', password: REGISTRY_ADMIN_PASSWORD } } as never);
  await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace }, spec: { external: { url: registry.url, credentialsSecretRef: { name: 'wharf-admin' } } } } as never);
}
