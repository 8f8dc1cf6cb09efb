// What a test file gets from the global setup: the control plane, and admin clients for it.
import { inject } from 'vitest';
import { adminConfig, clients, type Clients } from './kube.js';

export function controlPlane() {
  return inject('controlPlane');
}

export function adminClients(): Clients {
  return clients(adminConfig(controlPlane().adminKubeconfig));
}
