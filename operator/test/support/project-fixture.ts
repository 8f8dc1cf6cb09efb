import { adminClients } from './context.js';
import { createNamespace, getObject, waitFor, type Clients } from './kube.js';
import { OperatorProcess, operatorKubeconfig } from './operator.js';
import { applyExternalRegistry, RegistryProcess } from './registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const API = 'wharf.dev/v1alpha1';

/**
 * What the Project tests share: a real registry process reached through an external Registry
 * named `ext` in a fresh namespace, and the operator as a real process watching that namespace.
 */
export class ProjectFixture {
  private constructor(
    readonly c: Clients,
    readonly ns: string,
    readonly registry: RegistryProcess,
    readonly op: OperatorProcess,
  ) {}

  /** `name` prefixes the namespace and names the operator's lease; `prepare` runs before the operator starts. */
  static async start(name: string, options: { resync?: number; prepare?: (c: Clients, ns: string, registry: RegistryProcess) => Promise<void> } = {}): Promise<ProjectFixture> {
    const c = adminClients();
    const registry = await RegistryProcess.start();
    const kubeconfig = await operatorKubeconfig(c);
    const ns = await createNamespace(c, name);
    await applyExternalRegistry(c, ns, registry);
    await options.prepare?.(c, ns, registry);
    const op = await OperatorProcess.start({ kubeconfig, identity: `${name}-op`, args: ['--lease-name', name, '--watch-namespace', ns, '--resync', String(options.resync ?? 3)] });
    return new ProjectFixture(c, ns, registry, op);
  }

  projectRef(name: string) {
    return { apiVersion: API, kind: 'Project', metadata: { name, namespace: this.ns } };
  }

  getProject(name: string): Promise<Any> {
    return getObject<Any>(this.c, this.projectRef(name));
  }

  /** The Project once its status describes its current generation and `check` holds. */
  waitProject(name: string, check: (p: Any) => boolean, what = 'observed', timeoutMs = 60_000): Promise<Any> {
    return waitFor(`Project ${name} ${what}`, async () => {
      const p = await this.getProject(name);
      return p && p.status?.observedGeneration === p.metadata.generation && check(p) ? p : undefined;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.op?.stop();
    await this.registry?.stop();
  }
}

export const condition = (obj: Any, type: string) => obj?.status?.conditions?.find((x: Any) => x.type === type);
