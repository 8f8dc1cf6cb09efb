// Entry point of the node agent (same image as the operator, its own main), run as a
// DaemonSet: `run` keeps containerd's hosts.toml files for the mirrored hosts in place;
// `cleanup` (the preStop hook) removes them and restores what was there before; `cleanup <dir> [owner]`
// does the same on a directory without reading the config (the removal mode's init container);
// `wait` does nothing until it is stopped (the removal mode's container: the pod stays Ready, so
// the DaemonSet counts the node as clean).
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { OWNER, parseNodeAgentConfig } from './config.js';
import { cleanHostsDir, syncHostsDir, type SyncReport } from './writer.js';

const log = pino({ base: { component: 'wharf-node-agent' } });
const command = process.argv[2] ?? 'run';
const configFile = process.env.WHARF_NODE_AGENT_CONFIG ?? '/etc/wharf-node-agent/config.json';

/** A cleanup that could not restore every host directory fails, so that the pod says so. */
function finish(report: SyncReport, message: string): void {
  log.info(report, message);
  if (report.failed.length > 0) throw new Error(`could not clean ${report.failed.map((f) => f.path).join(', ')}`);
}

async function main(): Promise<void> {
  if (!['run', 'cleanup', 'wait'].includes(command)) throw new Error(`unknown command ${JSON.stringify(command)}: expected run, cleanup [dir] or wait`);
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void (stopping = true));
  if (command === 'wait') {
    while (!stopping) await new Promise((resolve) => setTimeout(resolve, 200));
    return;
  }
  if (command === 'cleanup' && process.argv[3]) {
    const owner = process.argv[4];
    if (owner !== undefined && !OWNER.test(owner)) throw new Error(`cleanup: ${JSON.stringify(owner)} is not <namespace>/<name> of a Registry`);
    finish(await cleanHostsDir(process.argv[3], owner), 'removed the mirror configuration');
    return;
  }
  const config = parseNodeAgentConfig(JSON.parse(await readFile(configFile, 'utf8')));
  if (command === 'cleanup') {
    finish(await cleanHostsDir(config.configPath, config.owner), 'removed the mirror configuration');
    return;
  }
  if (config.invalidHosts?.length) log.error({ invalidHosts: config.invalidHosts }, 'hosts that are not registry host names are left out; the others are written');
  let problems = '';
  while (!stopping) {
    try {
      const report = await syncHostsDir(config);
      if (report.written.length + report.removed.length + report.backedUp.length + report.restored.length > 0) log.info(report, 'mirror configuration updated');
      // Logged when they change, not every pass.
      const now = JSON.stringify([report.conflicts, report.failed]);
      if (now !== problems) {
        if (report.conflicts.length > 0) log.warn({ conflicts: report.conflicts }, "another Registry's node agent wrote these files; they are left to it (one Registry mirrors a host on a node)");
        if (report.failed.length > 0) log.error({ failed: report.failed }, 'cannot write the mirror configuration of these hosts; the other hosts are written, these are retried');
        problems = now;
      }
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
