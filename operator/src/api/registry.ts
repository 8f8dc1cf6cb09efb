// The Registry kind: one Wharf registry deployment and its dependencies.
//
// Dependencies follow the Quay operator's component model: each is either managed by the operator
// (embedded database on the data volume, filesystem blobs on the data volume) or external, reached
// through a Secret reference (PostgreSQL DSN, S3 credentials). CEL rules reject combinations that
// cannot work, e.g. several replicas sharing an embedded single-writer database.
import { Type, type Static } from '@sinclair/typebox';
import { Affinity, Toleration } from './scheduling.js';
import { MIRROR_HOST_PATTERN, OPTIONAL_PORT_PATTERN } from '../node-agent/hosts-toml.js';
import { ConfigMapKeySelector, KObject, ObjectName, Quantity, ResourceRequirements, SecretKeySelector, StatusBase, StringEnum, StringMap } from './schema.js';

export const DatabaseSpec = KObject(
  {
    type: StringEnum(['embedded', 'external'] as const, {
      default: 'embedded',
      description: 'embedded: PGlite on the data volume (one replica only). external: a PostgreSQL server reached through a DSN in a Secret.',
    }),
    external: Type.Optional(
      KObject(
        {
          secretRef: SecretKeySelector('dsn', 'Secret key holding the PostgreSQL DSN, e.g. postgres://user:pass@host:5432/wharf?sslmode=verify-full. In the pg driver, sslmode=require also verifies the certificate and host name (see the operator README).'),
          caSecretRef: Type.Optional(SecretKeySelector('ca.crt', 'Secret key holding the PEM CA that signs the PostgreSQL server certificate (e.g. CloudNativePG\'s <cluster>-ca). Mounted into the pods; the registry trusts it for the database connection.')),
          caConfigMapRef: Type.Optional(ConfigMapKeySelector('ca.crt', 'ConfigMap key holding the PEM CA that signs the PostgreSQL server certificate. Mounted into the pods; the registry trusts it for the database connection.')),
        },
        {
          description: 'Settings for type: external.',
          'x-kubernetes-validations': [{ rule: '!(has(self.caSecretRef) && has(self.caConfigMapRef))', message: 'set database.external.caSecretRef or caConfigMapRef, not both', reason: 'FieldValueForbidden' }],
        },
      ),
    ),
  },
  {
    default: { type: 'embedded' },
    description: 'Where the registry keeps its metadata.',
    'x-kubernetes-validations': [
      { rule: "self.type == 'external' ? has(self.external) : !has(self.external)", message: 'database.external must be set when, and only when, database.type is external', reason: 'FieldValueRequired' },
      { rule: 'self.type == oldSelf.type', message: 'database.type is immutable: the metadata would be left behind; create a new Registry and replicate instead' },
    ],
  },
);

export const S3Spec = Type.Object(
  {
    endpoint: Type.Optional(Type.String({ format: 'uri', maxLength: 2048, pattern: '^https?://', description: "S3 endpoint URL (MinIO, Ceph RGW). Unset: AWS's endpoint for the region." })),
    bucket: Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9.-]*[a-z0-9]$', description: 'Bucket name.' }),
    region: Type.String({ default: 'us-east-1', minLength: 1, maxLength: 64, description: 'Region.' }),
    forcePathStyle: Type.Boolean({ default: true, description: 'Path-style addressing (needed by most S3-compatible servers).' }),
    redirect: Type.Boolean({ default: false, description: 'Answer blob GETs with a redirect to a presigned S3 URL (clients must reach the endpoint).' }),
    secretRef: Type.Optional(Type.Object(
      {
        name: ObjectName('Name of the Secret in the same namespace.'),
        accessKeyIDKey: Type.String({ default: 'accessKeyID', minLength: 1, maxLength: 253, description: 'Key holding the access key ID.' }),
        secretAccessKeyKey: Type.String({ default: 'secretAccessKey', minLength: 1, maxLength: 253, description: 'Key holding the secret access key.' }),
      },
      { description: 'Secret holding the S3 credentials. Unset: the AWS default credential chain (e.g. IAM roles for service accounts).' },
    )),
  },
  { description: 'Settings for type: s3.' },
);

