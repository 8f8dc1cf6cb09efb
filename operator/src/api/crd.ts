// Turns a KindDefinition into a CustomResourceDefinition object (pure, deterministic).
import { API_VERSION, GROUP, VERSION } from './group.js';
import type { KindDefinition } from './kinds.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Keys that may appear in a structural schema; anything else is a mistake in our schemas. */
const SCHEMA_KEYS = new Set([
  'type', 'format', 'description', 'default', 'enum', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minLength', 'maxLength', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties', 'multipleOf',
  'properties', 'required', 'items', 'additionalProperties', 'anyOf', 'nullable',
  'x-kubernetes-validations', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type',
  'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource',
]);

/** Converts a TypeBox schema into a plain structural schema, with a fixed key order. */
export function toStructural(schema: unknown, path = '$'): Json {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new Error(`${path}: not a schema`);
  const source = schema as Record<string, unknown>;
  const out: Record<string, Json> = {};
  for (const key of Object.keys(source)) {
    if (!SCHEMA_KEYS.has(key)) throw new Error(`${path}: '${key}' is not allowed in a structural schema`);
  }
  if (!('type' in source) && !('anyOf' in source && source['x-kubernetes-int-or-string'] === true)) {
    throw new Error(`${path}: every node of a structural schema needs a type`);
  }
  for (const key of [...SCHEMA_KEYS]) {
    if (!(key in source)) continue;
    const value = source[key];
    if (key === 'properties') {
      const props: Record<string, Json> = {};
      for (const [name, child] of Object.entries(value as Record<string, unknown>)) props[name] = toStructural(child, `${path}.${name}`);
      out.properties = props;
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) {
      out[key] = toStructural(value, `${path}[]`);
    } else if (key === 'anyOf') {
      out.anyOf = (value as unknown[]).map((v) => JSON.parse(JSON.stringify(v)) as Json);
    } else if (key === 'required') {
      // A field with a default is filled in by the apiserver, so it is not required from the user.
      const props = (source.properties ?? {}) as Record<string, { default?: unknown }>;
      const required = (value as string[]).filter((name) => props[name]?.default === undefined);
      if (required.length > 0) out.required = required;
    } else {
      out[key] = JSON.parse(JSON.stringify(value)) as Json;
    }
  }
  return out;
}

export function crdName(def: KindDefinition): string {
  return `${def.plural}.${GROUP}`;
}

export function renderCrd(def: KindDefinition): Record<string, Json> {
  const root: Record<string, Json> = {
    type: 'object',
    description: def.description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object.' },
      kind: { type: 'string', description: 'Kind of this object.' },
      metadata: { type: 'object' },
      spec: toStructural(def.spec, '$.spec'),
      status: toStructural(def.status, '$.status'),
    },
  };
  if (def.specRequired) root.required = ['spec'];
  if (def.rootValidations.length > 0) root['x-kubernetes-validations'] = JSON.parse(JSON.stringify(def.rootValidations)) as Json;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: crdName(def),
      labels: { 'app.kubernetes.io/part-of': 'wharf' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ['wharf'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns as unknown as Json,
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}

export { API_VERSION };
