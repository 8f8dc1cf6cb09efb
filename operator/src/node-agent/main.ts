// Entry point of the node agent (same image as the operator, its own main), run as a
// DaemonSet: `run` keeps containerd's hosts.toml files for the mirrored hosts in place;
// `cleanup` (the preStop hook) removes them and restores what was there before; `cleanup <dir>`
// does the same on a directory without reading the config (the removal mode's init container);
// `wait` does nothing until it is stopped (the removal mode's container: the pod stays Ready, so
// the DaemonSet counts the node as clean).
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { parseNodeAgentConfig } from './config.js';
import { cleanHostsDir, syncHostsDir } from './writer.js';

const log = pino({ base: { component: 'wharf-node-agent' } });
const command = process.argv[2] ?? 'run';
const configFile = process.env.WHARF_NODE_AGENT_CONFIG ?? '/etc/wharf-node-agent/config.json';

async function main(): Promise<void> {
  if (!['run', 'cleanup', 'wait'].includes(command)) throw new Error(`unknown command ${JSON.stringify(command)}: expected run, cleanup [dir] or wait`);
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void (stopping = true));
  if (command === 'wait') {
    while (!stopping) await new Promise((resolve) => setTimeout(resolve, 200));
    return;
  }
  if (command === 'cleanup' && process.argv[3]) {
    log.info(await cleanHostsDir(process.argv[3]), 'removed the mirror configuration');
    return;
  }
  const config = parseNodeAgentConfig(JSON.parse(await readFile(configFile, 'utf8')));
  if (command === 'cleanup') {
    log.info(await cleanHostsDir(config.configPath), 'removed the mirror configuration');
    return;
  }
  while (!stopping) {
    try {
      const report = await syncHostsDir(config);
      if (report.written.length + report.removed.length + report.backedUp.length > 0) log.info(report, 'mirror configuration updated');
    } catch (err) {
      log.error({ err }, 'cannot write the mirror configuration; retrying');
    }
    for (let waited = 0; waited < config.intervalSeconds * 10 && !stopping; waited++) await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

main().catch((err: unknown) => {
  log.error({ err }, 'node agent failed');
  process.exit(1);
});
