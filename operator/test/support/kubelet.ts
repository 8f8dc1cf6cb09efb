// The test control plane has no nodes. To make Deployment status real end to end, the test plays
// the kubelet's one part that matters here: it reports pods of a selector as Running and Ready
// through the pods/status subresource. The ReplicaSet and Deployment controllers in
// kube-controller-manager then compute ready and available replicas as in a real cluster.
import { raw, type Clients } from './kube.js';

interface Pod {
  metadata: { name: string; namespace: string; deletionTimestamp?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

export async function markPodsReady(c: Clients, namespace: string, labelSelector: string): Promise<number> {
  const pods = await raw<{ items: Pod[] }>(c, 'GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(labelSelector)}`);
  let marked = 0;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  for (const pod of pods.items) {
    if (pod.metadata.deletionTimestamp) continue;
    if (pod.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) continue;
    await raw(c, 'PATCH', `/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}/status`, {
      status: {
        phase: 'Running',
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
          { type: 'Initialized', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
          { type: 'Ready', status: 'True', lastTransitionTime: now },
        ],
      },
    }, 'application/strategic-merge-patch+json');
    marked++;
  }
  return marked;
}
