import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { IdentityService } from '../auth/identities.js';
import { hashPassword, verifyPassword } from '../auth/passwords.js';
import { loadSigningKey } from '../auth/signing-key.js';
import { TokenService } from '../auth/tokens.js';
import type { AuthConfig } from '../config.js';
import type { Metadata } from '../metadata/index.js';
import { AuditLog } from '../services/audit.js';

export interface AuthContext {
  config: AuthConfig;
  /** Absent when auth mode is `none`. */
  tokens?: TokenService;
  identities: IdentityService;
  audit: AuditLog;
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: AuthContext;
  }
}

export const ADMIN_USERNAME = 'admin';

/**
 * Makes sure the bootstrap admin exists. A configured password is the source of truth
 * and is applied on every start; otherwise a random one is generated once and written
 * (0600) next to the data, and the log says where.
 */
async function bootstrapAdmin(meta: Metadata, config: AuthConfig, app: FastifyInstance): Promise<void> {
  const existing = await meta.users.get(ADMIN_USERNAME);
  if (config.adminPassword) {
    if (existing?.admin && (await verifyPassword(config.adminPassword, existing.passwordHash))) return;
    await meta.users.upsert(ADMIN_USERNAME, { passwordHash: await hashPassword(config.adminPassword), admin: true });
    app.log.info({ user: ADMIN_USERNAME }, 'bootstrap admin password applied from configuration');
    return;
  }
  if (existing) return;
  const password = randomBytes(18).toString('base64url');
  await mkdir(dirname(config.adminPasswordFile), { recursive: true });
  await writeFile(config.adminPasswordFile, `${password}\n`, { mode: 0o600 });
  await chmod(config.adminPasswordFile, 0o600);
  await meta.users.upsert(ADMIN_USERNAME, { passwordHash: await hashPassword(password), admin: true });
  app.log.warn({ user: ADMIN_USERNAME, passwordFile: config.adminPasswordFile }, 'created the bootstrap admin with a generated password; read it from the password file');
}

export default fp<{ auth: AuthConfig }>(
  async function authPlugin(app: FastifyInstance, options) {
    const config = options.auth;
    const audit = new AuditLog(app.metadata.audit, app.log);
    app.addHook('onClose', async () => audit.close());
    const context: AuthContext = { config, identities: new IdentityService(app.metadata), audit };
    if (config.mode === 'token') {
      const { key, generated } = await loadSigningKey(config.tokenKeyFile, config.generateKey);
      if (generated) app.log.warn({ file: config.tokenKeyFile }, 'generated a token signing key; replicas must share one key, so configure WHARF_TOKEN_KEY_FILE for more than one replica');
      context.tokens = new TokenService(key, { issuer: config.issuer, service: config.service, ttlSeconds: config.tokenTtlSeconds, refreshTtlSeconds: 7 * 24 * 3600, leewaySeconds: 10 });
      await bootstrapAdmin(app.metadata, config, app);
      app.log.info({ alg: key.alg, kid: key.kid, service: config.service, ttlSeconds: config.tokenTtlSeconds }, 'token authentication on');
    } else {
      app.log.warn('authentication is off (auth mode "none"): anyone can push, pull and manage');
    }
    app.decorate('auth', context);
  },
  { name: 'wharf-auth', dependencies: ['wharf-metadata'] },
);
