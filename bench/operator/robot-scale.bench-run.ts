// The RobotAccount controller at scale (issue 17's benchmark): N namespaces × M RobotAccounts whose
// pull secrets go to every namespace (N·M injected Secrets, and N·M entries in the namespaces'
// default ServiceAccounts), against a real registry process (token auth, external Registry) and the
// operator as a real process under config/rbac. Measured: apply → every RobotAccount Ready with all
// its Secrets; one rotation → all N namespaces hold the new secret; writes to the apiserver (its
// audit log) and to the registry (its request counter) during 60 s of idle; the operator's peak RSS.
// Writes bench/results/<date>-operator-robots.md (BENCH_OUT to override).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { operatorWrites } from '../../operator/test/support/audit.js';
import { adminClients, controlPlane } from '../../operator/test/support/context.js';
import { apply, createNamespace, raw, ROOT, waitFor, type Clients } from '../../operator/test/support/kube.js';
import { OperatorProcess, operatorKubeconfig } from '../../operator/test/support/operator.js';
import { applyExternalRegistry, countsAdded, RegistryProcess } from '../../operator/test/support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 200);
const ROBOTS = Number(process.env.BENCH_ROBOTS ?? 5);
const IDLE_MS = Number(process.env.BENCH_IDLE_SECONDS ?? 60) * 1000;
const API = 'wharf.dev/v1alpha1';
const IDENTITY = 'bench-robots-op';

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const robotName = (i: number) => `ci-${i}`;

