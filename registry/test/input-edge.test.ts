import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN, basic, fetchToken, ManagementClient } from './support/auth.js';
import { blobOf, buildImage, OCI_CONFIG, OCI_MANIFEST, sha256, type Blob } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { rawRequest, type RawRequest, type RawResponse } from './support/raw-http.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from './support/registry.js';

/**
 * Input the database cannot take (NUL, lone surrogates, invalid UTF-8), numbers out of
 * range, and the smaller edges of issue 16: every one is a 4xx with a documented code,
 * never a 500, and nothing is written. Run on both metadata drivers.
 */

const PROJECT = 'edge';
const REPO = `${PROJECT}/app`;
const SERVICE = 'wharf-test';

interface LogLine {
  level: number;
  msg: string;
  err?: { message: string; stack: string };
  [key: string]: unknown;
}

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

interface Case {
  name: string;
  request: () => RawRequest;
  status: number;
  code: string;
  /** What must not exist afterwards: a path that answers 404 (nothing half-written). */
  absent?: () => RawRequest;
}

const json = (method: string, path: string, body: string, authorization = ADMIN): RawRequest => ({
  method,
  path,
  headers: { 'Content-Type': 'application/json', Authorization: authorization },
  body,
});
const form = (body: string, authorization?: string): RawRequest => ({
  method: 'POST',
  path: '/token',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(authorization && { Authorization: authorization }) },
  body,
});
/** Basic credentials from raw bytes, so the decoded text can be anything. */
const basicBytes = (bytes: Buffer) => `Basic ${bytes.toString('base64')}`;
const manifestWith = (config: Blob, fields: string) =>
  `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"${OCI_CONFIG}","digest":"${config.digest}","size":${config.size}},"layers":[]${fields}}`;

const backends = [
  { name: 'embedded PGlite', database: async () => undefined },
  { name: 'PostgreSQL', database: async () => createTestDatabase(inject('pgAdminUrl')) },
];

