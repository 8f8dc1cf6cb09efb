// The Deployment running the registry: restricted security context, probes on the registry's
// health endpoints, config and secrets as read-only files, and a checksum of the configuration
// in the pod template so that any configuration change rolls the pods.
import type { KubeObject } from '../../kube/types.js';
import { ADMIN_DIR, CONFIG_DIR, CONTAINER_PORT, DATA_DIR, DATABASE_CA_DIR, DATABASE_CA_FILE, RUN_AS_USER, TOKEN_DIR, TOKEN_KEY_FILE, hasLocalState, type Registry } from './model.js';
import { commonLabels, names, selectorLabels } from './names.js';

export const CONFIG_HASH_ANNOTATION = 'wharf.dev/config-hash';

// Measured on Node.js 24 (docs/lab.md, "First start"): a first start on an empty volume peaks at
// 600-700 MiB (the initdb child's 500-600 MiB while the parent holds about 90 MiB); every later
// start at about 210 MiB, about what the registry then holds. 512Mi would OOM-kill the first start.
const DEFAULT_RESOURCES = { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } };

export function renderDeployment(reg: Registry, image: string, version: string, configHash: string, owner: KubeObject['metadata']['ownerReferences']): KubeObject {
  const { spec } = reg;
  const n = names(reg.metadata.name);
  const env: Record<string, unknown>[] = [{ name: 'WHARF_CONFIG_FILE', value: `${CONFIG_DIR}/config.yaml` }, { name: 'WHARF_ADMIN_PASSWORD_FILE', value: `${ADMIN_DIR}/password` }];
  if (spec.database.type === 'external') {
    const ref = spec.database.external!.secretRef;
    env.push({ name: 'WHARF_DATABASE_URL', valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
  }
  if (spec.storage.type === 's3' && spec.storage.s3!.secretRef) {
    const ref = spec.storage.s3!.secretRef;
    env.push({ name: 'WHARF_S3_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: ref.name, key: ref.accessKeyIDKey } } });
    env.push({ name: 'WHARF_S3_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: ref.name, key: ref.secretAccessKeyKey } } });
  }
  const caVolume = databaseCaVolume(reg);
  const local = hasLocalState(spec);
  const httpGet = (path: string) => ({ path, port: 'http', scheme: 'HTTP' });
  const container: Record<string, unknown> = {
    name: 'registry',
    image,
    ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
    env,
    ports: [{ name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' }],
    resources: spec.resources ?? DEFAULT_RESOURCES,
    startupProbe: { httpGet: httpGet('/healthz'), periodSeconds: 2, failureThreshold: 60, timeoutSeconds: 2 },
    livenessProbe: { httpGet: httpGet('/healthz'), periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { httpGet: httpGet('/readyz'), periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
      { name: 'admin', mountPath: ADMIN_DIR, readOnly: true },
      { name: 'token-key', mountPath: TOKEN_DIR, readOnly: true },
      { name: 'data', mountPath: DATA_DIR },
      { name: 'tmp', mountPath: '/tmp' },
      ...(caVolume ? [{ name: caVolume.name, mountPath: DATABASE_CA_DIR, readOnly: true }] : []),
    ],
  };
  const labels = commonLabels(reg, version);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: n.deployment, namespace: reg.metadata.namespace, labels, ownerReferences: owner },
    spec: {
      replicas: spec.replicas,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(reg) },
      // One writer on the data volume: never run the old and the new pod together.
      strategy: local ? { type: 'Recreate' } : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels, annotations: { ...spec.podAnnotations, [CONFIG_HASH_ANNOTATION]: configHash } },
        spec: {
          ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
          // IRSA and Azure workload identity mount their own projected token; GKE's needs none.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUN_AS_USER,
            runAsGroup: RUN_AS_USER,
            fsGroup: RUN_AS_USER,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
          ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
          ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
          ...(spec.affinity ? { affinity: spec.affinity } : {}),
          containers: [container],
          volumes: [
            { name: 'config', configMap: { name: n.config } },
            { name: 'admin', secret: { secretName: n.adminSecret, items: [{ key: 'password', path: 'password' }] } },
            { name: 'token-key', secret: { secretName: n.tokenKeySecret, items: [{ key: TOKEN_KEY_FILE, path: TOKEN_KEY_FILE }] } },
            local ? { name: 'data', persistentVolumeClaim: { claimName: n.data } } : { name: 'data', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
            ...(caVolume ? [caVolume] : []),
          ],
        },
      },
    },
  };
}

/** The database CA (a Secret's or ConfigMap's key) as the file `ca.crt` of a volume, if the spec names one. */
function databaseCaVolume(reg: Registry): Record<string, unknown> & { name: string } | undefined {
  const ext = reg.spec.database.external;
  const items = (key: string) => [{ key, path: DATABASE_CA_FILE }];
  if (ext?.caSecretRef) return { name: 'database-ca', secret: { secretName: ext.caSecretRef.name, items: items(ext.caSecretRef.key) } };
  if (ext?.caConfigMapRef) return { name: 'database-ca', configMap: { name: ext.caConfigMapRef.name, items: items(ext.caConfigMapRef.key) } };
  return undefined;
}
