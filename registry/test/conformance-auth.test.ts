import { afterAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from './support/auth.js';
import { CONFORMANCE_SUITES, runConformance } from './support/conformance.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from './support/registry.js';

describe('OCI distribution-spec conformance with token auth on', () => {
  let registry: RunningRegistry | undefined;

  const stop = async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
    registry = undefined;
  };
  afterAll(stop);

  it.each(CONFORMANCE_SUITES)('passes every spec of the $name suite as a robot with pull, push and delete on the test project', async (suite) => {
    await stop();
    registry = await startRegistry({ auth: tokenAuth() });
    const api = new ManagementClient(registry.url);
    await api.project('conformance');
    const robot = await api.robot('conformance', 'suite', ['pull', 'push', 'delete']);
    const { counts, output } = await runConformance(inject('toolsBin'), registry.host, { OCI_USERNAME: robot.name, OCI_PASSWORD: robot.secret }, suite);
    console.log(
      `conformance (${suite.name}, auth on): ${counts.tests} specs, ${counts.passed} passed, ${counts.failures} failed, ${counts.errors} errors, ${counts.skipped} skipped, ${counts.disabled} disabled`,
    );
    expect(counts.failed, `failed specs:\n${counts.failed.join('\n')}\n${output.slice(-3000)}`).toEqual([]);
    expect(counts.failures + counts.errors).toBe(0);
    expect(counts.passed).toBeGreaterThan(suite.minPassed);
    // The suite really went through the token flow.
    const audit = await api.ok('GET', `/audit?actor=${encodeURIComponent(robot.name)}&action=push&limit=1`);
    expect(audit.items).toHaveLength(1);
  }, 600_000);
});
