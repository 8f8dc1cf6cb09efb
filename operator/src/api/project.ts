// The Project kind: a Harbor-style project inside a Registry. A project is the first path segment of
// a repository name; it carries visibility, a storage quota, members with roles, and optionally
// makes the project a pull-through cache of an upstream registry (reconciled once the registry has
// proxy caches). The Project controller is controllers/project.ts.
import { Type, type Static } from '@sinclair/typebox';
import { ImmutabilitySpec, RetentionSpec } from './lifecycle.js';
import { MIRROR_HOST_PATTERN } from '../node-agent/hosts-toml.js';
import { KObject, LocalObjectReference, Quantity, RegistryReference, SecretKeySelector, StatusBase, StringEnum } from './schema.js';

/** Harbor's project name grammar (also a valid first path segment of an OCI repository name). */
export const PROJECT_NAME_PATTERN = '^[a-z0-9]+(?:[._-][a-z0-9]+)*$';

export const ProjectRole = StringEnum(['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const, {
  description: "Harbor's project roles, from most to least privileged.",
});

export const ProjectMember = Type.Object({
  kind: StringEnum(['User', 'Group'] as const, { default: 'User', description: 'Member kind.' }),
  name: Type.String({ minLength: 1, maxLength: 255, description: 'User or group name in the registry.' }),
  role: ProjectRole,
});

export const ProxyCacheSpec = Type.Object(
  {
    provider: StringEnum(['docker-hub', 'docker-registry', 'harbor', 'wharf', 'ghcr', 'quay', 'gcr', 'ecr', 'acr'] as const, {
      default: 'docker-registry',
      description: 'Kind of upstream; it decides the auth flow and name mapping (docker-hub adds library/).',
    }),
    url: Type.String({ format: 'uri', maxLength: 2048, pattern: '^https?://', description: 'Upstream registry URL.' }),
    credentialsSecretRef: Type.Optional(
      LocalObjectReference('Secret with keys username and password for the upstream. The password is write-only in the registry; the operator sends it again when the Secret changes.'),
    ),
    insecure: Type.Boolean({ default: false, description: 'Skip TLS verification of the upstream.' }),
    mirrorOf: Type.Optional(
      Type.Unsafe<string[]>({
        ...Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: MIRROR_HOST_PATTERN }), { maxItems: 32 }),
        description:
          'Upstream hosts this project mirrors for containerd (pulls of docker.io/... sent with ?ns=docker.io). A host is mirrored by one project at most. The Registry\'s nodeMirror writes these hosts into the nodes\' containerd configuration.',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    manifestTTLSeconds: Type.Integer({ default: 300, minimum: 0, maximum: 2_592_000, format: 'int32', description: 'Seconds a cached tag is served without asking the upstream; then one HEAD re-checks it. 0 asks on every pull by tag.' }),
  },
  { description: 'Makes this a pull-through cache project of an upstream registry. Such a project is read-only for pushes.' },
);

/** The registry's webhook event kinds (registry/src/webhooks/events.ts). */
export const WEBHOOK_EVENTS = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'tag.created', 'quota.exceeded', 'quota.warning', 'replication.status', 'retention.finished'] as const;

export const WebhookSpec = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 63, pattern: PROJECT_NAME_PATTERN, description: 'Name of the webhook in the project.' }),
  url: Type.String({ maxLength: 2048, pattern: '^https?://', description: 'Target URL, http:// or https://.' }),
  format: StringEnum(['harbor', 'cloudevents'] as const, { default: 'harbor', description: "Payload: Harbor's default JSON, or CloudEvents 1.0 structured JSON." }),
  events: Type.Array(StringEnum(WEBHOOK_EVENTS, { description: 'An event kind.' }), { minItems: 1, maxItems: 16, description: 'Events sent; pulls (batched) only when artifact.pulled is listed.' }),
  enabled: Type.Boolean({ default: true }),
  authHeaderSecretRef: Type.Optional(SecretKeySelector('authorization', 'Secret key whose value is sent as the Authorization header of each delivery.')),
  hmacSecretRef: Type.Optional(SecretKeySelector('secret', 'Secret key holding the HMAC-SHA256 key; deliveries carry X-Wharf-Signature-256: sha256=<hex>.')),
});

export const ProjectSpec = KObject(
  {
    registryRef: RegistryReference(),
    projectName: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        pattern: PROJECT_NAME_PATTERN,
        description: 'Project name in the registry. Default: metadata.name.',
        'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'projectName is immutable' }],
      }),
    ),
    visibility: StringEnum(['private', 'public'] as const, { default: 'private', description: 'public allows anonymous pull.' }),
    quota: Type.Optional(
      Type.Object(
        { storage: Quantity({ description: 'Storage limit, counted on deduplicated blob sizes. Unset means unlimited.' }) },
        { description: 'Storage quota.' },
      ),
    ),
    members: Type.Optional(
      Type.Unsafe<Static<typeof ProjectMember>[]>({
        ...Type.Array(ProjectMember, { maxItems: 256 }),
        description: 'Members and their roles.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['kind', 'name'],
      }),
    ),
    proxyCache: Type.Optional(ProxyCacheSpec),
    webhooks: Type.Optional(
      Type.Unsafe<Static<typeof WebhookSpec>[]>({
        ...Type.Array(WebhookSpec, { maxItems: 32 }),
        description: 'Webhook policies (docs/webhooks.md). Webhooks made by hand in the registry are left alone.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
    retention: Type.Optional(RetentionSpec),
    immutability: Type.Optional(ImmutabilitySpec),
    adopt: Type.Boolean({
      default: false,
      description: 'Take over a project that already exists in the registry and that no other object manages. Without it, an existing project is left alone and this object is Stalled.',
    }),
    deletionPolicy: StringEnum(['Retain', 'Delete'] as const, {
      default: 'Retain',
      description: 'What happens to the project in the registry when this object is deleted. Retain keeps the project and its content (and releases it); Delete removes both.',
    }),
  },
  {
    description: 'Desired state of a registry project.',
    'x-kubernetes-validations': [
      { rule: 'has(self.projectName) == has(oldSelf.projectName)', message: 'projectName cannot be added or removed after creation' },
    ],
  },
);

export const ProjectStatus = Type.Object(
  {
    ...StatusBase(),
    projectName: Type.Optional(Type.String({ description: 'Name of the project in the registry.' })),
    projectId: Type.Optional(Type.String({ description: 'Stable ID (UUID) of the project in the registry.' })),
    proxyCache: Type.Optional(
      Type.Object(
        {
          credentialsVersion: Type.Optional(
            Type.String({ description: 'uid/resourceVersion of the credentials Secret whose password the registry was last sent (the password is write-only; a new version sends it again).' }),
          ),
        },
        { description: 'What the operator last sent of the proxy-cache settings.' },
      ),
    ),
    usage: Type.Optional(
      Type.Object({
        storageBytes: Type.Optional(Type.Integer({ format: 'int64', description: 'Deduplicated bytes stored.' })),
        repositories: Type.Optional(Type.Integer({ format: 'int32', description: 'Number of repositories.' })),
      }),
    ),
  },
  { description: 'Observed state of the project.' },
);

export type ProjectSpec = Static<typeof ProjectSpec>;
export type ProjectStatus = Static<typeof ProjectStatus>;