/** Peak resident set of a process so far (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) / 1024;
}

async function pullSecrets(c: Clients, label: string): Promise<Any[]> {
  return (await raw<{ items: Any[] }>(c, 'GET', `/api/v1/secrets?labelSelector=${encodeURIComponent(`wharf.dev/robot-secret=pull,${label}`)}`)).items;
}

it(`${NAMESPACES} namespaces × ${ROBOTS} RobotAccounts`, async () => {
  const c = adminClients();
  const registry = await RegistryProcess.start();
  const host = new URL(registry.url).host;
  const kubeconfig = await operatorKubeconfig(c);
  const ns = await createNamespace(c, 'bench-robots');
  const selector = `wharf-bench-${process.pid}`;
  await applyExternalRegistry(c, ns, registry);
  await registry.ok('PUT', '/projects/bench', {});
  const targets: string[] = [];
  for (let i = 0; i < NAMESPACES; i += 20) {
    targets.push(...(await Promise.all(Array.from({ length: Math.min(20, NAMESPACES - i) }, () => createNamespace(c, 'bench-target')))));
  }
  for (const t of targets) await raw(c, 'PATCH', `/api/v1/namespaces/${t}`, { metadata: { labels: { [selector]: 'yes' } } }, 'application/merge-patch+json');
  await waitFor('every target has its default ServiceAccount', async () => {
    const sas = await raw<{ items: Any[] }>(c, 'GET', '/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault');
    const have = new Set(sas.items.map((s) => s.metadata.namespace));
    return targets.every((t) => have.has(t)) ? true : undefined;
  }, 120_000, 500);

  const op = await OperatorProcess.start({ kubeconfig, identity: IDENTITY, args: ['--lease-name', 'bench-robots', '--watch-namespace', ns] });
  try {
    await waitFor('operator leading', async () => ((await op.readyz()) === 200 ? true : undefined), 60_000, 100);
    await waitFor('Registry ext Ready', async () => {
      const r = await raw<Any>(c, 'GET', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/registries/ext`);
      return r.status?.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
    }, 60_000, 100);

    // 1. Apply → all Ready, with every Secret and ServiceAccount entry in place.
    const applied = Date.now();
    await Promise.all(
      Array.from({ length: ROBOTS }, (_, i) =>
        apply(c, {
          apiVersion: API,
          kind: 'RobotAccount',
          metadata: { name: robotName(i), namespace: ns },
          spec: {
            registryRef: { name: 'ext' },
            level: 'project',
            project: 'bench',
            permissions: [{ project: 'bench', access: [{ resource: 'repository', action: 'pull' }] }],
            pullSecret: { namespaceSelector: { matchLabels: { [selector]: 'yes' } }, serviceAccounts: ['default'] },
          },
        } as Any),
      ),
    );
    await waitFor('every RobotAccount Ready with all its pull secrets', async () => {
      const list = await raw<{ items: Any[] }>(c, 'GET', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/robotaccounts`);
      const ready = list.items.filter((r) => r.status?.observedGeneration === r.metadata.generation && r.status?.pullSecretNamespaces === NAMESPACES && r.status.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True'));
      return ready.length === ROBOTS ? true : undefined;
    }, 600_000, 250);
    const readyMs = Date.now() - applied;
    const injected = await pullSecrets(c, `wharf.dev/robot-account-uid`);
    const entries = (await raw<{ items: Any[] }>(c, 'GET', '/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault')).items
      .filter((s) => targets.includes(s.metadata.namespace))
      .reduce((n, s) => n + (s.imagePullSecrets ?? []).filter((e: Any) => /^ci-\d+-pull$/.test(e.name)).length, 0);

    // 2. One rotation → every target namespace holds the new secret.
    const credentials = async () => (await raw<Any>(c, 'GET', `/api/v1/namespaces/${ns}/secrets/${robotName(0)}-robot`)).data;
    const before = decode((await credentials()).password);
    const rotated = Date.now();
    await raw(c, 'PATCH', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/robotaccounts/${robotName(0)}`, { metadata: { annotations: { 'wharf.dev/rotate': `bench-${rotated}` } } }, 'application/merge-patch+json');
    let rotationNamespaces = 0;
    await waitFor('the rotated secret in every target namespace', async () => {
      const password = decode((await credentials()).password);
      if (password === before) return undefined;
      const mine = (await pullSecrets(c, 'wharf.dev/robot-account-uid')).filter((s) => s.metadata.annotations?.['wharf.dev/robot-account'] === `${ns}/${robotName(0)}`);
      rotationNamespaces = mine.filter((s) => JSON.parse(decode(s.data['.dockerconfigjson'])).auths[host]?.password === password).length;
      return rotationNamespaces === NAMESPACES ? true : undefined;
    }, 300_000, 100);
    const rotationMs = Date.now() - rotated;

    // 3. Idle: nothing written for IDLE_MS once converged (Lease renewals aside).
    await waitFor('a quiet stretch of 5 s', async () => {
      const since = new Date();
      await new Promise((r) => setTimeout(r, 5000));
      return operatorWrites(controlPlane().auditLog, IDENTITY, since).filter((e) => e.objectRef?.resource !== 'leases').length === 0 ? true : undefined;
    }, 120_000, 0);
    const idleSince = new Date();
    const registryBefore = await registry.writeCounts();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleApiserverWrites = operatorWrites(controlPlane().auditLog, IDENTITY, idleSince).filter((e) => e.objectRef?.resource !== 'leases').length;
    const idleRegistryWrites = Object.values(countsAdded(await registry.writeCounts(), registryBefore)).reduce((a, b) => a + b, 0);
    const rss = peakRssMiB(op.pid);

    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    const date = new Date().toISOString().slice(0, 10);
    const out = process.env.BENCH_OUT ?? join(ROOT, 'bench/results', `${date}-operator-robots.md`);
    const row = (what: string, value: string, goal: string, met: boolean | undefined) => `| ${what} | ${value} | ${goal} | ${met === undefined ? '—' : met ? 'met' : '**not met**'} |`;
    writeFileSync(
      out,
      [
        `# Operator at scale: ${NAMESPACES} namespaces × ${ROBOTS} RobotAccounts`,
        '',
        `Command: \`make bench-operator\` (\`npx vitest run --config bench/operator/vitest.config.ts\`), ${new Date().toISOString()},`,
        `commit ${commit}${dirty ? ' (with uncommitted changes)' : ''}, load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1/5/15 min) on ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs.`,
        'A real etcd + kube-apiserver + kube-controller-manager, a real registry process (token auth, an external',
        'Registry), the operator as one real process under config/rbac with its default flags (2 workers,',
        'resync 10 min). Every RobotAccount selects every target namespace by label and lists the',
        `\`default\` ServiceAccount: ${NAMESPACES * ROBOTS} pull secrets and ${NAMESPACES * ROBOTS} imagePullSecrets entries.`,
        '',
        '| Measure | Value | Goal | |',
        '| --- | ---: | --- | --- |',
        row('apply → all RobotAccounts Ready, every pull secret and entry in place', `${(readyMs / 1000).toFixed(1)} s`, '≤ 30 s', readyMs <= 30_000),
        row(`one rotation → the new secret in all ${NAMESPACES} namespaces`, `${(rotationMs / 1000).toFixed(2)} s`, '≤ 5 s', rotationMs <= 5_000),
        row(`apiserver writes by the operator in ${IDLE_MS / 1000} s idle (Lease renewals excluded)`, String(idleApiserverWrites), '0', idleApiserverWrites === 0),
        row(`registry writes in ${IDLE_MS / 1000} s idle`, String(idleRegistryWrites), '0', idleRegistryWrites === 0),
        row("operator's peak RSS (VmHWM)", `${rss.toFixed(1)} MiB`, '—', undefined),
        row('pull secrets found / ServiceAccount entries found', `${injected.length} / ${entries}`, `${NAMESPACES * ROBOTS} / ${NAMESPACES * ROBOTS}`, injected.length === NAMESPACES * ROBOTS && entries === NAMESPACES * ROBOTS),
        '',
      ].join('\n'),
    );
    console.log(readFileSync(out, 'utf8'));
    // A measurement, not a test: these only guard that what was measured is what was meant.
    expect(injected.length).toBe(NAMESPACES * ROBOTS);
    expect(rotationNamespaces).toBe(NAMESPACES);
  } finally {
    await op.stop();
    await registry.stop();
  }
});
