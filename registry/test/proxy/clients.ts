// Real clients (skopeo, crane) run with their config inside a temp dir, for the proxy tests.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../support/clients/run.js';

export interface Clients {
  dir: string;
  skopeo(...args: string[]): Promise<RunResult>;
  crane(...args: string[]): Promise<RunResult>;
}

export async function clientsIn(dir: string, toolsBin: string): Promise<Clients> {
  const home = join(dir, 'home');
  await mkdir(join(dir, 'xdg'), { recursive: true });
  await mkdir(home, { recursive: true });
  await writeFile(join(dir, 'registries.conf'), '');
  await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env = {
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    XDG_RUNTIME_DIR: join(dir, 'xdg'),
    XDG_CONFIG_HOME: join(home, '.config'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    NO_COLOR: '1',
  };
  return {
    dir,
    skopeo: (...args) => run('skopeo', ['--policy', join(dir, 'policy.json'), '--tmpdir', dir, ...args], { env, timeoutMs: 120_000 }),
    crane: (...args) => run(join(toolsBin, 'crane'), [...args, '--insecure'], { env, timeoutMs: 120_000 }),
  };
}
