import { lifecycleSchemas } from './lifecycle-schemas.js';
import { Type, type TSchema } from '@sinclair/typebox';
import { ROLES } from '../../auth/policy.js';
import { DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS } from '../../services/robots.js';
import { PROXY_PROVIDERS } from '../../metadata/proxy-caches.js';
import { MAX_MANIFEST_TTL_SECONDS, MAX_MIRROR_HOSTS } from '../../proxy/settings.js';
import { Webhook, WebhookDelivery } from './webhook-schemas.js';
import { HTTP_URL_PATTERN } from './url-pattern.js';

export const ErrorBody = Type.Object(
  { errors: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), detail: Type.Optional(Type.Unknown()) })) },
  { $id: 'Error', description: 'Every error: the same shape as the OCI distribution API' },
);

/**
 * The largest integer the API takes: JSON numbers (and numbers parsed from query
 * strings) are exact only up to 2^53 - 1, so anything larger would reach the database
 * rounded. Columns are int8; every integer a request carries has explicit bounds (a
 * test checks the OpenAPI document), so out-of-range input is a 400, never a 500.
 */
export const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

/** Robot lifetimes: 100 years keeps the expiry date within every calendar the stack uses. */
export const MAX_ROBOT_DAYS = 36_500;

export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  after: Type.Optional(Type.String({ description: 'The `next` value of the previous page' })),
});

export const Page = <T extends TSchema>(item: T, id: string) => Type.Object({ items: Type.Array(item), next: Type.Optional(Type.String()) }, { $id: id });

const Timestamps = { createdAt: Type.String({ format: 'date-time' }), updatedAt: Type.String({ format: 'date-time' }) };

const ProxyProvider = Type.Union(PROXY_PROVIDERS.map((p) => Type.Literal(p)), { description: 'Kind of upstream; docker-hub maps single-segment names to library/' });
const MirrorOf = Type.Array(Type.String({ maxLength: 253 }), {
  maxItems: MAX_MIRROR_HOSTS,
  description: 'Upstream hosts this project mirrors for containerd (GET /v2/<name>/...?ns=<host>); docker.io also covers registry-1.docker.io and index.docker.io. A host is mirrored by one project at most.',
});
const ManifestTtl = Type.Integer({ minimum: 0, maximum: MAX_MANIFEST_TTL_SECONDS, description: 'Seconds a cached tag is served without asking the upstream; then one HEAD re-checks it. Default 300; 0 checks on every pull by tag.' });

export const ProxyCache = Type.Object(
  {
    provider: ProxyProvider,
    url: Type.String({ description: 'Upstream registry URL' }),
    username: Type.Optional(Type.String()),
    passwordSet: Type.Boolean({ description: 'Whether a password is stored; it is never returned' }),
    insecure: Type.Boolean({ description: 'TLS certificates of the upstream are not verified' }),
    mirrorOf: MirrorOf,
    manifestTTLSeconds: Type.Integer(),
  },
  { $id: 'ProxyCache', description: 'The upstream of a pull-through cache project; pushes into such a project are refused' },
);

export const ProxyCacheInput = Type.Object(
  {
    provider: ProxyProvider,
    url: Type.String({ maxLength: 2048, pattern: HTTP_URL_PATTERN, description: 'Upstream registry URL, http:// or https://' }),
    username: Type.Optional(Type.String({ maxLength: 256 })),
    password: Type.Optional(Type.String({ maxLength: 4096, description: 'Write-only; omitted keeps the stored one' })),
    insecure: Type.Optional(Type.Boolean({ description: 'Skip TLS verification of the upstream; default false' })),
    mirrorOf: Type.Optional(MirrorOf),
    manifestTTLSeconds: Type.Optional(ManifestTtl),
  },
  { additionalProperties: false },
);

export const Project = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    public: Type.Boolean(),
    storageLimit: Type.Integer({ description: 'Bytes; -1 for unlimited' }),
    usedBytes: Type.Integer(),
    repositories: Type.Integer({ description: 'Number of repositories' }),
    managedBy: Type.Union([Type.String(), Type.Null()], { description: 'Who manages the project declaratively (the operator writes its Project object here), or null' }),
    proxyCache: Type.Union([Type.Ref('ProxyCache'), Type.Null()], { description: 'The upstream of a proxy-cache project, or null' }),
    ...Timestamps,
  },
  { $id: 'Project' },
);

export const ProjectInput = Type.Object(
  {
    public: Type.Optional(Type.Boolean()),
    storageLimit: Type.Optional(Type.Integer({ minimum: -1, maximum: MAX_INTEGER, description: 'Bytes; -1 for unlimited. Only administrators may change it.' })),
    managedBy: Type.Optional(Type.String({ maxLength: 512, description: "Records who manages the project declaratively; '' clears it" })),
    proxyCache: Type.Optional(Type.Union([ProxyCacheInput, Type.Null()], { description: 'Makes the project a pull-through cache of an upstream registry (system administrators); null makes it an ordinary project again' })),
  },
  { additionalProperties: false },
);

export const Quota = Type.Object({ limitBytes: Type.Integer(), usedBytes: Type.Integer() }, { $id: 'Quota' });
export const QuotaInput = Type.Object({ limitBytes: Type.Integer({ minimum: -1, maximum: MAX_INTEGER, description: 'Bytes; -1 for unlimited' }) }, { additionalProperties: false });

