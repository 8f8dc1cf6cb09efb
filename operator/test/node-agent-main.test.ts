// The node agent's entry point as a real process, run with the exact commands the rendered
// DaemonSet gives it (from the operator image's working directory, here the repository root, which
// holds dist/ as the image's /app does), on a temporary directory standing in for the node's
// containerd config_path: `run` writes the hosts.toml files and keeps a foreign file aside, the
// preStop `cleanup` restores it (and exits 1, naming the host, when it cannot), the removal
// mode's `cleanup <dir>` needs no config, and `wait` stops on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MARKER } from '../src/node-agent/index.js';
import { renderNodeAgent, type NodeAgentInput } from '../src/resources/node-agent/index.js';
import { ROOT, waitFor } from './support/kube.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const work = mkdtempSync(join(tmpdir(), 'wharf-node-agent-'));
const certsD = join(work, 'certs.d');
const configFile = join(work, 'config.json');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const input: NodeAgentInput = {
  registry: { name: 'reg', namespace: 'wharf', uid: '0b7c0c52-0000-4000-8000-000000000001' },
  image: 'example.test/wharf-operator:1',
  version: '1',
  hosts: ['docker.io', 'ghcr.io'],
  endpoint: { url: 'http://10.0.0.7:5000' },
};
const FOREIGN = 'server = "https://ghcr.io"\n\n[host."https://ghcr-cache.internal"]\n  capabilities = ["pull"]\n';

/** The rendered commands, with the ConfigMap's config.json pointed at the temporary directory. */
function rendered(removing = false): { run: string[]; preStop: string[]; init: string[]; wait: string[] } {
  const objects = renderNodeAgent({ ...input, removing }) as Any[];
  const ds = objects.find((o) => o.kind === 'DaemonSet');
  const cm = objects.find((o) => o.kind === 'ConfigMap');
  writeFileSync(configFile, JSON.stringify({ ...JSON.parse(cm.data['config.json']), configPath: certsD, intervalSeconds: 1 }));
  const pod = ds.spec.template.spec;
  return { run: pod.containers[0].command, preStop: pod.containers[0].lifecycle?.preStop.exec.command, init: pod.initContainers?.[0].command, wait: pod.containers[0].command };
}

function start(command: string[]): { child: ChildProcess; exit: Promise<number | null>; output: () => string } {
  const [bin, ...args] = command;
  expect(bin).toBe('node');
  let text = '';
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, WHARF_NODE_AGENT_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, output: () => text };
}

describe('node agent main (real process, temporary config_path)', () => {
  it('run writes the hosts, sets a foreign file aside, stops on SIGTERM; the preStop cleanup restores it', async () => {
    const { run, preStop } = rendered();
    mkdirSync(join(certsD, 'ghcr.io'), { recursive: true });
    writeFileSync(join(certsD, 'ghcr.io/hosts.toml'), FOREIGN);
    const agent = start(run);
    await waitFor('hosts written', async () => (existsSync(join(certsD, 'docker.io/hosts.toml')) && readFileSync(join(certsD, 'ghcr.io/hosts.toml'), 'utf8').startsWith(MARKER) ? true : undefined), 20_000, 100);
    expect(readFileSync(join(certsD, 'docker.io/hosts.toml'), 'utf8')).toContain('[host."http://10.0.0.7:5000"]');
    expect(readFileSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original'), 'utf8')).toBe(FOREIGN);
    agent.child.kill('SIGTERM');
    expect(await agent.exit, agent.output()).toBe(0);

    const cleanup = start(preStop);
    expect(await cleanup.exit, cleanup.output()).toBe(0);
    expect(existsSync(join(certsD, 'docker.io'))).toBe(false);
    expect(readFileSync(join(certsD, 'ghcr.io/hosts.toml'), 'utf8')).toBe(FOREIGN);
    expect(existsSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original'))).toBe(false);
  });

  it("the removal mode's cleanup <dir> works without a config, and wait stops on SIGTERM", async () => {
    const { run } = rendered();
    const agent = start(run);
    await waitFor('hosts written', async () => (existsSync(join(certsD, 'docker.io/hosts.toml')) ? true : undefined), 20_000, 100);
    agent.child.kill('SIGTERM');
    expect(await agent.exit).toBe(0);

    const { init, wait } = rendered(true);
    expect(init.at(-2)).toBe('/host/containerd-certs.d');
    rmSync(configFile);
    const cleanup = start([...init.slice(0, -2), certsD, init.at(-1)!]);
    expect(await cleanup.exit, cleanup.output()).toBe(0);
    expect(existsSync(join(certsD, 'docker.io'))).toBe(false);
    expect(readFileSync(join(certsD, 'ghcr.io/hosts.toml'), 'utf8')).toBe(FOREIGN);

    const waiting = start(wait);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(waiting.child.exitCode).toBeNull();
    waiting.child.kill('SIGTERM');
    expect(await waiting.exit).toBe(0);
  });

  it('a cleanup that cannot put an original back exits 1, names the host, and still cleans the others', async () => {
    rmSync(certsD, { recursive: true, force: true });
    const { run, preStop } = rendered();
    mkdirSync(join(certsD, 'ghcr.io'), { recursive: true });
    writeFileSync(join(certsD, 'ghcr.io/hosts.toml'), FOREIGN);
    const agent = start(run);
    await waitFor('hosts written', async () => (existsSync(join(certsD, 'docker.io/hosts.toml')) && existsSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original')) ? true : undefined), 20_000, 100);
    agent.child.kill('SIGTERM');
    expect(await agent.exit, agent.output()).toBe(0);
    // Something that cannot be renamed over hosts.toml stands where the original was set aside.
    rmSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original'));
    mkdirSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original/keep'), { recursive: true });

    const cleanup = start(preStop);
    expect(await cleanup.exit, cleanup.output()).toBe(1);
    expect(cleanup.output()).toContain('could not clean ghcr.io');
    expect(existsSync(join(certsD, 'docker.io'))).toBe(false);
    // Nothing lost: Wharf's file stays until its original can go back.
    expect(readFileSync(join(certsD, 'ghcr.io/hosts.toml'), 'utf8').startsWith(MARKER)).toBe(true);
    expect(existsSync(join(certsD, 'ghcr.io/hosts.toml.wharf-original/keep'))).toBe(true);
    rmSync(certsD, { recursive: true, force: true });
  });

  it('an unknown command fails with a clear message', async () => {
    const bad = start(['node', 'dist/operator/src/node-agent/main.js', 'explode']);
    expect(await bad.exit).toBe(1);
    expect(bad.output()).toContain('expected run, cleanup [dir] or wait');
  });
});
