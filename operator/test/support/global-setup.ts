// vitest globalSetup for the operator project: builds the operator once and starts one real
// control plane (etcd + kube-apiserver + kube-controller-manager) for the whole run. Test files
// get its coordinates through inject('controlPlane').
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ControlPlane, type ControlPlaneInfo } from './control-plane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

const ROOT = resolve(import.meta.dirname, '../../..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binDir = resolve(ROOT, process.env.KUBE_TOOLS_BIN ?? '.tools/bin');
  for (const bin of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl']) {
    if (!existsSync(join(binDir, bin))) throw new Error(`${join(binDir, bin)} is missing: run \`make kube-tools\` first`);
  }
  // The tests run the operator as real child processes from its compiled output.
  const started = Date.now();
  execFileSync(process.execPath, [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '-p', resolve(ROOT, 'operator/tsconfig.json')], { stdio: 'inherit', cwd: ROOT });
  const buildMs = Date.now() - started;

  const workDir = resolve(ROOT, '.test-work/operator');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const cp = new ControlPlane(binDir, workDir, async (kubeconfig) => {
    const { clientsFor, installCrds } = await import('./kube.js');
    await installCrds(clientsFor(kubeconfig));
  });
  const t0 = Date.now();
  const info = await cp.start();
  console.log(`[operator] operator build ${buildMs} ms; control plane up in ${Date.now() - t0} ms at ${info.server} (logs in ${workDir})`);
  project.provide('controlPlane', info);
  return async () => {
    await cp.stop();
  };
}
