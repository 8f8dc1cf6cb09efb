import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, fetchToken, jwtPayload, ManagementClient } from '../support/auth.js';
import { parseChallenge } from '../support/challenge.js';
import { actingBody, fillRoute, managementRoutes, type Route } from '../support/management-routes.js';
import { buildImage } from '../support/oci.js';
import { PushClient } from '../support/push.js';
import { rawRequest, type RawResponse } from '../support/raw-http.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';
import type { Image } from '../support/oci.js';

/**
 * An outsider must not learn whether a private project exists: every answer about the
 * private project must equal, byte for byte once the name is swapped, the answer about
 * a project that does not exist. Both names have the same length, so lengths match too.
 */
const HIDDEN = 'hidden01';
const ABSENT = 'nothere1';
const PUBLIC = 'public01';
const NAME = '<project>';

const OUTSIDER = { username: 'outsider', password: 'outsider-password' };
const INSIDER = { username: 'insider', password: 'insider-password-1' };
const ADMIN_CREDS = { username: 'admin', password: TEST_ADMIN_PASSWORD };

let registry: RunningRegistry;
let api: ManagementClient;
let image: Image;
let publicRobot: { username: string; password: string };

type Credentials = { username: string; password: string } | undefined;

/** A /v2 request about `project`'s repository `app`. */
interface V2Case {
  what: string;
  request: (project: string) => { method: string; path: string; headers?: Record<string, string>; body?: Buffer };
}

const v2Cases = (): V2Case[] => [
  { what: 'GET manifest', request: (p) => ({ method: 'GET', path: `/v2/${p}/app/manifests/v1`, headers: { Accept: image.mediaType } }) },
  { what: 'HEAD manifest', request: (p) => ({ method: 'HEAD', path: `/v2/${p}/app/manifests/v1`, headers: { Accept: image.mediaType } }) },
  { what: 'GET manifest by digest', request: (p) => ({ method: 'GET', path: `/v2/${p}/app/manifests/${image.manifest.digest}` }) },
  { what: 'GET tags', request: (p) => ({ method: 'GET', path: `/v2/${p}/app/tags/list` }) },
  { what: 'HEAD blob (how pushes start)', request: (p) => ({ method: 'HEAD', path: `/v2/${p}/app/blobs/${image.config.digest}` }) },
  { what: 'GET blob', request: (p) => ({ method: 'GET', path: `/v2/${p}/app/blobs/${image.layers[0]!.digest}` }) },
  { what: 'GET referrers', request: (p) => ({ method: 'GET', path: `/v2/${p}/app/referrers/${image.manifest.digest}` }) },
  { what: 'POST upload', request: (p) => ({ method: 'POST', path: `/v2/${p}/app/blobs/uploads/` }) },
  { what: 'PUT manifest', request: (p) => ({ method: 'PUT', path: `/v2/${p}/app/manifests/v2`, headers: { 'Content-Type': image.mediaType }, body: image.manifest.data }) },
  { what: 'DELETE manifest', request: (p) => ({ method: 'DELETE', path: `/v2/${p}/app/manifests/${image.manifest.digest}` }) },
  { what: 'mount from it', request: (p) => ({ method: 'POST', path: `/v2/${PUBLIC}/app/blobs/uploads/?mount=${image.config.digest}&from=${p}/app` }) },
];

/** A response with the project name swapped for a placeholder and the clock removed. */
function normalized(res: RawResponse, project: string): unknown {
  const swap = (s: string) => s.split(project).join(NAME);
  const headers = Object.fromEntries(
    Object.entries(res.headers)
      .filter(([k]) => k !== 'date')
      .map(([k, v]) => [k, Array.isArray(v) ? v.map(swap) : v === undefined ? v : swap(v)]),
  );
  return { status: res.status, headers, body: swap(res.body.toString('utf8')) };
}

const tokens = new Map<string, string>();
async function tokenFor(credentials: Credentials, project: string): Promise<string> {
  const key = `${credentials?.username ?? ''}\n${project}`;
  if (!tokens.has(key)) {
    const res = await fetchToken(registry.url, [`repository:${project}/app:pull,push,delete`, `repository:${PUBLIC}/app:pull,push`], credentials);
    expect(res.status).toBe(200);
    tokens.set(key, res.token!);
  }
  return tokens.get(key)!;
}

