import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';

export interface TokenSettings {
  issuer: string;
  service: string;
}

const b64 = (x: unknown) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/**
 * Bearer tokens the registry must refuse wherever it reads one: made without its key,
 * or with its key but no longer (or not yet, or not here) valid, or of the wrong kind.
 * Each grants the administrator everything it names, so acceptance would show.
 */
export async function forgeTokens(options: {
  keyFile: string;
  settings: TokenSettings;
  repositories: string[];
  /** A genuine access token of an ordinary user (for the swapped-payload forgery). */
  userToken: string;
  /** A genuine refresh token (not an access token). */
  refreshToken: string;
}): Promise<Map<string, string>> {
  const registryKey = createPrivateKey(await readFile(options.keyFile, 'utf8'));
  const registryPublic = createPublicKey(registryKey);
  const kid = await calculateJwkThumbprint(await exportJWK(registryPublic), 'sha256');
  const { privateKey: otherKey, publicKey: otherPublic } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Math.floor(Date.now() / 1000);
  const access = [...options.repositories.map((name) => ({ type: 'repository', name, actions: ['*', 'pull', 'push', 'delete'] })), { type: 'registry', name: 'catalog', actions: ['*'] }];
  const claims = { iss: options.settings.issuer, aud: options.settings.service, sub: 'admin', iat: now, nbf: now, exp: now + 3600, jti: 'forged', access };

  const sign = (key: KeyObject, payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header }).sign(key);
  const [userHeader, , userSignature] = options.userToken.split('.');
  const hs256Header = b64({ alg: 'HS256', kid, typ: 'JWT' });
  const hs256Body = b64(claims);
  const publicPem = registryPublic.export({ type: 'spki', format: 'pem' }) as string;

  return new Map<string, string>([
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
    ['signed by another key under the registry key id', await sign(otherKey, claims)],
    ['HS256 keyed with the registry public key', `${hs256Header}.${hs256Body}.${createHmac('sha256', publicPem).update(`${hs256Header}.${hs256Body}`).digest('base64url')}`],
    ['admin claims under a user token signature', `${userHeader}.${b64(claims)}.${userSignature}`],
    ['attacker key embedded in the header', await sign(otherKey, claims, { jwk: await exportJWK(otherPublic) })],
    ['key id naming a file', await sign(otherKey, claims, { kid: '../../../../dev/null' })],
    ['expired an hour ago (registry key)', await sign(registryKey, { ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 })],
    ['valid only from an hour on (registry key)', await sign(registryKey, { ...claims, nbf: now + 3600 })],
    ['for another audience (registry key)', await sign(registryKey, { ...claims, aud: 'another-registry' })],
    ['from another issuer (registry key)', await sign(registryKey, { ...claims, iss: 'another-issuer' })],
    ['without exp (registry key)', await sign(registryKey, { ...claims, exp: undefined })],
    ['a refresh token', options.refreshToken],
    ['a truncated signature', options.userToken.slice(0, -6)],
    ['not a JWT', 'not-a-token'],
    ['empty segments', '..'],
  ]);
}
