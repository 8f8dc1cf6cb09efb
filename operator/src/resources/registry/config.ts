// The registry's configuration file (registry/CONFIG.md), rendered into the ConfigMap. It is the
// only source of the settings it holds: the image sets no WHARF_* variable but WHARF_CONFIG_FILE
// (its defaults are a file at the same path, which this one replaces), and the Deployment sets
// none for a key this file holds (a unit test holds both to it): the environment would win.
// Secrets never go here: they reach the pod as files or secretKeyRef env vars.
import { dump } from 'js-yaml';
import { endpoints } from './endpoints.js';
import { CONTAINER_PORT, DATA_DIR, DATABASE_CA_DIR, DATABASE_CA_FILE, TOKEN_DIR, TOKEN_KEY_FILE, type Registry } from './model.js';

export function renderConfigFile(reg: Registry): string {
  const { spec } = reg;
  const ep = endpoints(reg);
  const storage =
    spec.storage.type === 's3'
      ? {
          driver: 's3',
          s3: {
            ...(spec.storage.s3!.endpoint ? { endpoint: spec.storage.s3!.endpoint } : {}),
            bucket: spec.storage.s3!.bucket,
            region: spec.storage.s3!.region,
            forcePathStyle: spec.storage.s3!.forcePathStyle,
            redirect: spec.storage.s3!.redirect,
          },
        }
      : { driver: 'filesystem', filesystem: { dir: `${DATA_DIR}/blobs` } };
  const ca = spec.database.external?.caSecretRef ?? spec.database.external?.caConfigMapRef;
  const config = {
    addr: `0.0.0.0:${CONTAINER_PORT}`,
    dataDir: DATA_DIR,
    logLevel: spec.logLevel,
    // The DSN is a secret (an env var); only the CA's path is configuration.
    ...(ca ? { database: { caFile: `${DATABASE_CA_DIR}/${DATABASE_CA_FILE}` } } : {}),
    storage,
    auth: {
      service: ep.service,
      ...(ep.realm ? { realm: ep.realm } : {}),
      tokenKeyFile: `${TOKEN_DIR}/${TOKEN_KEY_FILE}`,
    },
  };
  return dump(config, { lineWidth: -1, noRefs: true });
}