export const StorageSpec = KObject(
  {
    type: StringEnum(['filesystem', 's3'] as const, {
      default: 'filesystem',
      description: 'filesystem: blobs on the data volume (one replica only). s3: an S3-compatible bucket.',
    }),
    s3: Type.Optional(S3Spec),
  },
  {
    default: { type: 'filesystem' },
    description: 'Where the registry keeps blobs.',
    'x-kubernetes-validations': [
      { rule: "self.type == 's3' ? has(self.s3) : !has(self.s3)", message: 'storage.s3 must be set when, and only when, storage.type is s3', reason: 'FieldValueRequired' },
      { rule: 'self.type == oldSelf.type', message: 'storage.type is immutable: the blobs would be left behind; create a new Registry and replicate instead' },
    ],
  },
);

export const PersistenceSpec = Type.Object(
  {
    size: Quantity({ default: '10Gi', description: 'Size of the data volume.' }),
    storageClassName: Type.Optional(Type.String({ maxLength: 253, description: 'StorageClass of the data volume; the cluster default when unset.' })),
    reclaimPolicy: StringEnum(['Retain', 'Delete'] as const, {
      default: 'Retain',
      description:
        'What happens to the data volume (blobs and the embedded database) when the Registry is deleted. Retain: the PVC stays, without an owner, and a Registry of the same name in this namespace takes it over. Delete: the PVC is owned by the Registry and garbage-collected with it.',
    }),
  },
  {
    default: { size: '10Gi', reclaimPolicy: 'Retain' },
    description: 'The data volume (a PVC), used when the database is embedded or the storage is filesystem.',
  },
);

export const ServiceSpec = Type.Object(
  {
    type: StringEnum(['ClusterIP', 'NodePort', 'LoadBalancer'] as const, { default: 'ClusterIP', description: 'Service type.' }),
    port: Type.Integer({ default: 5000, minimum: 1, maximum: 65535, description: 'Service port.' }),
    annotations: Type.Optional(StringMap({ description: 'Extra annotations on the Service.' })),
  },
  { default: { type: 'ClusterIP', port: 5000 }, description: 'The Service in front of the registry pods.' },
);

export const IngressSpec = KObject(
  {
    enabled: Type.Boolean({ default: false, description: 'Create an Ingress.' }),
    host: Type.Optional(Type.String({ format: 'hostname', maxLength: 253, description: 'Public host name; it is also the token service name and realm host.' })),
    className: Type.Optional(Type.String({ maxLength: 253, description: 'IngressClass name.' })),
    tlsSecretName: Type.Optional(ObjectName('TLS Secret for the host; clients then use https.')),
    annotations: Type.Optional(StringMap({ description: 'Extra annotations on the Ingress (e.g. proxy body size).' })),
  },
  {
    default: { enabled: false },
    description: 'An optional Ingress.',
    'x-kubernetes-validations': [{ rule: '!self.enabled || has(self.host)', message: 'ingress.host is required when ingress.enabled is true', reason: 'FieldValueRequired' }],
  },
);

export const AuthSpec = Type.Object(
  {
    service: Type.Optional(Type.String({ maxLength: 253, description: 'Token service name (JWT aud). Default: the ingress host, or the in-cluster service host.' })),
    realm: Type.Optional(Type.String({ format: 'uri', maxLength: 2048, description: 'Token endpoint URL given to clients. Default: <ingress URL>/token with an Ingress; otherwise the URL each client reached the registry at, plus /token.' })),
  },
  { default: {}, description: 'Token authentication. The operator generates the admin password and the token signing key once and keeps them.' },
);

export const ExternalSpec = Type.Object(
  {
    url: Type.String({ format: 'uri', maxLength: 2048, pattern: '^https?://', description: 'Base URL of the Wharf registry, e.g. https://registry.example.com.' }),
    credentialsSecretRef: Type.Object(
      {
        name: ObjectName('Name of the Secret in the same namespace.'),
        usernameKey: Type.String({ default: 'username', minLength: 1, maxLength: 253, description: 'Key holding the administrator user name.' }),
        passwordKey: Type.String({ default: 'password', minLength: 1, maxLength: 253, description: 'Key holding the password.' }),
      },
      { description: "Secret with a registry administrator's credentials; the operator manages content with them." },
    ),
    insecure: Type.Boolean({ default: false, description: 'Accept any TLS certificate (self-signed test registries).' }),
  },
  { description: 'A Wharf registry that runs elsewhere (a VM, another cluster). The operator deploys nothing and manages only its content.' },
);

/** An absolute path on a node, without control characters (a newline would name another directory). */
const NODE_PATH_PATTERN = '^/[^\\x00-\\x1f\\x7f]*$';