export const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));

export const Member = Type.Object({ userId: Type.String({ format: 'uuid' }), username: Type.String(), role: Role }, { $id: 'Member' });
export const MemberInput = Type.Object({ role: Role }, { additionalProperties: false });
export const GroupMember = Type.Object({ group: Type.String(), role: Role }, { $id: 'GroupMember' });
export const DeleteProjectQuery = Type.Object({ deleteContent: Type.Optional(Type.Boolean({ default: false, description: 'Also delete every repository, artifact and tag in the project' })) });

export const RobotPermission = Type.Object(
  {
    namespace: Type.Optional(Type.String({ description: 'A project name, or * (system robots only). Defaults to the robot\'s project.' })),
    access: Type.Array(Type.Object({ resource: Type.String(), action: Type.String() }, { additionalProperties: false }), { maxItems: 32 }),
  },
  { additionalProperties: false },
);

export const Robot = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String({ description: 'robot$<project>+<name> or robot$<name>' }),
    project: Type.Union([Type.String(), Type.Null()]),
    description: Type.String(),
    disabled: Type.Boolean(),
    durationDays: Type.Integer({ description: '-1: never expires' }),
    expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    permissions: Type.Array(Type.Object({ namespace: Type.String(), access: Type.Array(Type.Object({ resource: Type.String(), action: Type.String() })) })),
    rotatedAt: Type.String({ format: 'date-time', description: 'When the current secret was set (creation or the last rotation)' }),
    graceEndsAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'Until when the secret replaced by the last rotation still authenticates (past: no longer); null when that rotation had no grace window',
    }),
    managedBy: Type.Union([Type.String(), Type.Null()], { description: 'Who manages the robot declaratively (the operator writes its RobotAccount object here), or null' }),
    ...Timestamps,
  },
  { $id: 'Robot' },
);

export const RobotInput = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    disabled: Type.Optional(Type.Boolean()),
    durationDays: Type.Optional(Type.Integer({ minimum: -1, maximum: MAX_ROBOT_DAYS, description: 'Days from creation; -1: never expires' })),
    permissions: Type.Array(RobotPermission, { maxItems: 64 }),
    managedBy: Type.Optional(Type.String({ maxLength: 512, description: "Records who manages the robot declaratively; '' clears it. Naming a manager while another one is recorded is a 409." })),
  },
  { additionalProperties: false },
);

export const RobotWithSecret = Type.Object({ robot: Type.Ref('Robot'), secret: Type.String({ description: 'Shown once' }) }, { $id: 'RobotWithSecret' });
export const RotateInput = Type.Object(
  {
    secret: Type.Optional(Type.String({ description: 'Set this secret instead of generating one' })),
    graceSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_ROTATION_GRACE_SECONDS,
        description: `How long the replaced secret keeps authenticating, so that every copy can be updated first (default ${DEFAULT_ROTATION_GRACE_SECONDS}); 0 cuts it off at once (a leaked secret). A secret replaced by an earlier rotation stops working now either way.`,
      }),
    ),
    keepPrevious: Type.Optional(
      Type.Boolean({
        description:
          "Replace only the current secret (it stops working at once) and leave the previous secret and its grace window as they are: for a caller that lost its last rotation's secret before storing it, while its copies still hold the one before. Not with graceSeconds.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const User = Type.Object({ id: Type.String({ format: 'uuid' }), username: Type.String(), admin: Type.Boolean(), ...Timestamps }, { $id: 'User' });
export const UserInput = Type.Object(
  {
    password: Type.Optional(Type.String({ maxLength: 256 })),
    currentPassword: Type.Optional(Type.String({ maxLength: 256, description: 'Required to change your own password' })),
    admin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const AuditRecord = Type.Object(
  {
    id: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    actor: Type.String(),
    action: Type.String(),
    resourceType: Type.String(),
    resource: Type.String(),
    project: Type.Optional(Type.String()),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    detail: Type.Optional(Type.Unknown()),
  },
  { $id: 'AuditRecord' },
);

export const AuditQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  before: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INTEGER, description: 'The `next` value of the previous page' })),
  actor: Type.Optional(Type.String()),
  action: Type.Optional(Type.String()),
  resourceType: Type.Optional(Type.String()),
  resource: Type.Optional(Type.String({ description: 'Exact resource, or a prefix ending in /' })),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
});

export const ProjectParams = Type.Object({ project: Type.String() });
export const ProjectUserParams = Type.Object({ project: Type.String(), username: Type.String() });
export const ProjectGroupParams = Type.Object({ project: Type.String(), group: Type.String() });
export const ProjectRobotParams = Type.Object({ project: Type.String(), robot: Type.String() });
export const RobotParams = Type.Object({ robot: Type.String() });
export const UserParams = Type.Object({ username: Type.String() });

/** Schemas referenced by `$ref` from routes; registered once with fastify. */
export const sharedSchemas = [ErrorBody, ProxyCache, Project, Quota, Member, GroupMember, Robot, RobotWithSecret, User, AuditRecord, Webhook, WebhookDelivery, ...lifecycleSchemas];

export const errorResponses = {
  400: Type.Ref('Error'),
  401: Type.Ref('Error'),
  403: Type.Ref('Error'),
  404: Type.Ref('Error'),
  409: Type.Ref('Error'),
  413: Type.Ref('Error'),
  415: Type.Ref('Error'),
};
