import type { FastifyRequest } from 'fastify';

export interface BasicCredentials {
  username: string;
  password: string;
}

/** The decoded bytes of `Authorization: Basic …`; undefined when the header is absent or another scheme. */
export function basicCredentialBytes(request: FastifyRequest): Buffer | undefined {
  const header = request.headers.authorization;
  if (!header || !/^basic /i.test(header)) return undefined;
  return Buffer.from(header.slice(6).trim(), 'base64');
}

/** Reads `Authorization: Basic …`; undefined when absent or malformed. */
export function basicCredentials(request: FastifyRequest): BasicCredentials | undefined {
  const decoded = basicCredentialBytes(request)?.toString('utf8');
  if (decoded === undefined) return undefined;
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header || !/^bearer /i.test(header)) return undefined;
  return header.slice(7).trim();
}
