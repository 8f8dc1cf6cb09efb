import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge } from 'prom-client';
import { IdentityService } from '../auth/identities.js';
import { LoginThrottle } from '../auth/login-throttle.js';
import { LoginService } from '../auth/logins.js';
import { PasswordHasher } from '../auth/passwords.js';
import { ScryptPool } from '../auth/scrypt-pool.js';
import { loadSigningKey } from '../auth/signing-key.js';
import { TokenService } from '../auth/tokens.js';
import { VerifiedCredentials } from '../auth/verified-credentials.js';
import { defaultLoginConfig, type AuthConfig, type LoginConfig } from '../config.js';
import type { Metadata } from '../metadata/index.js';
import { AuditLog } from '../services/audit.js';

export interface AuthContext {
  config: AuthConfig;
  /** Absent when auth mode is `none`. */
  tokens?: TokenService;
  identities: IdentityService;
  /** Password logins (throttled); use this, not `identities.authenticate`, for credentials a client sent. */
  logins: LoginService;
  passwords: PasswordHasher;
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
async function bootstrapAdmin(meta: Metadata, config: AuthConfig, passwords: PasswordHasher, app: FastifyInstance): Promise<void> {
  const existing = await meta.users.get(ADMIN_USERNAME);
  if (config.adminPassword) {
    if (existing?.admin && (await passwords.verify(config.adminPassword, existing.passwordHash))) return;
    await meta.users.upsert(ADMIN_USERNAME, { passwordHash: await passwords.hash(config.adminPassword), admin: true });
    app.log.info({ user: ADMIN_USERNAME }, 'bootstrap admin password applied from configuration');
    return;
  }
  if (existing) return;
  const password = randomBytes(18).toString('base64url');
  await mkdir(dirname(config.adminPasswordFile), { recursive: true });
  await writeFile(config.adminPasswordFile, `${password}\n`, { mode: 0o600 });
  await chmod(config.adminPasswordFile, 0o600);
  await meta.users.upsert(ADMIN_USERNAME, { passwordHash: await passwords.hash(password), admin: true });
  app.log.warn({ user: ADMIN_USERNAME, passwordFile: config.adminPasswordFile }, 'created the bootstrap admin with a generated password; read it from the password file');
}

/** A client that signed in to an account is exempt from that account's failure limit this long. */
const KNOWN_CLIENT_MS = 24 * 3600 * 1000;
/** Keys each throttling table, and the cache of verified credentials, hold at most. */
const TABLE_CAPACITY = 50_000;

/** Hashing, the cache of verified credentials and throttling, with their metrics. */
function loginParts(app: FastifyInstance, config: LoginConfig) {
  const hashes = new Counter({ name: 'wharf_password_hashes_total', help: 'scrypt derivations finished (logins, decoys for failed logins, new passwords)', registers: [app.metrics] });
  const refusals = new Counter({ name: 'wharf_login_throttled_total', help: 'Logins refused with 429 before any verification, by the limit reached', labelNames: ['limit'], registers: [app.metrics] });
  for (const limit of ['client', 'account']) refusals.inc({ limit }, 0);
  const pool = new ScryptPool({ threads: config.hashThreads, maxQueue: config.hashQueue, nice: 10, onDerived: () => hashes.inc() });
  new Gauge({
    name: 'wharf_password_hash_queue',
    help: 'scrypt derivations running and waiting for a hashing thread',
    labelNames: ['state'],
    registers: [app.metrics],
    collect() {
      this.set({ state: 'running' }, pool.running);
      this.set({ state: 'waiting' }, pool.waiting);
    },
  });
  app.addHook('onClose', async () => pool.close());
  const passwords = new PasswordHasher((password, salt, params) => pool.derive(password, salt, params));
  const verified = new VerifiedCredentials({ ttlMs: config.cacheTtlSeconds * 1000, capacity: TABLE_CAPACITY });
  const throttle = new LoginThrottle({ perClient: config.perClient, perAccount: config.perAccount, knownClientMs: KNOWN_CLIENT_MS, capacity: TABLE_CAPACITY });
  const identities = new IdentityService(app.metadata, passwords, verified);
  return { passwords, identities, logins: new LoginService(identities, throttle, { refusalDelayMs: config.refusalDelaySeconds * 1000, onRefused: (limit) => refusals.inc({ limit }) }) };
}

export default fp<{ auth: AuthConfig }>(
  async function authPlugin(app: FastifyInstance, options) {
    const config = options.auth;
    const audit = new AuditLog(app.metadata.audit, app.log);
    app.addHook('onClose', async () => audit.close());
    const context: AuthContext = { config, ...loginParts(app, config.login ?? defaultLoginConfig()), audit };
    if (config.mode === 'token') {
      const { key, generated } = await loadSigningKey(config.tokenKeyFile, config.generateKey);
      if (generated) app.log.warn({ file: config.tokenKeyFile }, 'generated a token signing key; replicas must share one key, so configure WHARF_TOKEN_KEY_FILE for more than one replica');
      context.tokens = new TokenService(key, { issuer: config.issuer, service: config.service, ttlSeconds: config.tokenTtlSeconds, refreshTtlSeconds: 7 * 24 * 3600, leewaySeconds: 10 });
      await bootstrapAdmin(app.metadata, config, context.passwords, app);
      app.log.info({ alg: key.alg, kid: key.kid, service: config.service, ttlSeconds: config.tokenTtlSeconds }, 'token authentication on');
    } else {
      app.log.warn('authentication is off (auth mode "none"): anyone can push, pull and manage');
    }
    app.decorate('auth', context);
  },
  { name: 'wharf-auth', dependencies: ['wharf-metadata', 'wharf-metrics'] },
);
