import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { basic, fetchToken, ManagementClient } from '../support/auth.js';
import { createTestDatabase } from '../support/pg.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from '../support/registry.js';

// Rotation without downtime (what the operator's RobotAccount relies on): the secret a rotation
// replaced keeps authenticating for the grace window, on /token and on the management API, and
// not after it; graceSeconds 0 cuts it off at once. And a robot records who manages it.
describe.each(['pglite', 'postgresql'] as const)('robot secret rotation (%s)', (driver) => {
  let registry: RunningRegistry;
  let api: ManagementClient;

  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth(), ...(driver === 'postgresql' && { databaseUrl: await createTestDatabase(inject('pgAdminUrl')) }) });
    api = new ManagementClient(registry.url);
    await api.project('rot');
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  /** Basic on /token: 200 with a token, or 401. */
  const tokenStatus = async (name: string, secret: string) => (await fetchToken(registry.url, ['repository:rot/app:pull'], { username: name, password: secret })).status;
  /** Basic on the management API: 403 when the robot signed in (a pull robot may not read the project), 401 when not. */
  const apiStatus = async (name: string, secret: string) => (await api.as(basic(name, secret)).call('GET', '/projects/rot')).status;
  const rotate = (robot: string, body: Record<string, unknown>) => api.ok('POST', `/projects/rot/robots/${robot}/rotate`, body);

  async function waitUntil<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, deadlineMs = 30_000): Promise<T> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const value = await probe();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('keeps the replaced secret working for the default hour, and shows until when', async () => {
    const robot = await api.robot('rot', 'default-grace', ['pull']);
    const before = await api.ok('GET', '/projects/rot/robots/default-grace');
    expect(before.graceEndsAt).toBeNull();
    const rotated = await rotate('default-grace', {});
    expect(rotated.secret).not.toBe(robot.secret);
    const until = Date.parse(rotated.robot.graceEndsAt);
    expect(until - Date.parse(rotated.robot.rotatedAt)).toBe(3600_000);
    expect(Date.parse(rotated.robot.rotatedAt)).toBeGreaterThan(Date.parse(before.rotatedAt));
    for (const secret of [robot.secret, rotated.secret]) {
      expect(await tokenStatus(robot.name, secret)).toBe(200);
      expect(await apiStatus(robot.name, secret)).toBe(403);
    }
    expect(await tokenStatus(robot.name, 'not-the-secret-at-all')).toBe(401);
    // The API never shows a hash.
    expect(JSON.stringify(rotated)).not.toMatch(/sha256\$|scrypt\$/);
  });

  it('refuses the replaced secret once a short window has closed, and not before', async () => {
    const robot = await api.robot('rot', 'short-grace', ['pull']);
    const rotated = await rotate('short-grace', { graceSeconds: 3 });
    expect(Date.parse(rotated.robot.graceEndsAt) - Date.parse(rotated.robot.rotatedAt)).toBe(3000);
    expect(await tokenStatus(robot.name, robot.secret)).toBe(200);
    expect(await apiStatus(robot.name, robot.secret)).toBe(403);
    // The successful logins above are now cached as verified; the window closing must end them too.
    await waitUntil('the old secret to be refused on /token', () => tokenStatus(robot.name, robot.secret), (s) => s !== 200);
    expect(await tokenStatus(robot.name, robot.secret)).toBe(401);
    expect(await apiStatus(robot.name, robot.secret)).toBe(401);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(rotated.robot.graceEndsAt));
    expect(await tokenStatus(robot.name, rotated.secret)).toBe(200);
    expect(await apiStatus(robot.name, rotated.secret)).toBe(403);
  });

  it('cuts the replaced secret off at once with graceSeconds 0, and any earlier one with it', async () => {
    const robot = await api.robot('rot', 'leaked', ['pull']);
    const first = await rotate('leaked', { graceSeconds: 600 });
    expect(await tokenStatus(robot.name, robot.secret)).toBe(200);
    const cut = await rotate('leaked', { graceSeconds: 0 });
    expect(cut.robot.graceEndsAt).toBeNull();
    for (const old of [robot.secret, first.secret]) {
      expect(await tokenStatus(robot.name, old)).toBe(401);
      expect(await apiStatus(robot.name, old)).toBe(401);
    }
    expect(await tokenStatus(robot.name, cut.secret)).toBe(200);
  });

  it('keeps only the secret the last rotation replaced', async () => {
    const robot = await api.robot('rot', 'twice', ['pull']);
    const first = await rotate('twice', { graceSeconds: 600 });
    const second = await rotate('twice', { graceSeconds: 600 });
    expect(await tokenStatus(robot.name, robot.secret)).toBe(401);
    expect(await tokenStatus(robot.name, first.secret)).toBe(200);
    expect(await tokenStatus(robot.name, second.secret)).toBe(200);
  });

  it('with keepPrevious replaces only the current secret and leaves the previous one and its window alone', async () => {
    const robot = await api.robot('rot', 'lost', ['pull']);
    const lost = await rotate('lost', { graceSeconds: 600 });
    // The caller lost `lost.secret` before storing it; its copies still hold `robot.secret`.
    const replaced = await rotate('lost', { keepPrevious: true });
    expect(replaced.robot.graceEndsAt).toBe(lost.robot.graceEndsAt);
    expect(await tokenStatus(robot.name, lost.secret)).toBe(401);
    expect(await tokenStatus(robot.name, robot.secret)).toBe(200);
    expect(await tokenStatus(robot.name, replaced.secret)).toBe(200);
    const both = await api.call('POST', '/projects/rot/robots/lost/rotate', { keepPrevious: true, graceSeconds: 60 });
    expect(both.status).toBe(400);
    expect(await tokenStatus(robot.name, replaced.secret)).toBe(200);
  });

  it('gives a provided (scrypt-hashed) secret the same window', async () => {
    const robot = await api.robot('rot', 'provided', ['pull']);
    await rotate('provided', { secret: 'a-person-chose-this-one', graceSeconds: 600 });
    const next = await rotate('provided', { graceSeconds: 600 });
    expect(await tokenStatus(robot.name, 'a-person-chose-this-one')).toBe(200);
    expect(await tokenStatus(robot.name, next.secret)).toBe(200);
    expect(await tokenStatus(robot.name, robot.secret)).toBe(401);
  });

  it('rejects a graceSeconds out of range or not an integer with 400, changing nothing', async () => {
    const robot = await api.robot('rot', 'bounds', ['pull']);
    for (const graceSeconds of [-1, 604_801, 1.5, 'an hour']) {
      const res = await api.call('POST', '/projects/rot/robots/bounds/rotate', { graceSeconds });
      expect(res.status, String(graceSeconds)).toBe(400);
      expect(res.body.errors[0].code).toBe('INVALID_REQUEST');
    }
    expect(await tokenStatus(robot.name, robot.secret)).toBe(200);
    expect((await rotate('bounds', { graceSeconds: 604_800 })).robot.graceEndsAt).not.toBeNull();
  });

  it('records, keeps and clears managedBy; another manager is refused with 409 and nothing changes', async () => {
    const body = (extra: Record<string, unknown>) => ({ permissions: [{ access: [{ resource: 'repository', action: 'pull' }] }], ...extra });
    const created = await api.call('PUT', '/projects/rot/robots/managed', body({ managedBy: 'ci/builder' }));
    expect(created.status).toBe(201);
    expect(created.body.robot.managedBy).toBe('ci/builder');
    expect((await api.ok('PUT', '/projects/rot/robots/managed', body({ description: 'changed' }))).managedBy).toBe('ci/builder');
    const same = await api.ok('GET', '/projects/rot/robots/managed');
    expect((await api.ok('PUT', '/projects/rot/robots/managed', body({ description: 'changed', managedBy: 'ci/builder' }))).updatedAt).toBe(same.updatedAt);
    const claimed = await api.call('PUT', '/projects/rot/robots/managed', body({ description: 'taken', managedBy: 'other/thief' }));
    expect(claimed.status).toBe(409);
    expect(claimed.body.errors[0]).toMatchObject({ code: 'CONFLICT', message: 'robot "robot$rot+managed" is managed by "ci/builder"' });
    expect(await api.ok('GET', '/projects/rot/robots/managed')).toMatchObject({ description: 'changed', managedBy: 'ci/builder' });
    expect((await api.ok('PUT', '/projects/rot/robots/managed', body({ managedBy: '' }))).managedBy).toBeNull();
    expect((await api.ok('PUT', '/projects/rot/robots/managed', body({ managedBy: 'other/thief' }))).managedBy).toBe('other/thief');
    // An update does not touch the secret.
    expect((await api.ok('GET', '/projects/rot/robots/managed')).rotatedAt).toBe(created.body.robot.rotatedAt);
  });
});
