import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { type BodySpec, type Credentials, type FuzzCase, Ref, RawNumber } from './case.js';
import type { JsonSchema, RouteSpec } from './routes.js';
import { encodeUrlPart, headerValue, hostileString, numberText, spliced, type UrlEncoding } from './strings.js';

/** What exists in the registry under test, so that generated requests also reach past the 404s. */
export interface Vocabulary {
  /** The token service name (`service=`). */
  service: string;
  projects: string[];
  repositories: string[];
  tags: string[];
  /** Digests of stored manifests and blobs. */
  digests: string[];
  /** Stored blobs with their bytes (valid upload bodies). */
  blobs: { digest: string; data: Buffer }[];
  /** Stored manifests with their bytes and media type (valid manifest bodies). */
  manifests: { digest: string; data: Buffer; mediaType: string }[];
  uploadIds: string[];
  usernames: string[];
  /** Short names of project robots (`ci`) and full names (`robot$team+ci`). */
  robots: string[];
  gcIds: string[];
  /** Labels of forged tokens (forgery.ts). */
  forgeries: string[];
}

/**
 * How hostile a generated request is. A request with every field hostile is refused at
 * its first check and never reaches the code behind it, so the cases mix: `calm`
 * requests are valid throughout (yet carry the large numbers and odd names the API
 * allows), `tweaked` ones have now and then one field gone wrong, `hostile` ones have
 * many; only hostile cases take paths that have no route, or unknown methods.
 */
export type Level = 'calm' | 'tweaked' | 'hostile';
const MIX: Record<Level, [valid: number, spliced: number, hostile: number]> = { calm: [1, 0, 0], tweaked: [30, 1, 1], hostile: [10, 2, 2] };

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
const VALID_TYPES = ['application/json', 'application/octet-stream', 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.empty.v1+json', 'application/vnd.example.signature'];
const ODD_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x',
  'application/json; charset=utf-16', 'application/json; charset=latin1', '*/*', '', ';', 'application/', '/json',
];

/** Headers the HTTP client sets itself and refuses to take from the caller. */
const CLIENT_MANAGED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'content-length', 'te', 'trailer', 'proxy-connection']);

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
/** A number as JSON text when the text is a JSON number (huge ones included); a string of that text otherwise. */
const numberValue: fc.Arbitrary<unknown> = numberText.map((t) => (JSON_NUMBER.test(t) ? new RawNumber(t) : t));
/** Valid integers a 64-bit API must take: past int4, past 2^32, quotas of 10 and 50 GiB, the largest safe integer. */
const LARGE_INTEGERS = [2147483647, 2147483648, 4294967296, 10737418240, 53687091200, 1099511627776, Number.MAX_SAFE_INTEGER];
/** Integers still valid where a schema sets no maximum, but past what 64 bits hold: they must be refused with a 400. */
const HUGE_INTEGERS = ['9223372036854775807', '9223372036854775808', '18446744073709551616', '99999999999999999999'];

const nameComponent = fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,6}){0,2}$/);
const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });

