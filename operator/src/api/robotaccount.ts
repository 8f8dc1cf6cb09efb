// The RobotAccount kind: a Harbor-style robot (machine identity) in a Registry, and where its pull
// secret goes. Names follow Harbor: robot$<project>+<name> for project robots, robot$<name> for
// system robots. Its controller is controllers/robot-account.ts (pull secrets: controllers/pull-secrets.ts).
import { Type, type Static } from '@sinclair/typebox';
import { PROJECT_NAME_PATTERN } from './project.js';
import { KObject, LabelSelector, ObjectName, RegistryReference, StatusBase, StringEnum } from './schema.js';

export const RobotResource = StringEnum(['repository', 'artifact', 'tag', 'artifact-label', 'member', 'robot', 'quota', 'project', 'audit-log', 'catalog'] as const, {
  description: 'Resource the permission applies to.',
});
export const RobotAction = StringEnum(['pull', 'push', 'delete', 'read', 'list', 'create', 'update'] as const, { description: 'Action on the resource.' });

export const RobotAccess = KObject(
  { resource: RobotResource, action: RobotAction },
  {
    'x-kubernetes-validations': [
      { rule: "!(self.action in ['pull', 'push']) || self.resource == 'repository'", message: 'pull and push apply only to the repository resource' },
    ],
  },
);

export const RobotPermission = Type.Object({
  project: Type.String({ minLength: 1, maxLength: 255, pattern: `(${PROJECT_NAME_PATTERN})|^\\*$`, description: "Project name, or '*' for every project (system robots only)." }),
  access: Type.Array(RobotAccess, { minItems: 1, maxItems: 32, description: 'Allowed resource/action pairs.' }),
});

export const PullSecretSpec = KObject(
  {
    secretName: Type.Optional(ObjectName('Name of the kubernetes.io/dockerconfigjson Secret in each target namespace. Default: <metadata.name>-pull.')),
    namespaces: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 63 }), { maxItems: 256, description: 'Target namespaces by name.' })),
    namespaceSelector: Type.Optional(LabelSelector('Target namespaces by label.')),
    serviceAccounts: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 32, description: 'ServiceAccounts in each target namespace that get the secret in imagePullSecrets.' }),
    ),
  },
  {
    description: 'Injects a pull secret for this robot into namespaces. It is removed when the robot is deleted.',
    'x-kubernetes-validations': [
      { rule: 'has(self.namespaces) || has(self.namespaceSelector)', message: 'pullSecret needs namespaces or a namespaceSelector', reason: 'FieldValueRequired' },
    ],
  },
);

export const RobotAccountSpec = KObject(
  {
    registryRef: RegistryReference(),
    level: StringEnum(['project', 'system'] as const, {
      default: 'project',
      description: 'project: bound to one project (robot$<project>+<name>). system: may hold permissions on several projects (robot$<name>).',
    }),
    project: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: PROJECT_NAME_PATTERN, description: 'The project of a project-level robot.' })),
    robotName: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: PROJECT_NAME_PATTERN, description: 'Robot name without prefix. Default: metadata.name.' })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    permissions: Type.Array(RobotPermission, { minItems: 1, maxItems: 64, description: 'What the robot may do.' }),
    expiresInDays: Type.Integer({ default: -1, minimum: -1, maximum: 3650, description: 'Validity in days from creation; -1 never expires.' }),
    disabled: Type.Boolean({ default: false, description: 'A disabled robot gets no new tokens.' }),
    rotation: Type.Optional(
      Type.Object(
        {
          intervalDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'Rotate the secret this often. Unset: only when the annotation wharf.dev/rotate changes.' })),
          graceSeconds: Type.Integer({
            default: 3600,
            minimum: 0,
            maximum: 604800,
            description:
              'How long the registry keeps accepting the replaced secret after a rotation, so that pods holding it keep pulling until every copy is updated. 0 cuts it off at once (a leaked secret).',
          }),
        },
        { description: 'Secret rotation. Setting the annotation wharf.dev/rotate to a new value rotates at once.' },
      ),
    ),
    secretName: Type.Optional(ObjectName('Secret in this namespace that receives the robot name and secret. Default: <metadata.name>-robot.')),
    pullSecret: Type.Optional(PullSecretSpec),
  },
  {
    description: 'Desired state of a robot account.',
    'x-kubernetes-validations': [
      { rule: "self.level == 'project' ? has(self.project) : !has(self.project)", message: 'project must be set for level project, and only for it', reason: 'FieldValueRequired' },
      {
        rule: "self.level == 'system' || self.permissions.all(p, p.project == self.project)",
        message: 'a project-level robot may only hold permissions on its own project',
        fieldPath: '.permissions',
      },
      { rule: 'self.expiresInDays != 0', message: 'expiresInDays must be -1 (never) or a positive number of days', fieldPath: '.expiresInDays' },
      {
        rule: '!has(self.rotation) || !has(self.rotation.intervalDays) || self.expiresInDays == -1 || self.rotation.intervalDays < self.expiresInDays',
        message: 'rotation.intervalDays must be shorter than expiresInDays',
        fieldPath: '.rotation.intervalDays',
      },
      { rule: 'self.level == oldSelf.level', message: 'level is immutable', fieldPath: '.level' },
    ],
  },
);

export const RobotAccountStatus = Type.Object(
  {
    ...StatusBase(),
    robotName: Type.Optional(Type.String({ description: 'Full robot name, e.g. robot$team-a+ci.' })),
    robotId: Type.Optional(Type.String({ description: 'Stable ID (UUID) in the registry.' })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the robot expires; unset for never.' })),
    secretName: Type.Optional(Type.String({ description: 'Secret holding the robot credentials.' })),
    lastRotationTime: Type.Optional(Type.String({ format: 'date-time', description: 'When the secret was last rotated.' })),
    pullSecretNamespaces: Type.Optional(Type.Integer({ format: 'int32', description: 'Namespaces holding the pull secret.' })),
  },
  { description: 'Observed state of the robot account.' },
);

export type RobotAccountSpec = Static<typeof RobotAccountSpec>;
export type RobotAccountStatus = Static<typeof RobotAccountStatus>;