async function v2(credentials: Credentials, c: V2Case, project: string): Promise<RawResponse> {
  const req = c.request(project);
  const token = await tokenFor(credentials, project);
  return rawRequest(registry.url, { ...req, headers: { ...req.headers, Authorization: `Bearer ${token}` } });
}

const outsiders = (): [string, Credentials][] => [
  ['anonymous', undefined],
  ['a signed-in user who is no member', OUTSIDER],
  ["another project's robot", publicRobot],
];

describe('private project names do not leak to outsiders', () => {
  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    api = new ManagementClient(registry.url);
    image = await buildImage({ layers: 1 });
    await api.project(HIDDEN, { public: false });
    await api.project(PUBLIC, { public: true });
    const admin = new PushClient(registry.url, (await fetchToken(registry.url, [`repository:${HIDDEN}/app:pull,push`, `repository:${PUBLIC}/app:pull,push`], ADMIN_CREDS)).token);
    await admin.pushImage(`${HIDDEN}/app`, 'v1', image);
    await admin.pushImage(`${PUBLIC}/app`, 'v1', image);
    await api.user(OUTSIDER.username, OUTSIDER.password);
    await api.user(INSIDER.username, INSIDER.password);
    await api.member(HIDDEN, INSIDER.username, 'guest');
    const robot = await api.robot(PUBLIC, 'ci', ['pull', 'push']);
    publicRobot = { username: robot.name, password: robot.secret };
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  describe('/v2: the same status, code, message, headers and challenge for a private project and an absent one', () => {
    for (const [who, index] of [['anonymous', 0], ['a signed-in user who is no member', 1], ["another project's robot", 2]] as const) {
      it(`to ${who}`, async () => {
        const credentials = outsiders()[index]![1];
        for (const c of v2Cases()) {
          const hidden = await v2(credentials, c, HIDDEN);
          const absent = await v2(credentials, c, ABSENT);
          expect(normalized(hidden, HIDDEN), c.what).toEqual(normalized(absent, ABSENT));
          expect(hidden.status, c.what).toBe(401);
          const challenge = parseChallenge(String(hidden.headers['www-authenticate']));
          expect(challenge.params.error, c.what).toBe('insufficient_scope');
          // Only the robot may push into the public project, so only its mount is refused for the source.
          if (c.what !== 'mount from it' || credentials === publicRobot) {
            expect(challenge.params.error_description, c.what).toContain(`project "${HIDDEN}"`);
            expect(challenge.params.error_description, c.what).not.toMatch(/does not grant/);
          }
        }
      });
    }

    it('without a token, too (the first request of every client)', async () => {
      for (const c of v2Cases()) {
        const [hidden, absent] = await Promise.all([HIDDEN, ABSENT].map((p) => rawRequest(registry.url, c.request(p))));
        expect(normalized(hidden!, HIDDEN), c.what).toEqual(normalized(absent!, ABSENT));
      }
    });
  });

  describe('the reason reaches clients that send HEAD (no body), in the challenge', () => {
    it('tells an outsider that the project does not exist or is not theirs', async () => {
      const head = v2Cases().find((c) => c.what.startsWith('HEAD blob'))!;
      const res = await v2(OUTSIDER, head, ABSENT);
      expect(res.body.length).toBe(0);
      expect(parseChallenge(String(res.headers['www-authenticate'])).params).toEqual({
        realm: `${registry.url}/token`,
        service: 'wharf-test',
        scope: `repository:${ABSENT}/app:pull`,
        error: 'insufficient_scope',
        error_description: `project "${ABSENT}" does not exist or you have no access to it`,
      });
      const anonymous = parseChallenge(String((await v2(undefined, head, ABSENT)).headers['www-authenticate'])).params;
      expect(anonymous.error_description).toBe(`project "${ABSENT}" does not exist, or it is private and you are not signed in`);
    });

    it('tells an administrator, who sees every project, that it does not exist', async () => {
      const push = v2Cases().find((c) => c.what === 'POST upload')!;
      const res = await v2(ADMIN_CREDS, push, ABSENT);
      expect(res.status).toBe(401);
      expect(parseChallenge(String(res.headers['www-authenticate'])).params.error_description).toBe(`project "${ABSENT}" does not exist`);
      expect(res.json<{ errors: { message: string }[] }>().errors[0]!.message).toBe(`insufficient access: project "${ABSENT}" does not exist`);
    });

    it('tells a member what the token lacks', async () => {
      const push = v2Cases().find((c) => c.what === 'POST upload')!;
      const res = await v2(INSIDER, push, HIDDEN);
      expect(res.status).toBe(401);
      expect(parseChallenge(String(res.headers['www-authenticate'])).params.error_description).toBe(`the token does not grant push on ${HIDDEN}/app`);
      const pull = await v2(INSIDER, v2Cases().find((c) => c.what === 'GET manifest')!, HIDDEN);
      expect(pull.status).toBe(200);
    });

    it("tells a signed-in user who may see a public project what the token lacks", async () => {
      const push = v2Cases().find((c) => c.what === 'POST upload')!;
      const res = await v2(OUTSIDER, push, PUBLIC);
      expect(parseChallenge(String(res.headers['www-authenticate'])).params.error_description).toBe(`the token does not grant push on ${PUBLIC}/app`);
    });
  });

  describe('/token and the catalog', () => {
    it('grants an outsider the same (nothing) for a private project as for an absent one', async () => {
      for (const [who, credentials] of outsiders()) {
        const [hidden, absent] = await Promise.all(
          [HIDDEN, ABSENT].map(async (p) => {
            const res = await fetchToken(registry.url, [`repository:${p}/app:pull,push,delete`, `repository:${p}/other:*`], credentials);
            return { status: res.status, keys: Object.keys(res.body).sort(), access: jwtPayload(res.token!).access };
          }),
        );
        expect(hidden, who).toEqual(absent);
        expect(hidden!.access, who).toEqual([]);
      }
    });

    it("lists a private project's repositories only to those who may pull them", async () => {
      const catalog = async (credentials: Credentials, last?: string) => {
        const token = (await fetchToken(registry.url, ['registry:catalog:*'], credentials)).token;
        const res = await fetch(`${registry.url}/v2/_catalog${last ? `?last=${last}` : ''}`, { headers: { Authorization: `Bearer ${token}` } });
        return ((await res.json()) as { repositories: string[] }).repositories;
      };
      for (const [who, credentials] of outsiders()) {
        expect(await catalog(credentials), who).not.toContain(`${HIDDEN}/app`);
        expect(await catalog(credentials), who).toContain(`${PUBLIC}/app`);
        expect(await catalog(credentials, `${HIDDEN}/app`), who).toEqual(await catalog(credentials, `${ABSENT}/app`));
      }
      expect(await catalog(INSIDER)).toContain(`${HIDDEN}/app`);
    });
  });

  describe('/api/v1: every route naming a project answers outsiders the same for a private project and an absent one', () => {
    const projectRoutes = (): Route[] => managementRoutes(registry.app).filter((r) => r.url.includes(':project'));

    const call = async (route: Route, project: string, authorization?: string) => {
      const body = actingBody(route);
      return rawRequest(registry.url, {
        method: route.method,
        path: fillRoute(route.url, { project, username: OUTSIDER.username, robot: 'ci' }),
        headers: { ...(authorization && { Authorization: authorization }), ...(body !== undefined && { 'Content-Type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    };

    it.each([
      ['anonymous', undefined],
      ['a signed-in user who is no member', basic(OUTSIDER.username, OUTSIDER.password)],
      ["another project's robot", 'robot'],
    ])('to %s', async (_who, authorization) => {
      const auth = authorization === 'robot' ? basic(publicRobot.username, publicRobot.password) : authorization;
      const routes = projectRoutes();
      expect(routes.length).toBeGreaterThan(10);
      for (const route of routes) {
        const hidden = await call(route, HIDDEN, auth);
        const absent = await call(route, ABSENT, auth);
        const what = `${route.method} ${route.url}`;
        expect(normalized(hidden, HIDDEN), what).toEqual(normalized(absent, ABSENT));
        expect(hidden.status, what).toBeGreaterThanOrEqual(400);
      }
      // Nothing was created or changed by the refused calls.
      expect((await api.call('GET', `/projects/${ABSENT}`)).status).toBe(404);
      expect(await api.ok('GET', `/projects/${HIDDEN}`)).toMatchObject({ public: false });
      expect((await api.ok('GET', `/projects/${HIDDEN}/members`)).items.map((m: { username: string }) => m.username)).toEqual([INSIDER.username]);
    });
  });
});
