// The URLs a Registry is reached at, and the token service/realm derived from them.
import { TOKEN_PATH, type Registry } from './model.js';
import { names } from './names.js';

/**
 * The realm is left unset unless there is an external endpoint (or spec.auth.realm): the
 * registry then names the host each client reached it at (a NodePort, a port-forward, the
 * Service). The in-cluster Service name would not do: the kubelet and containerd pull from the
 * node, where cluster DNS names do not resolve, and would fail at the token step.
 */
export function endpoints(reg: Registry): { endpoint: string; externalEndpoint?: string; service: string; realm?: string } {
  const { spec } = reg;
  const host = `${names(reg.metadata.name).service}.${reg.metadata.namespace}.svc`;
  const endpoint = `http://${host}:${spec.service.port}`;
  const externalEndpoint = spec.ingress.enabled && spec.ingress.host ? `${spec.ingress.tlsSecretName ? 'https' : 'http'}://${spec.ingress.host}` : undefined;
  const service = spec.auth.service ?? (externalEndpoint ? spec.ingress.host! : `${host}:${spec.service.port}`);
  const realm = spec.auth.realm ?? (externalEndpoint ? `${externalEndpoint}${TOKEN_PATH}` : undefined);
  return { endpoint, externalEndpoint, service, ...(realm ? { realm } : {}) };
}
