import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { managementApiTypes } from '../../src/registry-client/generate-types.js';
import { managementOpenApiDocument, openApiText } from '../../../registry/src/openapi-document.js';
import { REGISTRY_VERSION } from '../../../registry/src/version.js';

// The operator's management-API types are generated from the registry's OpenAPI document;
// `make api-client` regenerates both files. These fail when either committed copy is stale.
describe('generated management-API client types', () => {
  it('registry/openapi.json is what the registry serves at /api/v1/openapi.json', async () => {
    const committed = await readFile('registry/openapi.json', 'utf8');
    expect(openApiText(await managementOpenApiDocument()), 'run `make api-client`').toBe(committed);
  });

  it('operator/src/registry-client/schema.ts is generated from registry/openapi.json', async () => {
    const committed = await readFile('operator/src/registry-client/schema.ts', 'utf8');
    expect(await managementApiTypes(await readFile('registry/openapi.json', 'utf8')), 'run `make api-client`').toBe(committed);
  });

  it("the registry's reported version is package.json's", async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(REGISTRY_VERSION).toBe(pkg.version);
  });
});