describe.each(backends)('input at the edge on $name', ({ database }) => {
  let registry: RunningRegistry;
  let api: ManagementClient;
  let bearer: string;
  /** For a repository that does not exist. */
  let bearerForNothing: string;
  let config: Blob;
  let subject: string;
  let logs: LogLine[];

  const send = (req: RawRequest) => rawRequest(registry.url, req);
  /** A /v2 request as the administrator. */
  const v2 = (method: string, path: string, extra: Partial<RawRequest> = {}): RawRequest => ({ method, path, ...extra, headers: { Authorization: bearer, ...extra.headers } });

  beforeAll(async () => {
    const capture = capturingLogger();
    logs = capture.lines;
    const databaseUrl = await database();
    registry = await startRegistry({ auth: tokenAuth(), logger: capture.logger, ...(databaseUrl && { databaseUrl }) });
    api = new ManagementClient(registry.url);
    await api.project(PROJECT);
    const token = await fetchToken(registry.url, [`repository:${REPO}:pull,push,delete`, 'registry:catalog:*'], { username: 'admin', password: TEST_ADMIN_PASSWORD });
    bearer = `Bearer ${token.token}`;
    bearerForNothing = `Bearer ${(await fetchToken(registry.url, [`repository:${PROJECT}/nothing:pull`], { username: 'admin', password: TEST_ADMIN_PASSWORD })).token}`;
    const image = await buildImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) {
      const res = await send(v2('POST', `/v2/${REPO}/blobs/uploads/?digest=${blob.digest}`, { headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data }));
      expect(res.status).toBe(201);
    }
    const pushed = await send(v2('PUT', `/v2/${REPO}/manifests/v1`, { headers: { 'Content-Type': OCI_MANIFEST }, body: image.manifest.data }));
    expect(pushed.status).toBe(201);
    config = image.config;
    subject = image.manifest.digest;
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  describe('text the database cannot store is refused once, at the edge (400)', () => {
    const cases: Case[] = [
      // /token: query, Basic credentials, the OAuth2 form.
      { name: '/token scope with a NUL (the reproducer)', request: () => ({ method: 'GET', path: `/token?service=${SERVICE}&scope=repository:a%00/b:pull` }), status: 400, code: 'INVALID_REQUEST' },
      { name: '/token account with a NUL', request: () => ({ method: 'GET', path: `/token?service=${SERVICE}&account=ad%00min` }), status: 400, code: 'INVALID_REQUEST' },
      { name: '/token Basic username with a NUL', request: () => ({ method: 'GET', path: `/token?service=${SERVICE}`, headers: { Authorization: basic('ad\u0000min', 'x') } }), status: 400, code: 'INVALID_REQUEST' },
      {
        name: '/token Basic password with a NUL',
        request: () => ({ method: 'GET', path: `/token?service=${SERVICE}`, headers: { Authorization: basic('admin', `${TEST_ADMIN_PASSWORD}\u0000`) } }),
        status: 400,
        code: 'INVALID_REQUEST',
      },
      {
        name: '/token Basic credentials that are not UTF-8',
        request: () => ({ method: 'GET', path: `/token?service=${SERVICE}`, headers: { Authorization: basicBytes(Buffer.from([0x61, 0xff, 0x3a, 0x62])) } }),
        status: 400,
        code: 'INVALID_REQUEST',
      },
      {
        name: '/token Basic credentials with an encoded surrogate',
        request: () => ({ method: 'GET', path: `/token?service=${SERVICE}`, headers: { Authorization: basicBytes(Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x3a, 0x62])) } }),
        status: 400,
        code: 'INVALID_REQUEST',
      },
      { name: 'POST /token username with a NUL', request: () => form('grant_type=password&username=ad%00min&password=x'), status: 400, code: 'INVALID_REQUEST' },
      { name: 'POST /token scope with a NUL', request: () => form(`grant_type=password&username=admin&password=${TEST_ADMIN_PASSWORD}&scope=repository%3Aedge%2Fa%00pp%3Apull`), status: 400, code: 'INVALID_REQUEST' },

      // /v2: path parameters answer with their own OCI code, everything else INVALID_REQUEST.
      { name: '/v2 tags/list last with a NUL', request: () => v2('GET', `/v2/${REPO}/tags/list?last=a%00`), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 catalog last with a NUL', request: () => v2('GET', '/v2/_catalog?last=%00'), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 referrers artifactType with a NUL', request: () => v2('GET', `/v2/${REPO}/referrers/${sha256('s')}?artifactType=a%00`), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 repository name with a NUL', request: () => v2('GET', `/v2/edge/a%00pp/tags/list`), status: 400, code: 'NAME_INVALID' },
      { name: '/v2 tag with a NUL', request: () => v2('GET', `/v2/${REPO}/manifests/v%001`), status: 400, code: 'TAG_INVALID' },
      { name: '/v2 tag that is not UTF-8', request: () => v2('GET', `/v2/${REPO}/manifests/v%ff`), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 tag with an encoded surrogate', request: () => v2('GET', `/v2/${REPO}/manifests/v%ed%a0%80`), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 repository name that is not UTF-8', request: () => v2('GET', '/v2/edge/a%ffpp/tags/list'), status: 400, code: 'NAME_INVALID' },
      { name: '/v2 blob digest with a NUL', request: () => v2('GET', `/v2/${REPO}/blobs/sha256:%00`), status: 400, code: 'DIGEST_INVALID' },
      {
        name: 'manifest with a NUL in an annotation is not stored',
        request: () => v2('PUT', `/v2/${REPO}/manifests/nul-annotation`, { headers: { 'Content-Type': OCI_MANIFEST }, body: manifestWith(config, ',"annotations":{"a":"x\\u0000y"}') }),
        status: 400,
        code: 'MANIFEST_INVALID',
        absent: () => v2('GET', `/v2/${REPO}/manifests/nul-annotation`),
      },
      {
        name: 'manifest with a lone surrogate in artifactType is not stored',
        request: () => v2('PUT', `/v2/${REPO}/manifests/surrogate`, { headers: { 'Content-Type': OCI_MANIFEST }, body: manifestWith(config, ',"artifactType":"application/x\\ud800"') }),
        status: 400,
        code: 'MANIFEST_INVALID',
        absent: () => v2('GET', `/v2/${REPO}/manifests/surrogate`),
      },

      // /api/v1: path, query, Basic credentials and JSON body fields (values, keys, nested).
      { name: 'API list cursor with a NUL', request: () => ({ method: 'GET', path: '/api/v1/projects?after=%00', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'API audit filter with a NUL', request: () => ({ method: 'GET', path: '/api/v1/audit?actor=a%00', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'API audit resource prefix with a NUL', request: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/audit?action=%00`, headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'API path parameter with a NUL', request: () => ({ method: 'GET', path: '/api/v1/users/a%00b', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'API path parameter that is not UTF-8', request: () => ({ method: 'GET', path: '/api/v1/users/a%ffb', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'API Basic username with a NUL', request: () => ({ method: 'GET', path: '/api/v1/projects', headers: { Authorization: basic('ad\u0000min', 'x') } }), status: 400, code: 'INVALID_REQUEST' },
      {
        name: 'API JSON string field with a NUL is not stored',
        request: () => json('PUT', `/api/v1/projects/${PROJECT}/robots/nul`, '{"description":"a\\u0000b","permissions":[]}'),
        status: 400,
        code: 'INVALID_REQUEST',
        absent: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/robots/nul`, headers: { Authorization: ADMIN } }),
      },
      {
        name: 'API JSON string field with a lone surrogate is not stored',
        request: () => json('PUT', `/api/v1/projects/${PROJECT}/robots/surrogate`, '{"description":"\\ud83d","permissions":[]}'),
        status: 400,
        code: 'INVALID_REQUEST',
        absent: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/robots/surrogate`, headers: { Authorization: ADMIN } }),
      },
      {
        name: 'API nested JSON string with a NUL',
        request: () => json('PUT', `/api/v1/projects/${PROJECT}/robots/nested`, '{"permissions":[{"namespace":"\\u0000","access":[{"resource":"repository","action":"pull"}]}]}'),
        status: 400,
        code: 'INVALID_REQUEST',
        absent: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/robots/nested`, headers: { Authorization: ADMIN } }),
      },
      {
        name: 'API password with a NUL is not stored',
        request: () => json('PUT', '/api/v1/users/carol', '{"password":"0123456789ab\\u0000"}'),
        status: 400,
        code: 'INVALID_REQUEST',
        absent: () => ({ method: 'GET', path: '/api/v1/users/carol', headers: { Authorization: ADMIN } }),
      },
      {
        name: 'API body nested 100,000 deep with a NUL at the bottom',
        request: () => json('PUT', `/api/v1/projects/${PROJECT}`, `{"public":${'['.repeat(100_000)}"\\u0000"${']'.repeat(100_000)}}`),
        status: 400,
        code: 'INVALID_REQUEST',
      },
      { name: 'API JSON key with a NUL', request: () => json('PUT', `/api/v1/projects/${PROJECT}`, '{"public":false,"a\\u0000":1}'), status: 400, code: 'INVALID_REQUEST' },
    ];

    it.each(cases)('$name → $status $code', async (c) => {
      const res = await send(c.request());
      expectError(res, c.status, c.code);
      if (c.absent) expect((await send(c.absent())).status).toBe(404);
    });

    it('says where the text was, once, before any other check', async () => {
      const body = await send(json('PUT', `/api/v1/projects/${PROJECT}/robots/nested`, '{"permissions":[{"namespace":"ok","access":[{"resource":"repository","action":"pu\\u0000ll"}]}]}'));
      expectError(body, 400, 'INVALID_REQUEST');
      expect(body.json()).toMatchObject({ errors: [{ detail: { in: 'body field', where: 'permissions[0].access[0].action' } }] });
      const query = await send(v2('GET', `/v2/${REPO}/tags/list?n=1&last=%00`));
      expect(query.json()).toMatchObject({ errors: [{ message: expect.stringContaining('query parameter last'), detail: { in: 'query parameter', where: 'last' } }] });
      // Refused before authentication: no login is attempted, so nothing is audited for it.
      const anonymous = await send({ method: 'GET', path: '/api/v1/projects', headers: { Authorization: basic('nobody\u0000', 'x') } });
      expectError(anonymous, 400, 'INVALID_REQUEST');
      const audit = await api.ok('GET', '/audit?action=login&limit=500');
      expect(audit.items.filter((r: { actor: string }) => r.actor.startsWith('nobody'))).toEqual([]);
    });

    it('the audit store writes what the edge never lets in, rather than holding back every later record', async () => {
      const audit = registry.app.metadata.audit;
      await audit.append([
        { actor: 'inside\u0000job', action: 'login', resourceType: 'api', resource: '/x\ud800', outcome: 'failure', detail: { reason: 'n\u0000l', nested: ['\udc00'] } },
        { actor: 'next-in-batch', action: 'login', resourceType: 'api', resource: '/y', outcome: 'failure' },
      ]);
      const [record] = await audit.query({ actor: 'inside\ufffdjob', limit: 1 });
      expect(record).toMatchObject({ resource: '/x\ufffd', detail: { reason: 'n\ufffdl', nested: ['\ufffd'] } });
      expect(await audit.query({ actor: 'next-in-batch', limit: 1 })).toHaveLength(1);
    });

    it('accepts well-formed text beyond ASCII (a surrogate pair, latin1 in a header) where it is valid', async () => {
      const robot = await api.call('PUT', `/projects/${PROJECT}/robots/emoji`, { description: 'ship it 🚢 — ünïcödé', permissions: [] });
      expect(robot.status).toBe(201);
      expect(robot.body.robot.description).toBe('ship it 🚢 — ünïcödé');
      const audit = await send({ method: 'GET', path: `/api/v1/audit?actor=${encodeURIComponent('🚢')}`, headers: { Authorization: ADMIN } });
      expect(audit.status).toBe(200);
    });
  });

  describe('64-bit sizes and numeric bounds', () => {
    it('stores a storage limit above 2 GiB and reads it back exactly', async () => {
      const created = await api.call('PUT', '/projects/big', { storageLimit: 10737418240 });
      expect(created).toMatchObject({ status: 201, body: { storageLimit: 10737418240 } });
      expect(await api.ok('GET', '/projects/big')).toMatchObject({ storageLimit: 10737418240, usedBytes: 0 });
      // 50 GiB, the operator example's quota, through the quota endpoint.
      expect(await api.ok('PUT', '/projects/big/quota', { limitBytes: 53687091200 })).toEqual({ limitBytes: 53687091200, usedBytes: 0 });
      expect(await api.ok('GET', '/projects/big/quota')).toEqual({ limitBytes: 53687091200, usedBytes: 0 });
      // An update that changes only the limit, to the largest exact JSON integer.
      expect(await api.ok('PUT', '/projects/big', { storageLimit: Number.MAX_SAFE_INTEGER })).toMatchObject({ storageLimit: Number.MAX_SAFE_INTEGER });
    });

    it('a limit above 2 GiB is enforced on push like any other', async () => {
      await api.ok('PUT', `/projects/${PROJECT}/quota`, { limitBytes: 3 * 1024 ** 3 });
      const blob = blobOf('fits easily under three GiB');
      const res = await send(v2('POST', `/v2/${REPO}/blobs/uploads/?digest=${blob.digest}`, { headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data }));
      expect(res.status).toBe(201);
      const quota = await api.ok('GET', `/projects/${PROJECT}/quota`);
      expect(quota.limitBytes).toBe(3 * 1024 ** 3);
      expect(quota.usedBytes).toBeGreaterThan(0);
      await api.ok('PUT', `/projects/${PROJECT}/quota`, { limitBytes: -1 });
    });

    const outOfRange: Case[] = [
      { name: 'audit cursor beyond 64 bits (the reproducer)', request: () => ({ method: 'GET', path: '/api/v1/audit?before=99999999999999999999', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'audit cursor beyond 2^53', request: () => ({ method: 'GET', path: '/api/v1/audit?before=9007199254740993', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'project audit cursor beyond 64 bits', request: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/audit?before=99999999999999999999`, headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'negative audit cursor', request: () => ({ method: 'GET', path: '/api/v1/audit?before=-5', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'page size beyond 64 bits', request: () => ({ method: 'GET', path: '/api/v1/projects?limit=99999999999999999999', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'audit date that does not exist', request: () => ({ method: 'GET', path: '/api/v1/audit?since=2023-02-31T00:00:00Z', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'audit date on a leap second (valid RFC 3339, not representable)', request: () => ({ method: 'GET', path: '/api/v1/audit?since=2016-12-31T23:59:60Z', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'audit date beyond the calendar', request: () => ({ method: 'GET', path: '/api/v1/audit?until=2023-13-01T25:61:00Z', headers: { Authorization: ADMIN } }), status: 400, code: 'INVALID_REQUEST' },
      { name: 'storage limit of 2^63', request: () => json('PUT', '/api/v1/projects/huge', '{"storageLimit":9223372036854775808}'), status: 400, code: 'INVALID_REQUEST', absent: () => ({ method: 'GET', path: '/api/v1/projects/huge', headers: { Authorization: ADMIN } }) },
      { name: 'storage limit beyond exact JSON integers', request: () => json('PUT', '/api/v1/projects/huge', '{"storageLimit":9007199254740993}'), status: 400, code: 'INVALID_REQUEST' },
      { name: 'storage limit of 1e300', request: () => json('PUT', '/api/v1/projects/huge', '{"storageLimit":1e300}'), status: 400, code: 'INVALID_REQUEST' },
      { name: 'quota of 2^63', request: () => json('PUT', `/api/v1/projects/${PROJECT}/quota`, '{"limitBytes":9223372036854775808}'), status: 400, code: 'INVALID_REQUEST' },
      {
        name: 'robot duration beyond 32 bits',
        request: () => json('PUT', `/api/v1/projects/${PROJECT}/robots/forever`, '{"durationDays":99999999999,"permissions":[]}'),
        status: 400,
        code: 'INVALID_REQUEST',
        absent: () => ({ method: 'GET', path: `/api/v1/projects/${PROJECT}/robots/forever`, headers: { Authorization: ADMIN } }),
      },
      { name: 'robot duration past the calendar', request: () => json('PUT', `/api/v1/projects/${PROJECT}/robots/forever`, '{"durationDays":2147483647,"permissions":[]}'), status: 400, code: 'INVALID_REQUEST' },
      { name: '/v2 page size beyond 64 bits', request: () => v2('GET', `/v2/${REPO}/tags/list?n=99999999999999999999`), status: 400, code: 'PAGINATION_INVALID' },
    ];

    it.each(outOfRange)('$name → $status $code', async (c) => {
      const res = await send(c.request());
      expectError(res, c.status, c.code);
      if (c.absent) expect((await send(c.absent())).status).toBe(404);
    });

    it('takes audit dates across the whole calendar the format allows', async () => {
      for (const date of ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999+14:00']) {
        const res = await send({ method: 'GET', path: `/api/v1/audit?since=${encodeURIComponent(date)}&limit=1`, headers: { Authorization: ADMIN } });
        expect(res.status, res.body.toString()).toBe(200);
      }
    });

    it('bounds every integer a management request takes (the OpenAPI document says so)', async () => {
      const openapi = (await (await fetch(`${registry.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
      const unbounded: string[] = [];
      let integers = 0;
      const visit = (schema: any, where: string): void => {
        if (!schema || typeof schema !== 'object') return;
        if (schema.$ref) return visit(openapi.components.schemas[String(schema.$ref).split('/').pop()!], where);
        if (schema.type === 'integer') {
          integers++;
          if (!(typeof schema.minimum === 'number' && typeof schema.maximum === 'number' && schema.maximum <= Number.MAX_SAFE_INTEGER)) unbounded.push(where);
        }
        for (const [key, child] of Object.entries(schema.properties ?? {})) visit(child, `${where}.${key}`);
        for (const child of [schema.items, ...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) visit(child, where);
      };
      for (const [path, operations] of Object.entries(openapi.paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          for (const parameter of operation.parameters ?? []) visit(parameter.schema, `${method.toUpperCase()} ${path} ${parameter.in}:${parameter.name}`);
          visit(operation.requestBody?.content?.['application/json']?.schema, `${method.toUpperCase()} ${path} body`);
        }
      }
      expect(unbounded).toEqual([]);
      // The walk saw the integers it is about: limits, cursors, quotas and durations.
      expect(integers).toBeGreaterThanOrEqual(8);
    });

    it('refuses a query number too large to be finite (1e999, which ajv coerces to Infinity) with 400, on every list', async () => {
      for (const path of ['/projects?limit=1e999', '/projects?limit=-1e999', `/projects/${PROJECT}/robots?limit=1e999`, '/users?limit=1e999', '/audit?limit=1e999', `/projects/${PROJECT}/webhooks?limit=1e999`]) {
        const res = await api.call('GET', path);
        expect(res.status, path).toBe(400);
        expect(res.body.errors[0], path).toMatchObject({ code: 'INVALID_REQUEST', message: 'query parameter limit must be a finite number' });
      }
      expect((await api.call('GET', '/projects?limit=2')).status).toBe(200);
    });

    it('keeps a robot duration that fits, and its expiry', async () => {
      const robot = await api.call('PUT', `/projects/${PROJECT}/robots/decade`, { durationDays: 3650, permissions: [] });
      expect(robot.status).toBe(201);
      expect(robot.body.robot.durationDays).toBe(3650);
      expect(new Date(robot.body.robot.expiresAt).getUTCFullYear()).toBeGreaterThanOrEqual(new Date().getUTCFullYear() + 9);
    });
  });

  describe('smaller edges', () => {
    it('answers an oversized management body with 413 and a management-API error', async () => {
      const res = await send(json('PUT', `/api/v1/projects/${PROJECT}`, JSON.stringify({ public: false, padding: 'x'.repeat(2 * 1024 * 1024) })));
      expectError(res, 413, 'REQUEST_TOO_LARGE');
      expect(res.json<{ errors: { message: string }[] }>().errors[0]!.message).toMatch(/1 MiB/);
    });

    it('answers an oversized token form with 413 REQUEST_TOO_LARGE', async () => {
      expectError(await send(form(`grant_type=password&username=admin&password=${'x'.repeat(2 * 1024 * 1024)}`)), 413, 'REQUEST_TOO_LARGE');
    });

    it('still answers an oversized manifest with 413 MANIFEST_TOO_LARGE', async () => {
      const res = await send(v2('PUT', `/v2/${REPO}/manifests/huge`, { headers: { 'Content-Type': OCI_MANIFEST }, body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) }));
      expectError(res, 413, 'MANIFEST_TOO_LARGE');
    });

    // RFC 9110: 415 is a body "in a format not supported by this method on the target resource"
    // (distribution answers 400 MANIFEST_INVALID; zot 415). It was 405, the code for a method.
    it.each(['application/x-not-a-manifest', 'foo', 'a/b/c', ''])('answers a manifest PUT with the Content-Type %j with 415', async (contentType) => {
      const res = await send(v2('PUT', `/v2/${REPO}/manifests/odd`, { headers: { 'Content-Type': contentType }, body: '{"schemaVersion":2}' }));
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect((await send(v2('GET', `/v2/${REPO}/manifests/odd`))).status).toBe(404);
    });

    it('answers a management body in a media type it does not take with 415, and an empty JSON body with 400', async () => {
      expectError(await send({ method: 'PUT', path: `/api/v1/projects/${PROJECT}`, headers: { Authorization: ADMIN, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'public=true' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expectError(await send({ method: 'PUT', path: `/api/v1/projects/${PROJECT}`, headers: { Authorization: ADMIN, 'Content-Type': 'application/json' }, body: '' }), 400, 'INVALID_REQUEST');
    });

    it('answers an oversized header block with the 431 reason phrase', async () => {
      const head = await rawStatusLine(registry.url, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(head).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    });

    it.each(['demo/../x', 'Demo/x', 'demo//x', '../etc', `${'a'.repeat(256)}`])('refuses a token scope on the invalid repository name %s', async (name) => {
      const res = await send({ method: 'GET', path: `/token?service=${SERVICE}&scope=${encodeURIComponent(`repository:${name}:pull`)}`, headers: { Authorization: ADMIN } });
      expectError(res, 400, 'NAME_INVALID');
    });

    it('refuses an invalid scope before it checks any password (no login is attempted or audited)', async () => {
      const res = await send({ method: 'GET', path: `/token?service=${SERVICE}&scope=${encodeURIComponent('repository:demo/../x:pull')}`, headers: { Authorization: basic('scope-prober', 'wrong') } });
      expectError(res, 400, 'NAME_INVALID');
      const posted = await send(form(`grant_type=password&username=scope-prober&password=wrong&scope=${encodeURIComponent('repository:demo/../x:pull')}`));
      expectError(posted, 400, 'NAME_INVALID');
      expect((await api.ok('GET', '/audit?actor=scope-prober&limit=10')).items).toEqual([]);
    });

    it('still grants scopes on valid names beside the catalog', async () => {
      const res = await fetchToken(registry.url, [`repository:${REPO}:pull`, 'registry:catalog:*'], { username: 'admin', password: TEST_ADMIN_PASSWORD });
      expect(res.status).toBe(200);
    });
  });

  describe('reads of a reference that cannot exist', () => {
    it.each(['GET', 'HEAD', 'DELETE'])('%s of .INVALID_MANIFEST_NAME is 404 MANIFEST_UNKNOWN', async (method) => {
      const res = await send(v2(method, `/v2/${REPO}/manifests/.INVALID_MANIFEST_NAME`));
      expect(res.status).toBe(404);
      if (method !== 'HEAD') expect(res.code).toBe('MANIFEST_UNKNOWN');
    });

    it('a reference longer than the router takes is unknown to reads and invalid to a PUT', async () => {
      const long = 'a'.repeat(2000);
      expectError(await send(v2('GET', `/v2/${REPO}/manifests/${long}`)), 404, 'MANIFEST_UNKNOWN');
      expect((await send(v2('HEAD', `/v2/${REPO}/manifests/${long}`))).status).toBe(404);
      expectError(await send(v2('PUT', `/v2/${REPO}/manifests/${long}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: manifestWith(config, '') })), 400, 'TAG_INVALID');
      expectError(await send(v2('GET', `/v2/${REPO}/blobs/sha256:${'a'.repeat(2000)}`)), 400, 'DIGEST_INVALID');
      expectError(await send({ method: 'GET', path: `/api/v1/users/${long}`, headers: { Authorization: ADMIN } }), 400, 'INVALID_REQUEST');
    });

    it('GET of a malformed digest reference is 404 MANIFEST_UNKNOWN', async () => {
      expectError(await send(v2('GET', `/v2/${REPO}/manifests/sha256:short`)), 404, 'MANIFEST_UNKNOWN');
    });

    it('in a repository that does not exist it is 404 NAME_UNKNOWN', async () => {
      expectError(await send(v2('GET', `/v2/${PROJECT}/nothing/manifests/.INVALID_MANIFEST_NAME`, { headers: { Authorization: bearerForNothing } })), 404, 'NAME_UNKNOWN');
    });

    it('PUT of it stays 400 TAG_INVALID', async () => {
      const res = await send(v2('PUT', `/v2/${REPO}/manifests/.INVALID_MANIFEST_NAME`, { headers: { 'Content-Type': OCI_MANIFEST }, body: manifestWith(config, '') }));
      expectError(res, 400, 'TAG_INVALID');
    });
  });

  describe('server errors are logged at error level with their cause', () => {
    it('on a request with a JSON body (it was "request aborted by client" at info)', async () => {
      const projects = registry.app.metadata.projects;
      const original = projects.upsert.bind(projects);
      projects.upsert = async () => {
        throw new Error('upsert failed', { cause: new Error('disk on fire') });
      };
      try {
        const res = await send(json('PUT', '/api/v1/projects/boom', '{"public":true}'));
        expectError(res, 500, 'INTERNAL');
      } finally {
        projects.upsert = original;
      }
      const line = logs.find((l) => l.url === undefined && l.err?.message.includes('upsert failed'));
      expect(line, JSON.stringify(logs.filter((l) => l.level >= 30).slice(-5))).toMatchObject({ level: 50, msg: 'request failed', code: 'INTERNAL' });
      expect(line!.err!.message).toContain('disk on fire');
      expect(logs.some((l) => l.msg === 'request aborted by client')).toBe(false);
    });

    it('on a request without a body', async () => {
      const projects = registry.app.metadata.projects;
      const original = projects.get.bind(projects);
      projects.get = async () => {
        throw new Error('lookup failed');
      };
      try {
        expectError(await send({ method: 'GET', path: `/api/v1/projects/${PROJECT}`, headers: { Authorization: ADMIN } }), 500, 'INTERNAL');
      } finally {
        projects.get = original;
      }
      expect(logs.find((l) => l.err?.message === 'lookup failed')).toMatchObject({ level: 50, msg: 'request failed' });
    });
  });

});

function expectError(res: RawResponse, status: number, code: string): void {
  const text = res.body.toString('utf8').slice(0, 500);
  expect({ status: res.status, code: res.code }, text).toEqual({ status, code });
  const body = res.json<{ errors: { code: string; message: string }[] }>();
  expect(body.errors[0]!.message.length, text).toBeGreaterThan(0);
}

/** Sends `request` over a bare socket and returns the response's status line. */
function rawStatusLine(base: string, request: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => socket.end(request));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received.split('\r\n', 1)[0]!));
  });
}
