import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultLoginConfig } from '../../src/config.js';
import { ManagementClient } from '../support/auth.js';
import { ClientAt, metricValue } from '../support/login.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from '../support/registry.js';

const PASSWORD = 'a-long-enough-password';
const robotBody = (extra: Record<string, unknown> = {}) => ({ permissions: [{ access: [{ resource: 'repository', action: 'pull' }] }], ...extra });

describe('login throttling', () => {
  let registry: RunningRegistry;
  let api: ManagementClient;
  let robot: { name: string; secret: string };
  const clients: ClientAt[] = [];
  const at = (address: string) => {
    const client = new ClientAt(registry.url, address);
    clients.push(client);
    return client;
  };

  // Windows of an hour: nothing is earned back while a test runs, so the counts are exact.
  beforeAll(async () => {
    registry = await startRegistry({
      // 429s are answered at once here (the refusal delay has a test of its own, in login-flood.test.ts).
      auth: tokenAuth({ login: { ...defaultLoginConfig(), perClient: { failures: 5, windowSeconds: 3600 }, perAccount: { failures: 3, windowSeconds: 3600 }, refusalDelaySeconds: 0 } }),
    });
    api = new ManagementClient(registry.url);
    for (const user of ['alice', 'bob', 'carol', 'dave', 'ivan']) await api.user(user, PASSWORD);
    await api.project('thr');
    robot = await api.robot('thr', 'ci', ['pull']);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  const expectThrottled = (answer: { status: number; retryAfter: string | undefined; body: any }, limit: 'client' | 'account') => {
    expect(answer.status).toBe(429);
    expect(answer.body.errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', detail: { limit } });
    expect(answer.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(answer.body.errors[0].detail.retryAfter).toBe(Number(answer.retryAfter));
  };

  it('counts failures per account from every client, then answers 429 with Retry-After, even to the right password', async () => {
    const first = at('127.0.0.2');
    for (let i = 0; i < 3; i++) expect((await first.token('alice', `wrong-${i}`)).status).toBe(401);
    const second = at('127.0.0.3');
    const refused = await second.token('alice', 'wrong-again');
    expectThrottled(refused, 'account');
    // One attempt is earned back every 3600/3 s.
    expect(Number(refused.retryAfter)).toBeGreaterThan(1100);
    expect(refused.body.errors[0].message).toMatch(/too many failed logins for this account; retry in \d+ seconds/);
    // No verification while throttled: guessing right does not get through.
    expectThrottled(await second.token('alice', PASSWORD), 'account');
    expect(await metricValue(registry.url, 'wharf_login_throttled_total', 'limit="account"')).toBeGreaterThanOrEqual(2);
  });

  it('does not lock the owner out of a client they signed in from lately', async () => {
    const home = at('127.0.0.4');
    expect((await home.token('bob', PASSWORD)).status).toBe(200);
    const attacker = at('127.0.0.5');
    for (let i = 0; i < 3; i++) expect((await attacker.token('bob', `guess-${i}`)).status).toBe(401);
    expectThrottled(await attacker.token('bob', 'guess-4'), 'account');
    expect((await home.token('bob', PASSWORD)).status).toBe(200);
    // The exemption is for that account from that client only.
    expectThrottled(await at('127.0.0.6').token('bob', PASSWORD), 'account');
  });

  it('answers for an account that does not exist exactly as for one that does', async () => {
    const normalized = (answer: { status: number; retryAfter: string | undefined; body: any }) => JSON.stringify(answer).replace(/\d+/g, 'N');
    const answers: Record<string, string[]> = {};
    const cases: [string, string][] = [
      ['ivan', '127.0.0.10'],
      ['nobody', '127.0.0.13'],
      [robot.name, '127.0.0.14'],
      ['robot$thr+ghost', '127.0.0.15'],
    ];
    for (const [name, address] of cases) {
      const client = at(address);
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) seen.push(normalized(await client.token(name, `wrong-${i}`)));
      const refused = await at('127.0.0.11').token(name, 'wrong');
      expectThrottled(refused, 'account');
      seen.push(normalized(refused));
      answers[name] = seen;
    }
    expect(answers.nobody).toEqual(answers.ivan);
    expect(answers['robot$thr+ghost']).toEqual(answers[robot.name]);
  });

  it('limits failures per client address across accounts; successes do not count', async () => {
    const client = at('127.0.0.20');
    for (let i = 0; i < 8; i++) expect((await client.token('carol', PASSWORD)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await client.token(`someone-${i}`, 'wrong')).status).toBe(401);
    const refused = await client.token('someone-else', 'wrong');
    expectThrottled(refused, 'client');
    expect(refused.body.errors[0].message).toMatch(/from this address/);
    expectThrottled(await client.token('carol', PASSWORD), 'client');
    expect((await at('127.0.0.21').token('carol', PASSWORD)).status).toBe(200);
  });

  it('throttles every place that checks a password: GET /token, the password grant of POST /token, and /api/v1', async () => {
    const client = at('127.0.0.30');
    expect((await client.token('dave', 'wrong')).status).toBe(401);
    expect((await client.passwordGrant('dave', 'wrong')).status).toBe(401);
    expect((await client.api('dave', 'wrong')).status).toBe(401);
    expectThrottled(await client.token('dave', 'wrong'), 'account');
    expectThrottled(await client.passwordGrant('dave', 'wrong'), 'account');
    expectThrottled(await client.api('dave', 'wrong'), 'account');
  });
});

describe('failed logins all cost one scrypt derivation; verified logins are reused until the account changes', () => {
  let registry: RunningRegistry;
  let api: ManagementClient;
  let client: ClientAt;
  const robots: Record<string, { name: string; secret: string }> = {};
  const CHOSEN = 'a-secret-a-person-chose';

  const hashes = () => metricValue(registry.url, 'wharf_password_hashes_total');
  /** The number of scrypt derivations a login took, and its answer. */
  const login = async (username: string, password: string) => {
    const before = await hashes();
    const answer = await client.token(username, password);
    return { status: answer.status, reason: answer.body?.errors?.[0]?.detail?.reason, derivations: (await hashes()) - before };
  };

  beforeAll(async () => {
    // No throttling here: these tests fail on purpose many times from one address.
    registry = await startRegistry({
      auth: tokenAuth({ login: { ...defaultLoginConfig(), perClient: { failures: 0, windowSeconds: 60 }, perAccount: { failures: 0, windowSeconds: 60 } } }),
    });
    api = new ManagementClient(registry.url);
    client = new ClientAt(registry.url, '127.0.0.1');
    await api.project('eq');
    await api.user('erin', PASSWORD);
    robots.generated = await api.robot('eq', 'generated', ['pull']);
    robots.chosen = await api.robot('eq', 'chosen', ['pull']);
    await api.ok('POST', '/projects/eq/robots/chosen/rotate', { secret: CHOSEN });
    robots.chosen.secret = CHOSEN;
    robots.disabled = await api.robot('eq', 'disabled', ['pull'], { disabled: true });
    robots.expired = await api.robot('eq', 'expired', ['pull']);
    await registry.app.metadata.sql.query(`UPDATE robots SET expires_at = now() - interval '1 day' WHERE name = $1`, [robots.expired.name]);
  });

  afterAll(async () => {
    await client?.close();
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('verifies every failure the same way: unknown or known, user or robot, chosen or generated secret, disabled or expired', async () => {
    const failures: [string, string, string][] = [
      ['unknown user', 'nosuchuser', 'whatever-password'],
      ['unknown robot', 'robot$eq+nosuch', 'whatever-secret'],
      ['unknown robot of an unknown project', 'robot$nosuch+ci', 'whatever-secret'],
      ['user, wrong password', 'erin', 'not-her-password'],
      ['robot with a generated secret, wrong secret', robots.generated!.name, 'wrong-secret'],
      ['robot with a chosen secret, wrong secret', robots.chosen!.name, 'wrong-secret'],
      ['disabled robot, wrong secret', robots.disabled!.name, 'wrong-secret'],
      ['expired robot, wrong secret', robots.expired!.name, 'wrong-secret'],
    ];
    const seen: Record<string, { status: number; derivations: number }> = {};
    for (const [label, username, password] of failures) {
      const { status, derivations } = await login(username, password);
      seen[label] = { status, derivations };
    }
    expect(seen).toEqual(Object.fromEntries(failures.map(([label]) => [label, { status: 401, derivations: 1 }])));
    // Reasons are told only to a caller who knows the secret (who learns nothing from the timing then).
    expect((await login(robots.disabled!.name, robots.disabled!.secret)).reason).toBe('robot account is disabled');
    expect((await login(robots.expired!.name, robots.expired!.secret)).reason).toBe('robot account has expired');
    expect((await login(robots.disabled!.name, 'wrong-secret')).reason).toBe('invalid robot credentials');
    expect((await login('robot$eq+nosuch', 'wrong-secret')).reason).toBe('invalid robot credentials');
  });

  it('lets a generated robot secret in without a derivation, and a password with one, reused afterwards', async () => {
    expect(await login(robots.generated!.name, robots.generated!.secret)).toMatchObject({ status: 200, derivations: 0 });
    await api.user('frank', PASSWORD);
    expect(await login('frank', PASSWORD)).toMatchObject({ status: 200, derivations: 1 });
    expect(await login('frank', PASSWORD)).toMatchObject({ status: 200, derivations: 0 });
    // The cache holds only what was verified: a wrong password is still verified, each time.
    expect(await login('frank', 'wrong-password')).toMatchObject({ status: 401, derivations: 1 });
    expect(await login('frank', 'wrong-password')).toMatchObject({ status: 401, derivations: 1 });
  });

  it('stops reusing a verification once the password is changed', async () => {
    await api.user('grace', PASSWORD);
    await login('grace', PASSWORD);
    expect(await login('grace', PASSWORD)).toMatchObject({ status: 200, derivations: 0 });
    // Setting the same password again changes nothing, and keeps the verification.
    await api.user('grace', PASSWORD);
    expect(await login('grace', PASSWORD)).toMatchObject({ status: 200, derivations: 0 });
    await api.user('grace', 'her-brand-new-password');
    expect(await login('grace', PASSWORD)).toMatchObject({ status: 401, derivations: 1 });
    expect(await login('grace', 'her-brand-new-password')).toMatchObject({ status: 200, derivations: 1 });
    expect((await client.api('grace', PASSWORD, '/api/v1/users/grace')).status).toBe(401);
  });

  it('stops reusing a verification once the user is deleted', async () => {
    await api.user('heidi', PASSWORD);
    await login('heidi', PASSWORD);
    expect(await login('heidi', PASSWORD)).toMatchObject({ status: 200, derivations: 0 });
    await api.ok('DELETE', '/users/heidi');
    expect(await login('heidi', PASSWORD)).toMatchObject({ status: 401, derivations: 1 });
    // Created again with the same password: a new hash, verified anew.
    await api.user('heidi', PASSWORD);
    expect(await login('heidi', PASSWORD)).toMatchObject({ status: 200, derivations: 1 });
  });

  it('stops reusing a verification once the robot secret is rotated', async () => {
    const secret = 'another-chosen-robot-secret';
    const robot = await api.robot('eq', 'rotated', ['pull']);
    await api.ok('POST', '/projects/eq/robots/rotated/rotate', { secret });
    await login(robot.name, secret);
    expect(await login(robot.name, secret)).toMatchObject({ status: 200, derivations: 0 });
    // During the default grace window the replaced secret still counts, cached verification included.
    const { secret: generated } = await api.ok('POST', '/projects/eq/robots/rotated/rotate', {});
    expect(await login(robot.name, secret)).toMatchObject({ status: 200, derivations: 0 });
    expect(await login(robot.name, generated)).toMatchObject({ status: 200, derivations: 0 });
    const { secret: third } = await api.ok('POST', '/projects/eq/robots/rotated/rotate', { graceSeconds: 0 });
    expect(await login(robot.name, secret)).toMatchObject({ status: 401, derivations: 1 });
    expect(await login(robot.name, generated)).toMatchObject({ status: 401, derivations: 1 });
    expect(await login(robot.name, third)).toMatchObject({ status: 200, derivations: 0 });
  });

  it('refuses a disabled robot whose secret was verified before, and lets it in again once enabled', async () => {
    const secret = 'yet-another-chosen-robot-secret';
    const robot = await api.robot('eq', 'toggled', ['pull']);
    await api.ok('POST', '/projects/eq/robots/toggled/rotate', { secret });
    await login(robot.name, secret);
    expect(await login(robot.name, secret)).toMatchObject({ status: 200, derivations: 0 });
    await api.ok('PUT', '/projects/eq/robots/toggled', robotBody({ disabled: true }));
    expect(await login(robot.name, secret)).toMatchObject({ status: 401, reason: 'robot account is disabled' });
    await api.ok('PUT', '/projects/eq/robots/toggled', robotBody({ disabled: false }));
    expect(await login(robot.name, secret)).toMatchObject({ status: 200, derivations: 0 });
  });
});