export const NodeMirrorSpec = KObject(
  {
    enabled: Type.Boolean({ default: false, description: "Run the node agent on the nodes: it writes containerd's hosts.toml so that the mirrored hosts' pulls go through this registry. Turning it off removes the files again before the agent goes." }),
    hosts: Type.Optional(
      Type.Unsafe<string[]>({
        ...Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: MIRROR_HOST_PATTERN }), { maxItems: 64 }),
        description: 'Upstream hosts the nodes send to this registry. Default: the mirrorOf of every Project in this namespace that references this Registry and has a proxyCache.',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    configPath: Type.String({
      default: '/etc/containerd/certs.d',
      minLength: 2,
      maxLength: 1024,
      pattern: NODE_PATH_PATTERN,
      description: "containerd's config_path on the nodes (the CRI plugin's registry.config_path).",
      'x-kubernetes-validations': [{ rule: "!self.matches('(^|/)[.][.]?(/|$)')", message: 'configPath must be a clean absolute path, without . or .. segments', reason: 'FieldValueInvalid' }],
    }),
    mode: StringEnum(['replace', 'prepend'] as const, {
      default: 'replace',
      description: "What happens to a hosts.toml the agent did not write: replace sets it aside (restored on removal); prepend does the same and keeps its [host] entries after this registry's.",
    }),
    endpoint: Type.Optional(
      Type.String({ format: 'uri', maxLength: 2048, pattern: '^https?://[^/@]+(/|$)', description: "URL the nodes' containerd reaches this registry at (no credentials: it is written into every node's hosts.toml), e.g. http://<node IP>:30500 (a NodePort) or https://registry.example.com. Default: http://<the Service's ClusterIP>:<port>." }),
    ),
    caFiles: Type.Optional(Type.Array(Type.String({ minLength: 2, maxLength: 1024, pattern: NODE_PATH_PATTERN }), { maxItems: 8, description: "CA files on the nodes that sign the endpoint's certificate (hosts.toml ca)." })),
    skipVerify: Type.Boolean({ default: false, description: "Skip TLS verification of the endpoint (hosts.toml skip_verify; test setups only)." }),
    nodeSelector: Type.Optional(StringMap({ description: 'Nodes the agent runs on (default: every node).' })),
    tolerations: Type.Optional(Type.Array(Toleration, { maxItems: 32, description: 'Tolerations of the agent pods, e.g. for control-plane nodes.' })),
  },
  {
    description: "Transparent mirroring on the nodes: a DaemonSet (the node agent) that writes containerd's <configPath>/<host>/hosts.toml for each mirrored host.",
    'x-kubernetes-validations': [{ rule: '!(has(self.caFiles) && self.skipVerify)', message: 'set nodeMirror.caFiles or skipVerify, not both', reason: 'FieldValueForbidden' }],
  },
);

/** Fields that describe a deployment; an external Registry may not set them (defaults are allowed). */
const EXTERNAL_EXCLUDES =
  "!has(self.image) && !has(self.imagePullPolicy) && !has(self.imagePullSecrets) && !has(self.resources) && !has(self.serviceAccountName) && !has(self.podAnnotations) && !has(self.nodeSelector) && !has(self.tolerations) && !has(self.affinity) && self.replicas == 1 && self.database.type == 'embedded' && self.storage.type == 'filesystem' && !self.ingress.enabled && !has(self.persistence.storageClassName) && self.persistence.size == '10Gi' && !has(self.auth.service) && !has(self.auth.realm) && !has(self.nodeMirror)";

