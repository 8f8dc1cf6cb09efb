// Pod scheduling fields as core/v1 declares them (Toleration, Affinity), for the pods a kind
// deploys. Written out in full, as kubebuilder embeds them, so that `kubectl explain` documents
// them and the apiserver rejects a typo in the custom resource, not later in the Deployment.
// Cross-field rules (e.g. a value with operator Exists) are left to the Deployment's validation:
// a rejected Deployment makes the Registry Stalled with the apiserver's message.
import { Type } from '@sinclair/typebox';
import { KObject, LabelSelector, StringEnum, type KubeObjectOptions } from './schema.js';

const LabelKey = (description: string) => Type.String({ minLength: 1, maxLength: 317, description });
const Strings = (description: string, maxItems = 64) => Type.Array(Type.String({ maxLength: 253 }), { maxItems, description });
const Weight = () => Type.Integer({ minimum: 1, maximum: 100, format: 'int32', description: 'Weight of this term (1-100) among the preferred ones.' });

export const Toleration = Type.Object(
  {
    key: Type.Optional(LabelKey('Taint key the toleration applies to; empty with operator Exists matches every taint.')),
    operator: Type.Optional(StringEnum(['Exists', 'Equal'] as const, { description: 'Exists (any value) or Equal (the value). Default: Equal.' })),
    value: Type.Optional(Type.String({ maxLength: 63, description: 'Taint value to match with operator Equal.' })),
    effect: Type.Optional(StringEnum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const, { description: 'Taint effect to match; unset matches every effect.' })),
    tolerationSeconds: Type.Optional(Type.Integer({ format: 'int64', description: 'For NoExecute: how long the pod stays bound after the taint appears.' })),
  },
  { description: 'A core/v1 Toleration.' },
);

const NodeSelectorRequirement = Type.Object(
  {
    key: LabelKey('Label (or field) key.'),
    operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const, { description: 'How the key relates to the values.' }),
    values: Type.Optional(Strings('Values; one integer for Gt and Lt, none for Exists and DoesNotExist.')),
  },
  { description: 'A node selector requirement.' },
);

const NodeSelectorTerm = KObject(
  {
    matchExpressions: Type.Optional(Type.Array(NodeSelectorRequirement, { maxItems: 32, description: "Requirements on the node's labels." })),
    matchFields: Type.Optional(Type.Array(NodeSelectorRequirement, { maxItems: 32, description: "Requirements on the node's fields." })),
  },
  { description: 'Requirements that must all match (a null or empty term matches no node).', 'x-kubernetes-map-type': 'atomic' } as KubeObjectOptions,
);

const NodeAffinity = Type.Object(
  {
    requiredDuringSchedulingIgnoredDuringExecution: Type.Optional(
      KObject(
        { nodeSelectorTerms: Type.Array(NodeSelectorTerm, { maxItems: 32, description: 'Terms of which at least one must match.' }) },
        { description: 'Nodes the pod must be scheduled on.', 'x-kubernetes-map-type': 'atomic' } as KubeObjectOptions,
      ),
    ),
    preferredDuringSchedulingIgnoredDuringExecution: Type.Optional(
      Type.Array(Type.Object({ weight: Weight(), preference: NodeSelectorTerm }, { description: 'A weighted node preference.' }), {
        maxItems: 32,
        description: 'Nodes the scheduler prefers.',
      }),
    ),
  },
  { description: 'Node affinity.' },
);

const PodAffinityTerm = Type.Object(
  {
    labelSelector: Type.Optional(LabelSelector('Pods this term is about.')),
    namespaceSelector: Type.Optional(LabelSelector('Namespaces of those pods, by label (with namespaces: their union).')),
    namespaces: Type.Optional(Strings('Namespaces of those pods; unset with no namespaceSelector: the pod\'s own.', 32)),
    topologyKey: LabelKey('Node label whose value defines "co-located" (e.g. kubernetes.io/hostname, topology.kubernetes.io/zone).'),
    matchLabelKeys: Type.Optional(Type.Unsafe<string[]>({ ...Strings('Pod label keys whose values are added to labelSelector as In.', 16), 'x-kubernetes-list-type': 'atomic' })),
    mismatchLabelKeys: Type.Optional(Type.Unsafe<string[]>({ ...Strings('Pod label keys whose values are added to labelSelector as NotIn.', 16), 'x-kubernetes-list-type': 'atomic' })),
  },
  { description: 'Pods (by labels and namespaces) and the topology within which the rule holds.' },
);

const PodAffinityRules = (what: string) =>
  Type.Object(
    {
      requiredDuringSchedulingIgnoredDuringExecution: Type.Optional(Type.Array(PodAffinityTerm, { maxItems: 16, description: `Terms that must all hold (${what}).` })),
      preferredDuringSchedulingIgnoredDuringExecution: Type.Optional(
        Type.Array(Type.Object({ weight: Weight(), podAffinityTerm: PodAffinityTerm }, { description: 'A weighted pod affinity term.' }), {
          maxItems: 16,
          description: `Terms the scheduler prefers to hold (${what}).`,
        }),
      ),
    },
    { description: `Pod ${what}.` },
  );

export const Affinity = Type.Object(
  {
    nodeAffinity: Type.Optional(NodeAffinity),
    podAffinity: Type.Optional(PodAffinityRules('affinity: co-locate with these pods')),
    podAntiAffinity: Type.Optional(PodAffinityRules('anti-affinity: keep away from these pods')),
  },
  { description: 'Scheduling constraints of the pods (core/v1 Affinity).' },
);
