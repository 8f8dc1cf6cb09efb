import { afterAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from './support/auth.js';
import { runConformance } from './support/conformance.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from './support/registry.js';

describe('OCI distribution-spec conformance with token auth on', () => {
  let registry: RunningRegistry | undefined;

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('passes every spec as a robot with pull, push and delete on the test project', async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    const api = new ManagementClient(registry.url);
    await api.project('conformance');
    const robot = await api.robot('conformance', 'suite', ['pull', 'push', 'delete']);
    const { counts, output } = await runConformance(inject('toolsBin'), registry.host, { OCI_USERNAME: robot.name, OCI_PASSWORD: robot.secret });
    console.log(
      `conformance (auth on): ${counts.tests} specs, ${counts.passed} passed, ${counts.failures} failed, ${counts.errors} errors, ${counts.skipped} skipped, ${counts.disabled} disabled`,
    );
    expect(counts.failed, `failed specs:\n${counts.failed.join('\n')}\n${output.slice(-3000)}`).toEqual([]);
    expect(counts.passed).toBeGreaterThan(800);
    // The suite really went through the token flow.
    const audit = await api.ok('GET', `/audit?actor=${encodeURIComponent(robot.name)}&action=push&limit=1`);
    expect(audit.items).toHaveLength(1);
  }, 600_000);
});