function forLevel(v: Vocabulary, level: Level) {
  const calm = level === 'calm';
  const [validWeight, splicedWeight, hostileWeight] = MIX[level];
  /** `valid` at this level's odds; otherwise spliced with something hostile, or wholly hostile. */
  const mostly = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> =>
    calm ? valid : fc.oneof({ arbitrary: valid, weight: validWeight }, { arbitrary: spliced(valid), weight: splicedWeight }, { arbitrary: hostileString, weight: hostileWeight });
  /** `valid`, or at the wilder levels sometimes `odd` (a value of the right shape that should still be refused). */
  const or = <T>(valid: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => (calm ? valid : fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: odd, weight: 1 }));
  /** Names of things that exist, mostly: past the 404s is where the code is. */
  const known = <T>(fixtures: readonly T[], other: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constantFrom(...fixtures), weight: 3 }, { arbitrary: other, weight: 1 });

  const project = mostly(known(v.projects, nameComponent));
  const validName = fc.oneof(
    { arbitrary: fc.constantFrom(...v.repositories), weight: 4 },
    { arbitrary: fc.tuple(fc.constantFrom(...v.projects), nameComponent).map(([p, c]) => `${p}/${c}`), weight: 2 },
    { arbitrary: fc.array(nameComponent, { minLength: 1, maxLength: 4 }).map((c) => c.join('/')), weight: 1 },
  );
  const repositoryName = mostly(or(validName, fc.constantFrom(...v.projects).map((p) => `${p}/${'a'.repeat(256 - p.length)}`)));
  const validDigest = known(v.digests, hex(64).map((h) => `sha256:${h}`));
  const digest = mostly(
    or(
      validDigest,
      fc.oneof(
        hex(128).map((h) => `sha512:${h}`),
        fc.tuple(fc.constantFrom('sha256', 'sha512', 'md5', 'SHA256', 'sha256+b64', 'blake3', ''), fc.oneof(hex(64), hex(63), hex(65), hex(64).map((h) => h.toUpperCase()))).map(([a, h]) => `${a}:${h}`),
      ),
    ),
  );
  const tag = mostly(known(v.tags, or(fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/), fc.constantFrom('a'.repeat(129), '.INVALID_MANIFEST_NAME', '-x'))));
  const reference = fc.oneof({ arbitrary: tag, weight: 3 }, { arbitrary: digest, weight: 2 });
  const username = mostly(known(v.usernames, or(fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,12}$/), fc.constant(`u${'x'.repeat(64)}`))));
  const robot = mostly(known(v.robots, fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,4})?$/)));
  const uploadId = mostly(known(v.uploadIds, fc.uuid()));
  const gcId = mostly(known(v.gcIds, or(fc.uuid(), numberText)));
  const mediaType = mostly(or(fc.constantFrom(...MANIFEST_TYPES, ...VALID_TYPES), fc.constantFrom(...ODD_TYPES)));
  const count = or(fc.integer({ min: 0, max: 200 }).map(String), numberText);
  const actions = mostly(or(fc.subarray(['pull', 'push', 'delete', '*'], { minLength: 1 }).map((a) => a.join(',')), fc.constantFrom('PULL', 'pull,,push', 'read', '')));
  const scope = fc.oneof(
    { arbitrary: fc.tuple(repositoryName, actions).map(([n, a]) => `repository:${n}:${a}`), weight: 5 },
    { arbitrary: or(fc.constant('registry:catalog:*'), fc.constantFrom('registry:catalog:pull', 'repository(plugin):x/y:pull', 'repository::pull', 'repository:a:b:c')), weight: 1 },
    { arbitrary: fc.tuple(repositoryName, repositoryName).map(([a, b]) => `repository:${a}:pull repository:${b}:push`), weight: 1 },
  );
  const dateText = mostly(
    or(
      fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.oneof(
        fc.constantFrom('2024-13-45T99:99:99Z', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00.001Z', '-271821-04-20T00:00:00Z', '2024-01-01', '2024-01-01T00:00:00+25:00', 'now', '1e309'),
        numberText,
      ),
    ),
  );
  const text = calm ? fc.string({ maxLength: 24 }) : hostileString;

  /** Values for named fields, wherever they appear (path, query, JSON, form): the name says what the server expects. */
  const byName: Record<string, fc.Arbitrary<string>> = {
    name: repositoryName,
    repository: repositoryName,
    from: repositoryName,
    digest,
    mount: digest,
    reference,
    id: fc.oneof(uploadId, gcId),
    project,
    namespace: fc.oneof(project, fc.constant('*')),
    username,
    account: username,
    actor: username,
    robot,
    n: count,
    limit: count,
    before: or(fc.integer({ min: 0, max: 10_000 }).map(String), numberText),
    last: fc.oneof(tag, repositoryName),
    after: fc.oneof(repositoryName, username, robot, fc.uuid()),
    artifactType: mediaType,
    mediaType,
    scope,
    service: mostly(or(fc.constant(v.service), fc.constant('wharf'))),
    since: dateText,
    until: dateText,
    grant_type: mostly(or(fc.constantFrom('password', 'refresh_token'), fc.constant('client_credentials'))),
    access_type: mostly(fc.constant('offline')),
    offline_token: mostly(fc.constantFrom('true', 'false')),
    client_id: mostly(fc.constantFrom('docker', 'wharf-fuzz')),
    resource: mostly(or(fc.constant('repository'), fc.constantFrom('artifact', 'tag', 'project', 'member', 'robot', 'helm-chart'))),
    resourceType: mostly(fc.constantFrom('repository', 'project', 'user', 'robot', 'token', 'api')),
    action: mostly(or(fc.constantFrom('pull', 'push', 'delete', '*'), fc.constantFrom('read', 'create', 'login', 'update'))),
    role: mostly(fc.constantFrom('projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest')),
    secret: mostly(or(fc.string({ minLength: 16, maxLength: 128 }), fc.oneof(fc.string({ maxLength: 15 }), fc.constant('s'.repeat(129))))),
    password: mostly(or(fc.string({ minLength: 8, maxLength: 40 }), fc.oneof(fc.string({ maxLength: 7 }), fc.constant('p'.repeat(257))))),
    description: text,
  };
  const forName = (name: string): fc.Arbitrary<string> => byName[name] ?? text;

  /** Refresh tokens and forged tokens are only known to the running test: referenced, resolved when sent. */
  const tokenRef: fc.Arbitrary<unknown> = or(
    fc.constantFrom('admin', 'user', 'robot').map((p) => new Ref(`refresh token of ${p}`)),
    fc.oneof(fc.constantFrom(...v.forgeries).map((label) => new Ref(`forged: ${label}`)), hostileString),
  );

  const wrongType = fc.constantFrom<unknown>(null, true, 'true', '1', [], {}, [1], { $ref: '#' }, new RawNumber('1e309'));

  /**
   * Integers for a schema, as text: small ones from its minimum up, the large ones a
   * 64-bit API must take (those its maximum allows), and, where it sets no maximum,
   * integers past 64 bits, which are valid JSON and valid per the schema and must still
   * be refused cleanly.
   */
  function integerText(schema: JsonSchema): fc.Arbitrary<string> {
    const min = schema.minimum ?? -1000;
    const max = schema.maximum ?? Number.MAX_SAFE_INTEGER;
    const large = LARGE_INTEGERS.filter((n) => n >= min && n <= max).map(String);
    const valid = fc.oneof(
      { arbitrary: fc.integer({ min, max: Math.min(max, min + 1000) }).map(String), weight: 2 },
      ...(large.length ? [{ arbitrary: fc.constantFrom(...large), weight: 2 }] : []),
      ...(schema.maximum === undefined ? [{ arbitrary: fc.constantFrom(...HUGE_INTEGERS), weight: 1 }] : []),
    );
    return or(valid, numberText);
  }
  const integerFor = (schema: JsonSchema): fc.Arbitrary<unknown> => integerText(schema).map((t) => (JSON_NUMBER.test(t) ? new RawNumber(t) : t));

  function valueFor(schema: JsonSchema, key: string, depth: number): fc.Arbitrary<unknown> {
    if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => valueFor(s, key, depth)));
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    let valid: fc.Arbitrary<unknown>;
    if (schema.enum) {
      valid = or(fc.constantFrom(...schema.enum), forName(key));
    } else if (type === 'integer' || type === 'number') {
      valid = integerFor(schema);
    } else if (type === 'boolean') {
      valid = fc.boolean();
    } else if (type === 'array') {
      const items = valueFor(schema.items ?? {}, key, depth + 1);
      const max = schema.maxItems ?? 4;
      valid = or(fc.array(items, { minLength: 1, maxLength: Math.min(max, 3) }), fc.oneof(fc.constant([]), items.map((item) => Array.from({ length: max + 1 }, () => item))));
    } else if (type === 'object' || schema.properties) {
      valid = objectFor(schema, depth + 1);
    } else if (key === 'refresh_token') {
      valid = tokenRef;
    } else {
      valid = schema.maxLength === undefined ? forName(key) : or(forName(key).map((s) => s.slice(0, schema.maxLength)), fc.constant('d'.repeat(schema.maxLength + 1)));
    }
    return calm ? valid : fc.oneof({ arbitrary: valid, weight: level === 'tweaked' ? 30 : 6 }, { arbitrary: wrongType, weight: 1 });
  }

  function objectFor(schema: JsonSchema, depth: number): fc.Arbitrary<Record<string, unknown>> {
    const properties = Object.entries(schema.properties ?? {});
    if (depth > 4 || properties.length === 0) return fc.dictionary(text, fc.oneof(text, numberText), { maxKeys: 3 });
    const required = new Set(schema.required ?? []);
    const extraKey = calm ? fc.constant(undefined) : fc.option(fc.tuple(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'admin', 'id')), hostileString), { freq: level === 'tweaked' ? 20 : 4, nil: undefined });
    return fc
      .tuple(
        fc.tuple(...properties.map(([key, s]) => (calm && required.has(key) ? valueFor(s, key, depth) : fc.option(valueFor(s, key, depth), { freq: required.has(key) ? 12 : 4, nil: undefined })))),
        extraKey,
      )
      .map(([values, extra]) => {
        const object: Record<string, unknown> = {};
        properties.forEach(([key], i) => {
          if (values[i] !== undefined) object[key] = values[i];
        });
        if (extra) Object.defineProperty(object, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true });
        return object;
      });
  }

  const size = or(fc.integer({ min: 0, max: 4096 }), fc.oneof(numberValue, fc.constantFrom(...LARGE_INTEGERS)));
  const annotations = fc.dictionary(text, text, { maxKeys: 2 });
  const descriptor = fc.record(
    {
      mediaType,
      digest,
      size,
      artifactType: mediaType,
      annotations,
      urls: fc.array(text, { maxLength: 2 }),
      data: fc.base64String({ maxLength: 12 }),
      platform: fc.record({ architecture: text, os: text }, { requiredKeys: [] }),
    },
    { requiredKeys: ['mediaType', 'digest', 'size'] },
  );
  const manifestObject = fc.record(
    {
      schemaVersion: or(fc.constant(2), fc.oneof(fc.constant(1), numberValue)),
      mediaType,
      artifactType: mediaType,
      config: descriptor,
      layers: fc.array(descriptor, { maxLength: 3 }),
      manifests: fc.array(descriptor, { maxLength: 3 }),
      subject: descriptor,
      annotations,
    },
    { requiredKeys: ['schemaVersion', 'mediaType'] },
  );
  const deepNesting = fc.constantFrom(100, 5000, 100_000).map((depth) => ({ kind: 'text', text: `${'['.repeat(depth)}${']'.repeat(depth)}` }) as BodySpec);
  const brokenJson = fc.constantFrom('{', '{"a":', '[1,]', '{"a":1}{"b":2}', 'null', '"x"', '1e309', '\u0000', '{"__proto__":{"admin":true}}', '\ufeff{}');
  const anyBody: fc.Arbitrary<BodySpec> = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: 'bytes', bytes }) as BodySpec),
    fc.oneof(brokenJson, hostileString).map((t) => ({ kind: 'text', text: t }) as BodySpec),
    fc.jsonValue({ maxDepth: 3 }).map((value) => ({ kind: 'json', value }) as BodySpec),
    deepNesting,
  );
  const uploadBody: fc.Arbitrary<BodySpec> = fc.oneof(
    { arbitrary: fc.constantFrom(...v.blobs).map((b) => ({ kind: 'bytes', bytes: b.data }) as BodySpec), weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) => ({ kind: 'bytes', bytes }) as BodySpec), weight: 3 },
    { arbitrary: fc.constant({ kind: 'bytes', bytes: new Uint8Array() } as BodySpec), weight: 1 },
  );
  const manifestBody: fc.Arbitrary<BodySpec> = fc.oneof(
    { arbitrary: fc.constantFrom(...v.manifests).map((m) => ({ kind: 'bytes', bytes: m.data, contentType: m.mediaType }) as BodySpec), weight: 3 },
    { arbitrary: manifestObject.map((value) => ({ kind: 'json', value }) as BodySpec), weight: 6 },
    { arbitrary: anyBody, weight: calm ? 0 : 2 },
  );

  function bodyFor(route: RouteSpec | undefined, method: string): fc.Arbitrary<BodySpec | undefined> {
    const none = fc.constant(undefined);
    if (route?.body && route.method === method) {
      const structured =
        route.bodyType === 'form'
          ? objectFor(route.body, 0).map((o) => ({ kind: 'form', fields: formFields(o) }) as BodySpec)
          : objectFor(route.body, 0).map((value) => ({ kind: 'json', value }) as BodySpec);
      return calm ? structured : fc.oneof({ arbitrary: structured, weight: level === 'tweaked' ? 20 : 8 }, { arbitrary: anyBody, weight: 2 }, { arbitrary: none, weight: 1 });
    }
    if (route?.template.endsWith('/manifests/{reference}') && method === 'PUT') return manifestBody;
    if (route?.template.includes('/blobs/uploads/') && ['POST', 'PATCH', 'PUT'].includes(method)) return fc.oneof(uploadBody, none);
    return calm ? none : fc.oneof({ arbitrary: none, weight: 6 }, { arbitrary: anyBody, weight: 1 });
  }

  const range = or(
    fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `bytes=${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.oneof(
      fc.constantFrom('bytes=0-', 'bytes=-1', 'bytes=-0', 'bytes=5-1', 'bytes=0-1,2-3', 'items=0-1', 'bytes=', 'bytes=--1', 'bytes=0-0x10'),
      fc.tuple(numberText, numberText).map(([a, b]) => `bytes=${a}-${b}`),
      hostileString,
    ),
  );
  const contentRange = or(
    fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.oneof(
      fc.tuple(fc.nat(5000), fc.nat(5000), fc.nat(9000)).map(([a, b, c]) => `bytes ${a}-${b}/${c}`),
      fc.constantFrom('0-', '-1-2', '0-0/*', 'bytes=0-1', '1-0'),
      fc.tuple(numberText, numberText).map(([a, b]) => `${a}-${b}`),
      hostileString,
    ),
  );
  // Host and X-Forwarded-* reach the challenge's realm: odd values come up as often as plain ones.
  const hostValue = calm
    ? fc.constantFrom('registry.example', 'registry.example:5000', '[::1]:5000')
    : fc.oneof(fc.constantFrom('registry.example', 'registry.example:5000', '[::1]:5000'), fc.constantFrom('a"b', 'x", realm="evil', 'h\\', 'ex ample:80', ''), hostileString);

  /** Headers worth fuzzing on every route; a route that ignores one must still survive it. */
  const header: fc.Arbitrary<[string, string]> = fc.oneof(
    range.map((x) => ['Range', x] as [string, string]),
    contentRange.map((x) => ['Content-Range', x] as [string, string]),
    fc.oneof(mediaType, fc.constant('*/*')).map((x) => ['Accept', x] as [string, string]),
    hostValue.map((x) => ['Host', x] as [string, string]),
    hostValue.map((x) => ['X-Forwarded-Host', x] as [string, string]),
    (calm ? fc.constantFrom('https', 'http') : fc.oneof(fc.constantFrom('https', 'http'), fc.constantFrom('ftp', 'javascript', '"', 'https, http'), hostileString)).map((x) => ['X-Forwarded-Proto', x] as [string, string]),
    or(fc.ipV4(), hostileString).map((x) => ['X-Forwarded-For', x] as [string, string]),
    digest.map((x) => ['Docker-Content-Digest', x] as [string, string]),
    fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/).filter((name) => !CLIENT_MANAGED.has(name.toLowerCase())), text),
  );
  /** At most one Host: HTTP/1.1 allows no more, and the client refuses to send two. */
  const headers = (max: number) =>
    fc
      .oneof({ arbitrary: fc.constant([]), weight: calm ? 3 : 1 }, { arbitrary: fc.array(header, { minLength: 1, maxLength: max }), weight: 1 })
      .map((list) => list.filter(([k], i) => k !== 'Host' || list.findIndex(([j]) => j === 'Host') === i).map(([k, x]) => [k, headerValue(x)] as [string, string]));

  // The administrator reaches the most code; the others are there to be refused (or not) for their own reasons.
  const principal = fc.constantFrom('admin', 'admin', 'admin', 'user', 'user', 'robot', 'anonymous') as fc.Arbitrary<'admin' | 'user' | 'robot' | 'anonymous'>;
  // A user's password costs the registry a scrypt hash per request (a generated robot secret does not):
  // enough of them to cover the paths, not more.
  const member = fc.constantFrom('admin', 'user', 'robot', 'robot') as fc.Arbitrary<'admin' | 'user' | 'robot'>;
  const badBasic = fc.record({
    username: fc.oneof({ arbitrary: fc.constantFrom(...v.usernames, 'robot$team+ci', 'nobody'), weight: 1 }, { arbitrary: hostileString, weight: 2 }),
    password: fc.oneof(fc.constant('wrong-password'), hostileString),
  });
  const rawAuthorization = fc.oneof(
    fc.constantFrom('Bearer', 'Bearer ', 'Basic', 'Basic !!!!', 'Basic Og==', 'Basic YWRtaW4=', 'Digest username="admin"', 'bearer a.b.c', 'Bearer ..', 'Negotiate x'),
    hostileString.map((s) => `Bearer ${s}`),
    hostileString.map((s) => `Basic ${s}`),
    hostileString,
  );
  function credentialsFor(route: RouteSpec | undefined): fc.Arbitrary<Credentials> {
    const v2 = route?.surface === 'v2';
    const weighted: fc.WeightedArbitrary<Credentials>[] = [
      { arbitrary: principal.map((p) => ({ kind: 'token', principal: p, scoped: true }) as Credentials), weight: v2 ? 12 : 0 },
      { arbitrary: principal.map((p) => ({ kind: 'token', principal: p, scoped: false }) as Credentials), weight: route?.surface === 'token' ? 1 : 6 },
      { arbitrary: member.map((p) => ({ kind: 'basic', principal: p }) as Credentials), weight: 1 },
      { arbitrary: fc.constant({ kind: 'none' } as Credentials), weight: 2 },
      { arbitrary: badBasic.map((b) => ({ kind: 'bad-basic', ...b }) as Credentials), weight: calm ? 0 : 1 },
      { arbitrary: fc.constantFrom(...v.forgeries).map((label) => ({ kind: 'forged', label }) as Credentials), weight: calm ? 0 : 2 },
      { arbitrary: rawAuthorization.map((value) => ({ kind: 'raw', value }) as Credentials), weight: level === 'hostile' ? 1 : 0 },
    ];
    return fc.oneof(...weighted.filter((w) => w.weight > 0));
  }

  const urlEncoding: fc.Arbitrary<UrlEncoding> = calm ? fc.constant('component') : fc.constantFrom<UrlEncoding>('component', 'component', 'component', 'keep-slashes', 'literal-percent', 'double');
  const nameEncoding: fc.Arbitrary<UrlEncoding> = calm ? fc.constant('keep-slashes') : fc.constantFrom<UrlEncoding>('keep-slashes', 'keep-slashes', 'keep-slashes', 'component', 'literal-percent');

  function pathFor(route: RouteSpec): fc.Arbitrary<{ path: string; scopeName?: string }> {
    const params = route.params.map((p) => fc.tuple(forName(p), p === 'name' ? nameEncoding : urlEncoding));
    return fc.tuple(...params).map((values) => {
      let path = route.template;
      let scopeName: string | undefined;
      route.params.forEach((p, i) => {
        const [value, how] = values[i]!;
        if (p === 'name') scopeName = value;
        path = path.replace(`{${p}}`, encodeUrlPart(value, how));
      });
      return scopeName === undefined ? { path } : { path, scopeName };
    });
  }

  type Pair = [string, string[], UrlEncoding];
  function queryFor(route: RouteSpec | undefined): fc.Arbitrary<{ query: string; mountFrom?: string }> {
    const params = Object.entries(route?.query ?? {});
    const pair = (key: string, schema: JsonSchema) => {
      const one = schema.type === 'integer' ? mostly(integerText(schema)) : forName(key);
      const values = schema.anyOf?.some((s) => s.type === 'array') ? fc.array(one, { minLength: 1, maxLength: 3 }) : one.map((x) => [x]);
      return fc.tuple(fc.constant(key), values, urlEncoding);
    };
    const none: fc.Arbitrary<Pair[]> = fc.constant([]);
    const chosen: fc.Arbitrary<Pair[]> =
      params.length === 0 ? none : fc.subarray(params.map(([k, s]) => pair(k, s))).chain((arbs) => (arbs.length === 0 ? none : (fc.tuple(...arbs) as fc.Arbitrary<Pair[]>)));
    const extraPair = fc.tuple(fc.oneof(hostileString, fc.constantFrom(...params.map(([k]) => k), 'n', 'digest', 'last')), fc.array(hostileString, { minLength: 1, maxLength: 2 }), urlEncoding);
    const extra = level === 'hostile' ? fc.oneof({ arbitrary: none, weight: 3 }, { arbitrary: fc.array(extraPair, { minLength: 1, maxLength: 2 }), weight: 1 }) : none;
    return fc.tuple(chosen, extra).map(([pairs, extras]) => {
      const parts = [...pairs, ...extras].flatMap(([k, vs, how]) => vs.map((x) => `${encodeUrlPart(k, how)}=${encodeUrlPart(x, how)}`));
      const from = pairs.find(([k]) => k === 'from')?.[1][0];
      return { query: parts.length ? `?${parts.join('&')}` : '', ...(from !== undefined && { mountFrom: from }) };
    });
  }

  const anyMethod = fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'FOO');
  const randomPath = fc.oneof(
    fc
      .tuple(fc.constantFrom('/v2/', '/api/v1/', '/token/', '/', '/v2/_r/', '/api/v1/projects/'), fc.array(fc.tuple(hostileString, urlEncoding), { maxLength: 5 }))
      .map(([prefix, segments]) => prefix + segments.map(([s, how]) => encodeUrlPart(s, how)).join('/')),
    fc.constantFrom('/v2', '/v2/_catalog/x', '/v2/a/b/blobs/uploads', '/v2/a/tags/list/x', '/v2//a//manifests/x', '/v2/./a/manifests/x', '/api/v1', '/api/v1/projects/a/b/c', '/%2e%2e/%2e%2e/etc/passwd', '/v2/a/manifests/', '/v2/a/blobs/', '/api/v1/openapi.json'),
  );

  /** A request to a documented route (at the wilder levels, now and then with another method). */
  function routed(routes: RouteSpec[]): fc.Arbitrary<FuzzCase> {
    return fc
      .constantFrom(...routes)
      .chain((route) =>
        fc
          .record({
            method: level === 'hostile' ? fc.oneof({ arbitrary: fc.constant(route.method), weight: 5 }, { arbitrary: anyMethod, weight: 1 }) : fc.constant(route.method),
            where: pathFor(route),
            query: queryFor(route),
            headers: headers(3),
            credentials: credentialsFor(route),
            contentType: calm ? fc.constant(undefined) : fc.option(fc.oneof(mediaType, fc.constant(null)), { freq: level === 'tweaked' ? 10 : 3, nil: undefined }),
            chunked: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
            coherent: fc.boolean(),
          })
          .chain((r) => bodyFor(route, r.method).map((body) => ({ route, ...r, body }))),
      )
      .map(({ route, method, where, query, headers: hs, credentials, contentType, chunked, coherent, body }) => {
        // Half the uploads that carry a body name its true digest, so that some get stored.
        const completes = route.query.digest !== undefined && body?.kind === 'bytes' && coherent;
        const c: FuzzCase = { route, method, path: where.path + (completes ? `?digest=${sha256(body.bytes)}` : query.query), headers: hs, credentials };
        if (where.scopeName !== undefined) c.scopeName = where.scopeName;
        if (query.mountFrom !== undefined) c.mountFrom = query.mountFrom;
        if (body !== undefined) c.body = body;
        if (body !== undefined && chunked) c.chunked = true;
        if (contentType !== undefined) c.contentType = contentType === null ? null : headerValue(contentType);
        return c;
      });
  }

  /** A request to a path no route has. */
  const unrouted: fc.Arbitrary<FuzzCase> = fc
    .record({ method: anyMethod, path: randomPath, query: queryFor(undefined), headers: headers(2), credentials: credentialsFor(undefined), body: bodyFor(undefined, 'POST') })
    .map(({ method, path, query, headers: hs, credentials, body }) => {
      const c: FuzzCase = { route: undefined, method, path: path + query.query, headers: hs, credentials };
      if (body !== undefined) c.body = body;
      return c;
    });

  return { routed, unrouted };
}

/** Generated requests for the routes: calm, tweaked and hostile ones mixed, plus paths no route has. */
export function fuzzCases(v: Vocabulary, routes: RouteSpec[]): fc.Arbitrary<FuzzCase> {
  const calm = forLevel(v, 'calm');
  const tweaked = forLevel(v, 'tweaked');
  const hostile = forLevel(v, 'hostile');
  return fc.oneof(
    { arbitrary: calm.routed(routes), weight: 3 },
    { arbitrary: tweaked.routed(routes), weight: 4 },
    { arbitrary: hostile.routed(routes), weight: 3 },
    { arbitrary: hostile.unrouted, weight: 1 },
  );
}

/** Form fields from a generated object: arrays repeat the field, other values become text. */
function formFields(object: Record<string, unknown>): [string, string | Ref][] {
  const text = (x: unknown): string | Ref => (x instanceof Ref ? x : x instanceof RawNumber ? x.text : typeof x === 'string' ? x : (JSON.stringify(x) ?? ''));
  return Object.entries(object).flatMap(([k, x]) => (Array.isArray(x) ? x.map((item) => [k, text(item)] as [string, string | Ref]) : [[k, text(x)] as [string, string | Ref]]));
}
