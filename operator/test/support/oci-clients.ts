// Real OCI clients for the operator's tests: crane pushes an image as the registry's admin, and
// skopeo pulls or pushes given nothing but a dockerconfigjson (what a kubelet would get from an
// injected pull secret).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './kube.js';

const exec = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'wharf-op-oci-'));
writeFileSync(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
let counter = 0;

/** A dockerconfigjson for one host and one account. */
export function dockerConfigFor(host: string, username: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

/** Pushes a one-layer image to `ref` (host/repo:tag) with crane, as the given account. */
export async function pushImage(ref: string, dockerConfigJson: string): Promise<void> {
  const dir = join(work, `crane-${++counter}`);
  await exec('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'config.json'), dockerConfigJson);
  await exec('tar', ['-cf', join(dir, 'layer.tar'), '-C', work, 'policy.json']);
  await exec(join(ROOT, '.tools/bin/crane'), ['append', '--insecure', '-f', join(dir, 'layer.tar'), '-t', ref], { env: { ...process.env, DOCKER_CONFIG: dir }, timeout: 60_000 });
}

export interface ClientOutcome {
  ok: boolean;
  output: string;
}

/** skopeo with a fresh authfile holding exactly `dockerConfigJson`; a failure is an outcome, not an error. */
async function skopeo(dockerConfigJson: string, args: string[]): Promise<ClientOutcome> {
  const authfile = join(work, `auth-${++counter}.json`);
  writeFileSync(authfile, dockerConfigJson);
  const [command, ...rest] = args;
  try {
    const { stdout, stderr } = await exec('skopeo', ['--policy', join(work, 'policy.json'), '--tmpdir', work, command!, '--authfile', authfile, ...rest], { timeout: 60_000 });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr || e.message}` };
  }
}

/** skopeo copies `ref` (host/repo:tag) into a local OCI layout with only `dockerConfigJson` for credentials: a real pull of manifest, config and layers. */
export async function pullWith(dockerConfigJson: string, ref: string): Promise<ClientOutcome> {
  return skopeo(dockerConfigJson, ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(work, `pulled-${++counter}`)}:latest`]);
}

/** skopeo pulls `from` and pushes it to `to`, with only `dockerConfigJson` for credentials. */
export async function copyWith(dockerConfigJson: string, from: string, to: string): Promise<ClientOutcome> {
  return skopeo(dockerConfigJson, ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${from}`, `docker://${to}`]);
}

/** The manifest digest `ref` (host/repo:tag) resolves to, with crane as the given account; undefined when it does not exist. */
export async function digestOf(ref: string, dockerConfigJson: string): Promise<string | undefined> {
  const dir = join(work, `crane-${++counter}`);
  await exec('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'config.json'), dockerConfigJson);
  try {
    const { stdout } = await exec(join(ROOT, '.tools/bin/crane'), ['digest', '--insecure', ref], { env: { ...process.env, DOCKER_CONFIG: dir }, timeout: 60_000 });
    return stdout.trim();
  } catch (err) {
    if (/MANIFEST_UNKNOWN|NAME_UNKNOWN|404/.test(String((err as { stderr?: string }).stderr ?? ''))) return undefined;
    throw err;
  }
}
