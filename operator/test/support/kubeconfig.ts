// Writes kubeconfig files for the test control plane.
import { readFileSync, writeFileSync } from 'node:fs';
import { dump } from 'js-yaml';

const b64 = (path: string) => readFileSync(path).toString('base64');

export interface KubeconfigUser {
  clientCert?: string;
  clientKey?: string;
  token?: string;
}

export function writeKubeconfig(path: string, server: string, caCert: string, user: KubeconfigUser, namespace = 'default'): string {
  const u: Record<string, string> = {};
  if (user.clientCert) u['client-certificate-data'] = b64(user.clientCert);
  if (user.clientKey) u['client-key-data'] = b64(user.clientKey);
  if (user.token) u.token = user.token;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'wharf-test', cluster: { server, 'certificate-authority-data': b64(caCert) } }],
    users: [{ name: 'user', user: u }],
    contexts: [{ name: 'wharf-test', context: { cluster: 'wharf-test', user: 'user', namespace } }],
    'current-context': 'wharf-test',
  };
  writeFileSync(path, dump(config), { mode: 0o600 });
  return path;
}
