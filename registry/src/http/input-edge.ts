import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ociError, type ErrorName, type RegistryError } from '../oci/errors.js';
import { findUnstorableText } from '../storable-text.js';
import { basicCredentialBytes } from './credentials.js';

/**
 * On /v2 every path parameter is one of the distribution-spec's placeholders, and each
 * has its own error code; text that cannot be stored gets the same answer there as any
 * other malformed value. Everything else is INVALID_REQUEST.
 */
const DISTRIBUTION_PARAMETER_CODES: Record<string, ErrorName> = { name: 'NAME_INVALID', reference: 'TAG_INVALID', digest: 'DIGEST_INVALID' };

type Place = 'path parameter' | 'query parameter' | 'body field' | 'Basic credentials';

function unstorable(request: FastifyRequest, place: Place, where: string): RegistryError {
  const code = place === 'path parameter' && request.url.startsWith('/v2/') ? (DISTRIBUTION_PARAMETER_CODES[where] ?? 'INVALID_REQUEST') : 'INVALID_REQUEST';
  const message =
    place === 'Basic credentials'
      ? 'the Basic credentials must be UTF-8 text without NUL characters'
      : `${place} ${where} contains a NUL character or a lone UTF-16 surrogate, which cannot be stored`;
  return ociError(code, { in: place, where }, { message });
}

/**
 * Refuses, before any hook or handler runs, every request that carries text the
 * database cannot store (see storable-text.ts): in path parameters, query parameters,
 * Basic credentials and parsed bodies (JSON, forms). One check for every route,
 * including routes added later; manifests, whose bodies are kept as bytes, are checked
 * where they are parsed.
 */
async function inputEdge(app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (request) => {
    const param = findUnstorableText(request.params);
    if (param !== undefined) throw unstorable(request, 'path parameter', param);
    const query = findUnstorableText(request.query);
    if (query !== undefined) throw unstorable(request, 'query parameter', query);
    const credentials = basicCredentialBytes(request);
    // Decoded bytes are checked rather than the decoded string: invalid UTF-8 would decode to U+FFFD.
    if (credentials && (!isUtf8(credentials) || credentials.includes(0))) throw unstorable(request, 'Basic credentials', 'authorization');
  });

  app.addHook('preValidation', async (request) => {
    const field = findUnstorableText(request.body);
    if (field !== undefined) throw unstorable(request, 'body field', field);
  });

  // ajv coerces a query value such as "1e999" to Infinity and then lets it past `maximum`
  // (ajv 8.20): checked here, after validation, for every route.
  app.addHook('preHandler', async (request) => {
    const field = nonFiniteNumber(request.query);
    if (field !== undefined) throw ociError('INVALID_REQUEST', { in: 'query parameter', where: field }, { message: `query parameter ${field} must be a finite number` });
  });
}

/** The name of a parameter whose value (or one of whose values) is a number that is not finite. */
function nonFiniteNumber(query: unknown): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) if (typeof one === 'number' && !Number.isFinite(one)) return name;
  }
  return undefined;
}

export default fp(inputEdge, { name: 'wharf-input-edge' });
