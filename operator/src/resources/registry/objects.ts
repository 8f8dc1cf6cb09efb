// The Service, ConfigMap, data PVC, PodDisruptionBudget and Ingress of a Registry.
import type { KubeObject, OwnerReference } from '../../kube/types.js';
import { type Registry } from './model.js';
import { names, selectorLabels } from './names.js';

type Owner = OwnerReference[];

export function renderService(reg: Registry, labels: Record<string, string>, owner: Owner): KubeObject {
  const { spec } = reg;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: names(reg.metadata.name).service,
      namespace: reg.metadata.namespace,
      labels,
      ...(spec.service.annotations ? { annotations: spec.service.annotations } : {}),
      ownerReferences: owner,
    },
    spec: {
      type: spec.service.type,
      selector: selectorLabels(reg),
      ports: [{ name: 'http', port: spec.service.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function renderConfigMap(reg: Registry, configFile: string, labels: Record<string, string>, owner: Owner): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: names(reg.metadata.name).config, namespace: reg.metadata.namespace, labels, ownerReferences: owner },
    data: { 'config.yaml': configFile },
  };
}

/**
 * The data volume. Owned by the Registry (garbage-collected with it) only with reclaimPolicy
 * Delete; a retained PVC has no owner, so a Registry of the same name applies to it again and
 * takes it over, data and all.
 */
export function renderDataVolume(reg: Registry, labels: Record<string, string>, owner: Owner): KubeObject {
  const p = reg.spec.persistence;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: names(reg.metadata.name).data, namespace: reg.metadata.namespace, labels, ...(p.reclaimPolicy === 'Delete' ? { ownerReferences: owner } : {}) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: String(p.size) } },
      ...(p.storageClassName ? { storageClassName: p.storageClassName } : {}),
    },
  };
}

export function renderPodDisruptionBudget(reg: Registry, labels: Record<string, string>, owner: Owner): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: names(reg.metadata.name).pdb, namespace: reg.metadata.namespace, labels, ownerReferences: owner },
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(reg) } },
  };
}

export function renderIngress(reg: Registry, labels: Record<string, string>, owner: Owner): KubeObject {
  const ing = reg.spec.ingress;
  const n = names(reg.metadata.name);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: n.ingress,
      namespace: reg.metadata.namespace,
      labels,
      ...(ing.annotations ? { annotations: ing.annotations } : {}),
      ownerReferences: owner,
    },
    spec: {
      ...(ing.className ? { ingressClassName: ing.className } : {}),
      ...(ing.tlsSecretName ? { tls: [{ hosts: [ing.host!], secretName: ing.tlsSecretName }] } : {}),
      rules: [
        {
          host: ing.host!,
          http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: n.service, port: { name: 'http' } } } }] },
        },
      ],
    },
  };
}
