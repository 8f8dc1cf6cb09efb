// The URLs a Registry is reached at, and the token service/realm derived from them.
import { TOKEN_PATH, type Registry } from './model.js';
import { names } from './names.js';

export function endpoints(reg: Registry): { endpoint: string; externalEndpoint?: string; service: string; realm: string } {
  const { spec } = reg;
  const host = `${names(reg.metadata.name).service}.${reg.metadata.namespace}.svc`;
  const endpoint = `http://${host}:${spec.service.port}`;
  const externalEndpoint = spec.ingress.enabled && spec.ingress.host ? `${spec.ingress.tlsSecretName ? 'https' : 'http'}://${spec.ingress.host}` : undefined;
  const service = spec.auth.service ?? (externalEndpoint ? spec.ingress.host! : `${host}:${spec.service.port}`);
  const realm = spec.auth.realm ?? `${externalEndpoint ?? endpoint}${TOKEN_PATH}`;
  return { endpoint, externalEndpoint, service, realm };
}
