import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Access } from './scopes.js';
import type { SigningKey } from './signing-key.js';

export interface TokenSettings {
  issuer: string;
  service: string;
  /** Access-token lifetime; short, so a disabled robot loses access quickly. */
  ttlSeconds: number;
  refreshTtlSeconds: number;
  /** Clock skew tolerated on exp/nbf. */
  leewaySeconds: number;
}

export interface AccessClaims {
  sub: string;
  access: Access[];
  exp: number;
}

export class InvalidTokenError extends Error {
  readonly code = 'INVALID_TOKEN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidTokenError';
  }
}

const REFRESH_TYPE = 'refresh';

/** Issues and verifies the registry's JWTs (distribution token spec), signed with one key. */
export class TokenService {
  /** Verified tokens, so each /v2 request does not repeat the signature check. */
  private readonly verified = new Map<string, AccessClaims>();

  constructor(
    private readonly key: SigningKey,
    readonly settings: TokenSettings,
  ) {}

  private async sign(subject: string, ttlSeconds: number, claims: Record<string, unknown>): Promise<{ token: string; issuedAt: number }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: this.key.alg, kid: this.key.kid, typ: 'JWT' })
      .setIssuer(this.settings.issuer)
      .setSubject(subject)
      .setAudience(this.settings.service)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
    return { token, issuedAt: now };
  }

  async issueAccessToken(subject: string, access: Access[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const { token, issuedAt } = await this.sign(subject, this.settings.ttlSeconds, { access });
    return { token, expiresIn: this.settings.ttlSeconds, issuedAt: new Date(issuedAt * 1000) };
  }

  async issueRefreshToken(subject: string): Promise<string> {
    return (await this.sign(subject, this.settings.refreshTtlSeconds, { typ: REFRESH_TYPE })).token;
  }

  private async verify(token: string): Promise<Record<string, unknown>> {
    try {
      const { payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: [this.key.alg],
        issuer: this.settings.issuer,
        audience: this.settings.service,
        clockTolerance: this.settings.leewaySeconds,
        requiredClaims: ['exp', 'nbf', 'iat', 'sub'],
      });
      return payload;
    } catch (err) {
      const reason = err instanceof joseErrors.JOSEError ? err.code : 'malformed';
      throw new InvalidTokenError(`token rejected: ${reason}`, { cause: err });
    }
  }

  /** Verifies an access token: signature, algorithm, iss, aud, exp/nbf; refresh tokens are refused. */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    const cached = this.verified.get(token);
    if (cached && cached.exp + this.settings.leewaySeconds > Date.now() / 1000) return cached;
    const payload = await this.verify(token);
    if (payload.typ === REFRESH_TYPE) throw new InvalidTokenError('token rejected: a refresh token is not an access token');
    const claims: AccessClaims = { sub: String(payload.sub), access: parseAccess(payload.access), exp: Number(payload.exp) };
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.set(token, claims);
    return claims;
  }

  async verifyRefreshToken(token: string): Promise<string> {
    const payload = await this.verify(token);
    if (payload.typ !== REFRESH_TYPE) throw new InvalidTokenError('token rejected: not a refresh token');
    return String(payload.sub);
  }
}

function parseAccess(value: unknown): Access[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (a): a is Access =>
      typeof a === 'object' && a !== null && (a.type === 'repository' || a.type === 'registry') && typeof a.name === 'string' && Array.isArray(a.actions) && a.actions.every((x: unknown) => typeof x === 'string'),
  );
}