export const RegistrySpec = KObject(
  {
    external: Type.Optional(ExternalSpec),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Registry image. Default: the image the operator was built with.' })),
    imagePullPolicy: Type.Optional(StringEnum(['Always', 'IfNotPresent', 'Never'] as const, { description: 'Image pull policy.' })),
    imagePullSecrets: Type.Optional(Type.Array(Type.Object({ name: ObjectName('Secret name.') }), { maxItems: 16, description: 'Pull secrets for the registry image.' })),
    replicas: Type.Integer({ default: 1, minimum: 0, maximum: 100, format: 'int32', description: 'Number of registry pods. More than 1 needs an external database and S3 storage.' }),
    logLevel: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const, { default: 'info', description: 'Log level.' }),
    resources: Type.Optional(ResourceRequirements()),
    database: DatabaseSpec,
    storage: StorageSpec,
    persistence: PersistenceSpec,
    service: ServiceSpec,
    ingress: IngressSpec,
    auth: AuthSpec,
    serviceAccountName: Type.Optional(ObjectName('ServiceAccount the registry pods run as, e.g. one annotated for IAM roles for service accounts (IRSA) or workload identity to reach S3. Default: the namespace\'s default ServiceAccount.')),
    podAnnotations: Type.Optional(StringMap({ description: 'Extra annotations on the registry pods (e.g. for a service mesh or workload identity); wharf.dev/config-hash is the operator\'s.' })),
    nodeSelector: Type.Optional(StringMap({ description: 'Node selector for the registry pods.' })),
    tolerations: Type.Optional(Type.Array(Toleration, { maxItems: 32, description: 'Tolerations of the registry pods.' })),
    affinity: Type.Optional(Affinity),
    nodeMirror: Type.Optional(NodeMirrorSpec),
    pullHosts: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 261, pattern: `^[A-Za-z0-9.-]+${OPTIONAL_PORT_PATTERN}$` }), {
        maxItems: 16,
        description:
          "Further host[:port] names clients pull this registry's images by, such as a NodePort address the nodes use (<node IP>:30500) or a name a node's hosts.toml maps; the RobotAccounts' pull secrets cover them besides the Service and Ingress hosts.",
      }),
    ),
  },
  {
    description: 'Desired state of a Wharf registry.',
    'x-kubernetes-validations': [
      {
        rule: "self.replicas <= 1 || (self.database.type == 'external' && self.storage.type == 's3')",
        message: 'replicas > 1 requires database.type external and storage.type s3: the embedded database and filesystem storage live on a single-writer volume',
        fieldPath: '.replicas',
      },
      {
        rule: `!has(self.external) || (${EXTERNAL_EXCLUDES})`,
        message:
          'an external Registry deploys nothing: remove image, imagePullPolicy, imagePullSecrets, replicas, resources, serviceAccountName, podAnnotations, nodeSelector, tolerations, affinity, database, storage, persistence, ingress, auth and nodeMirror',
        fieldPath: '.external',
      },
      { rule: 'has(self.external) == has(oldSelf.external)', message: 'external cannot be added or removed after creation: create a new Registry instead', fieldPath: '.external' },
    ],
  },
);

export const RegistryStatus = Type.Object(
  {
    ...StatusBase(),
    endpoint: Type.Optional(Type.String({ description: 'In-cluster URL of the registry.' })),
    externalEndpoint: Type.Optional(Type.String({ description: 'Public URL when an Ingress is enabled.' })),
    image: Type.Optional(Type.String({ description: 'Image the pods run.' })),
    version: Type.Optional(Type.String({ description: 'Registry version (the image tag).' })),
    replicas: Type.Optional(Type.Integer({ format: 'int32', description: 'Pods of the registry Deployment.' })),
    readyReplicas: Type.Optional(Type.Integer({ format: 'int32', description: 'Ready pods.' })),
    updatedReplicas: Type.Optional(Type.Integer({ format: 'int32', description: 'Pods running the latest pod template.' })),
    configHash: Type.Optional(Type.String({ description: 'Checksum of the rendered registry configuration.' })),
    adminSecretName: Type.Optional(Type.String({ description: 'Secret holding the admin username and password.' })),
    external: Type.Optional(Type.Boolean({ description: 'True for an external registry: the operator deploys nothing.' })),
    nodeMirror: Type.Optional(
      Type.Object(
        {
          hosts: Type.Array(Type.String(), { description: 'Upstream hosts the nodes send to this registry.' }),
          endpoint: Type.Optional(Type.String({ description: 'URL the nodes reach this registry at.' })),
          nodesDesired: Type.Integer({ format: 'int32', description: 'Nodes that should run the node agent (the DaemonSet\'s desiredNumberScheduled).' }),
          nodesConfigured: Type.Integer({ format: 'int32', description: 'Nodes whose agent runs the current configuration and is ready (updated and ready pods of the DaemonSet).' }),
          removing: Type.Optional(Type.Boolean({ description: 'True while the agent removes the files from the nodes (nodeMirror turned off, or the Registry deleted).' })),
        },
        { description: 'The node agent.' },
      ),
    ),
  },
  { description: 'Observed state of the registry.' },
);

export type RegistrySpec = Static<typeof RegistrySpec>;
export type RegistryStatus = Static<typeof RegistryStatus>;
