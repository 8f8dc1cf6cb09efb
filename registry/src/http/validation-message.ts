import { HTTP_URL_PATTERN } from './management/url-pattern.js';

/** Patterns a reader cannot be asked to decode, in words. */
const PATTERNS_IN_WORDS: Record<string, string> = { [HTTP_URL_PATTERN]: 'must be an http:// or https:// URL' };

/** What fastify hands a schema error formatter: ajv's error objects. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * One readable sentence for a request that failed its schema. ajv reports every branch
 * of a union: a field that must be one of nine literals gave nine "must be equal to
 * constant", and a nullable object whose field was wrong added "must be null" and "must
 * match a schema in anyOf" for the object itself. Here the literals of one field become
 * "must be one of: …", the types of one value "must be A or B", and a branch's complaint about a value's type or constant is
 * dropped when another branch got further (an error inside the value, or another kind of
 * error about it): that one says what is wrong.
 */
export function describeSchemaErrors(errors: readonly SchemaError[], dataVar: string): string {
  const allowed = new Map<string, unknown[]>();
  const types = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword === 'const') allowed.set(e.instancePath, [...(allowed.get(e.instancePath) ?? []), e.params['allowedValue']]);
    if (e.keyword === 'type') types.set(e.instancePath, [...(types.get(e.instancePath) ?? []), e.params['type']]);
  }
  const branchComplaint = (e: SchemaError) => e.keyword === 'type' || e.keyword === 'const' || e.keyword === 'anyOf';
  const gotFurther = (e: SchemaError) => errors.some((o) => o.instancePath.startsWith(`${e.instancePath}/`) || (o.instancePath === e.instancePath && !branchComplaint(o)));
  const sentences = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'anyOf' || (branchComplaint(e) && gotFurther(e))) continue;
    const where = `${dataVar}${e.instancePath}`;
    const values = allowed.get(e.instancePath);
    const kinds = types.get(e.instancePath);
    if (e.keyword === 'const' && values && values.length > 1) sentences.add(`${where} must be one of: ${values.map((v) => JSON.stringify(v)).join(', ')}`);
    else if (e.keyword === 'type' && kinds && kinds.length > 1) sentences.add(`${where} must be ${kinds.join(' or ')}`);
    else if (e.keyword === 'pattern' && PATTERNS_IN_WORDS[String(e.params['pattern'])]) sentences.add(`${where} ${PATTERNS_IN_WORDS[String(e.params['pattern'])]}`);
    else sentences.add(`${where} ${e.message ?? `fails ${e.keyword}`}`);
  }
  if (sentences.size === 0) for (const e of errors) sentences.add(`${dataVar}${e.instancePath} ${e.message ?? `fails ${e.keyword}`}`);
  return [...sentences].join(', ');
}
