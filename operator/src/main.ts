// Entry point of the operator. It stops gracefully on SIGTERM/SIGINT: reconciles in flight are
// aborted, the leader Lease is released, then the process exits. Watch and API errors never end
// the process; they are retried with backoff.
import { pino } from 'pino';
import { startOperator } from './manager.js';
import { parseOptions } from './options.js';

const options = parseOptions(process.argv.slice(2), process.env);
const log = pino({ level: options.logLevel, base: { component: 'wharf-operator', identity: options.identity } });

process.on('unhandledRejection', (reason) => log.error({ err: String(reason) }, 'unhandled rejection (ignored)'));

const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, 'shutting down');
    stop.abort();
    // A second signal, or a stuck shutdown, ends the process.
    setTimeout(() => process.exit(1), 20_000).unref();
    process.once(sig, () => process.exit(1));
  });
}

const running = await startOperator(options, log, stop.signal);
await running.done;
log.info('stopped');
