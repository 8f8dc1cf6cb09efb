// Building blocks for structural CRD schemas written with TypeBox.
//
// Every helper returns a TypeBox schema whose JSON form is already a valid Kubernetes structural
// schema (a `type` on every node, enums instead of unions, maps as `additionalProperties`), so the
// same value gives us both the static TypeScript type (`Static<>`) and the CRD's openAPIV3Schema.
import { Type, type Static, type TSchema, type TObject, type TProperties, type ObjectOptions } from '@sinclair/typebox';

export interface CelRule {
  rule: string;
  message: string;
  /** Kubernetes machine-readable reason: FieldValueInvalid (default), FieldValueForbidden, FieldValueRequired, FieldValueDuplicate. */
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

export interface KubeObjectOptions extends ObjectOptions {
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

/** An object with CEL validation rules attached (`x-kubernetes-validations`). */
export function KObject<T extends TProperties>(properties: T, options: KubeObjectOptions = {}): TObject<T> {
  return Type.Object(properties, options);
}

/** A string restricted to a fixed set of values, emitted as `{type: string, enum: [...]}`. */
export function StringEnum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** A map of strings (labels, annotations, node selectors). */
export function StringMap(options: { description?: string; maxProperties?: number } = {}) {
  return Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, ...options });
}

const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** A resource.Quantity ("512Mi", "0.5", 2), as Kubernetes' own CRDs declare it. */
export function Quantity(options: { description?: string; default?: string } = {}) {
  return Type.Unsafe<string | number>({
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    'x-kubernetes-int-or-string': true,
    ...options,
  });
}

/** A Kubernetes object name in the same namespace (DNS-1123 subdomain). */
export function ObjectName(description: string) {
  return Type.String({ description, minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' });
}

/** A reference to an object in the same namespace, by name. */
export function LocalObjectReference(description: string) {
  return Type.Object({ name: ObjectName('Name of the referenced object, in the same namespace.') }, { description });
}

/** A reference to a Registry in the same namespace; it cannot be changed once set. */
export function RegistryReference() {
  return KObject(
    { name: ObjectName('Name of the Registry in the same namespace.') },
    {
      description: 'The Registry this object belongs to, in the same namespace.',
      'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'registryRef is immutable' }],
    },
  );
}

/** A key of a Secret in the same namespace. */
export function SecretKeySelector(defaultKey: string, description: string) {
  return Type.Object(
    {
      name: ObjectName('Name of the Secret in the same namespace.'),
      key: Type.String({ description: 'Key within the Secret.', default: defaultKey, minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
    },
    { description },
  );
}

/** A key of a ConfigMap in the same namespace. */
export function ConfigMapKeySelector(defaultKey: string, description: string) {
  return Type.Object(
    {
      name: ObjectName('Name of the ConfigMap in the same namespace.'),
      key: Type.String({ description: 'Key within the ConfigMap.', default: defaultKey, minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
    },
    { description },
  );
}

/** Compute resources, as in core/v1 ResourceRequirements (without claims). */
export function ResourceRequirements() {
  return Type.Object(
    {
      requests: Type.Optional(Type.Unsafe<Record<string, string | number>>({ type: 'object', additionalProperties: Quantity(), description: 'Minimum resources.' })),
      limits: Type.Optional(Type.Unsafe<Record<string, string | number>>({ type: 'object', additionalProperties: Quantity(), description: 'Maximum resources.' })),
    },
    { description: 'Compute resources of the container (core/v1 ResourceRequirements). Defaults: requests cpu 100m, memory 256Mi; limits memory 1Gi (the first start on an empty volume peaks at about 700 MiB).' },
  );
}

/** A label selector, as in meta/v1 LabelSelector. */
export function LabelSelector(description: string) {
  return Type.Object(
    {
      matchLabels: Type.Optional(StringMap({ description: 'Labels that must all match.' })),
      matchExpressions: Type.Optional(
        Type.Array(
          KObject(
            {
              key: Type.String({ minLength: 1, maxLength: 317 }),
              operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
              values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 64 })),
            },
            {
              'x-kubernetes-validations': [
                {
                  rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
                  message: 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
                },
              ],
            },
          ),
          { maxItems: 32, description: 'Label selector requirements, all of which must match.' },
        ),
      ),
    },
    { description, 'x-kubernetes-map-type': 'atomic' } as KubeObjectOptions,
  );
}

/** meta/v1 Condition, as the Kubernetes API conventions define it. */
export const Condition = Type.Object(
  {
    type: Type.String({ description: 'Type of condition in CamelCase.', maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'Status of the condition.' }),
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0, description: 'The .metadata.generation the condition was set from.' })),
    lastTransitionTime: Type.String({ format: 'date-time', description: 'When the condition last changed status.' }),
    reason: Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$', description: 'CamelCase reason for the last transition.' }),
    message: Type.String({ maxLength: 32768, description: 'Human-readable details.' }),
  },
  { description: 'A kstatus-compatible condition (meta/v1 Condition).' },
);
export type Condition = Static<typeof Condition>;

/** `status.conditions`: a list-map keyed by `type`, so server-side apply merges by condition type. */
export function Conditions() {
  return Type.Unsafe<Condition[]>({
    ...Type.Array(Condition, { maxItems: 16 }),
    description: 'Ready, Reconciling and Stalled (kstatus), plus kind-specific conditions.',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
}

/** Fields every Wharf status carries. */
export function StatusBase() {
  return {
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The .metadata.generation the status was computed from.' })),
    conditions: Type.Optional(Conditions()),
  };
}

export type { Static, TSchema };
