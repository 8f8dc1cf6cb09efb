// The one sentence a request that failed its schema gets, from the errors ajv reports for it (real ajv, the API's own schemas).
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ProjectInput } from '../../src/http/management/schemas.js';
import { describeSchemaErrors, type SchemaError } from '../../src/http/validation-message.js';

const ajv = new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true });
const validate = ajv.compile(ProjectInput);

function message(body: unknown): string {
  expect(validate(body)).toBe(false);
  return describeSchemaErrors(validate.errors as SchemaError[], 'body');
}

describe('describeSchemaErrors', () => {
  it('names the allowed values of a field once, and leaves out the other branches of a nullable object', () => {
    expect(message({ proxyCache: { provider: 'nope', url: 'http://x' } })).toBe(
      'body/proxyCache/provider must be one of: "docker-hub", "docker-registry", "harbor", "wharf", "ghcr", "quay", "gcr", "ecr", "acr"',
    );
  });

  it('says what is wrong inside the object, not that it is not null', () => {
    expect(message({ proxyCache: { provider: 'docker-hub', url: 'http://x', manifestTTLSeconds: -5 } })).toBe('body/proxyCache/manifestTTLSeconds must be >= 0');
    expect(message({ proxyCache: { provider: 'docker-hub' } })).toBe("body/proxyCache must have required property 'url'");
  });

  it('names every type a value may have when it has none of them', () => {
    expect(message({ proxyCache: 5 })).toBe('body/proxyCache must be object or null');
  });

  it('says in words what the URL pattern asks for', () => {
    expect(message({ proxyCache: { provider: 'docker-hub', url: 'ftp://x' } })).toBe('body/proxyCache/url must be an http:// or https:// URL');
  });

  it('keeps errors that are not about a union', () => {
    expect(message({ public: 'maybe' })).toBe('body/public must be boolean');
    expect(message({ extra: 1 })).toBe('body must NOT have additional properties');
  });
});
