// How the operator reaches a Registry's management API: the in-cluster endpoint and generated
// admin Secret of a managed Registry, or the URL and credentials Secret of an external one.
// Clients are kept per Registry and rebuilt only when the endpoint or the credentials change.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { isNotFound } from '../kube/errors.js';
import { RESOURCES } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import { RegistryClient, type RegistryConnection } from '../registry-client/client.js';
import { names, type Registry } from '../resources/registry/index.js';
import { UserError } from '../runtime/user-error.js';

export interface SecretLike extends KubeObject {
  data?: Record<string, string>;
}

export class RegistryConnections {
  private readonly clients = new Map<string, { fingerprint: string; client: RegistryClient }>();

  constructor(
    private readonly kube: KubeClient,
    private readonly log: Logger,
  ) {}

  /** A client for the Registry; a missing Secret or key is a UserError, a managed Registry without an endpoint yet is one too (retried later). */
  async client(reg: Registry, signal: AbortSignal): Promise<RegistryClient> {
    const connection = await this.connection(reg, signal);
    const key = `${reg.metadata.namespace}/${reg.metadata.name}`;
    const fingerprint = `${reg.metadata.uid}|${connection.url}|${connection.username}|${connection.password}|${connection.insecure ?? false}`;
    const cached = this.clients.get(key);
    if (cached?.fingerprint === fingerprint) return cached.client;
    await cached?.client.close();
    const client = new RegistryClient(connection, { log: this.log.child({ registry: key }) });
    this.clients.set(key, { fingerprint, client });
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.client.close()));
    this.clients.clear();
  }

  private async connection(reg: Registry, signal: AbortSignal): Promise<RegistryConnection> {
    const ns = reg.metadata.namespace!;
    const external = reg.spec.external;
    if (external) {
      const ref = external.credentialsSecretRef;
      const secret = await this.secret(ns, ref.name, 'registry credentials', signal);
      return { url: external.url, username: secretKey(secret, ref.usernameKey ?? 'username'), password: secretKey(secret, ref.passwordKey ?? 'password'), insecure: external.insecure ?? false };
    }
    const endpoint = reg.status?.endpoint;
    if (!endpoint) throw new UserError('RegistryNotReady', `Registry ${reg.metadata.name} has no endpoint yet`);
    const secret = await this.secret(ns, names(reg.metadata.name).adminSecret, 'generated admin credentials', signal);
    return { url: endpoint, username: secretKey(secret, 'username'), password: secretKey(secret, 'password') };
  }

  private secret(ns: string, name: string, what: string, signal: AbortSignal): Promise<SecretLike> {
    return readSecret(this.kube, ns, name, what, signal);
  }
}

/** A user's Secret, read with a GET (never cached); a missing one is a UserError naming what it is for. */
export async function readSecret(kube: KubeClient, ns: string, name: string, what: string, signal: AbortSignal): Promise<SecretLike> {
  try {
    return await kube.get<SecretLike>(RESOURCES.Secret, ns, name, signal);
  } catch (err) {
    if (isNotFound(err)) throw new UserError('SecretNotFound', `Secret ${name} (${what}) not found`);
    throw err;
  }
}

/** A key of a Secret, decoded; a missing or empty one is a UserError. */
export function secretKey(secret: SecretLike, name: string): string {
  const value = secret.data?.[name];
  if (!value) throw new UserError('SecretKeyNotFound', `Secret ${secret.metadata.name} has no key ${name}`);
  return Buffer.from(value, 'base64').toString('utf8');
}
