// ServiceAccounts cannot be selected by label (they are not ours), and the imagePullSecrets
// entries we add must be restored when removed and added to ServiceAccounts created later, so
// some must be watched. Caching every ServiceAccount in the cluster would grow with the number
// of namespaces times the ServiceAccounts in each; instead, one informer per ServiceAccount
// *name* that some RobotAccount lists (typically just `default`), each with the field selector
// metadata.name=<name> across all namespaces. The cache then holds at most one ServiceAccount
// per namespace per listed name, and informers start and stop as RobotAccounts change.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { RESOURCES } from '../kube/resources.js';
import type { ServiceAccountLike } from '../resources/robot-account/pull-secret.js';
import { Informer } from '../runtime/informer.js';

export class ServiceAccountWatches {
  private readonly watches = new Map<string, { informer: Informer<ServiceAccountLike>; stop: AbortController; run: Promise<void> }>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly onChange: (sa: ServiceAccountLike) => void,
  ) {}

  /** Watches exactly these names from now on. */
  watchNames(names: Iterable<string>, signal: AbortSignal): void {
    const wanted = new Set(names);
    for (const [name, watch] of this.watches) {
      if (wanted.has(name)) continue;
      watch.stop.abort();
      this.watches.delete(name);
      this.log.debug({ serviceAccount: name }, 'stopped watching ServiceAccounts of this name');
    }
    for (const name of wanted) {
      if (this.watches.has(name) || signal.aborted) continue;
      const informer = new Informer<ServiceAccountLike>(this.client, { resource: RESOURCES.ServiceAccount, fieldSelector: `metadata.name=${name}` }, this.log);
      informer.onEvent((_type, sa) => this.onChange(sa));
      const stop = new AbortController();
      const run = informer.run(AbortSignal.any([signal, stop.signal]));
      this.watches.set(name, { informer, stop, run });
      this.log.debug({ serviceAccount: name }, 'watching ServiceAccounts of this name');
    }
  }

  /** Resolves once every informer started so far has listed (or the signal ends). */
  async waitForSync(signal: AbortSignal): Promise<void> {
    await Promise.race([Promise.all([...this.watches.values()].map((w) => w.informer.waitForSync())), new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
  }

  /**
   * The ServiceAccount namespace/name: from the cache when its name is watched and synced (absent
   * there: it does not exist), else read from the apiserver (a name no longer listed, whose
   * entries are being removed, or one whose informer has not listed yet).
   */
  async get(namespace: string, name: string, signal: AbortSignal): Promise<ServiceAccountLike | undefined> {
    const watch = this.watches.get(name);
    if (watch?.informer.synced) return watch.informer.get(`${namespace}/${name}`);
    return this.read(namespace, name, signal);
  }

  /** A fresh read (after a conflict). */
  read(namespace: string, name: string, signal: AbortSignal): Promise<ServiceAccountLike | undefined> {
    return this.client.find<ServiceAccountLike>(RESOURCES.ServiceAccount, namespace, name, signal);
  }

  /** How many ServiceAccounts are cached, per watched name (for logs and the memory benchmark). */
  sizes(): Record<string, number> {
    return Object.fromEntries([...this.watches].map(([name, w]) => [name, w.informer.list().length]));
  }

  async stopAll(): Promise<void> {
    for (const w of this.watches.values()) w.stop.abort();
    await Promise.all([...this.watches.values()].map((w) => w.run));
    this.watches.clear();
  }
}
