import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDuration } from '../../src/config.js';

describe('background job configuration', () => {
  it('defaults: worker on, GC daily at 03:00 UTC with a one-hour grace window, upload purge hourly after a day', () => {
    expect(loadConfig([], {}).jobs).toEqual({
      worker: true,
      pollIntervalMs: 2000,
      pullFlushMs: 10_000,
      gc: { schedule: '0 3 * * *', graceSeconds: 3600, deleteUntagged: false },
      uploads: { purgeAfterSeconds: 86400, purgeSchedule: '@hourly' },
    });
  });

  it('reads the YAML file, and the environment over it', () => {
    const file = join(tmpdir(), `wharf-jobs-${process.pid}.yaml`);
    writeFileSync(file, 'gc:\n  schedule: "*/30 * * * *"\n  grace: 2h\n  deleteUntagged: true\nuploads:\n  purgeAfter: 6h\n  purgeSchedule: off\njobs:\n  worker: false\n  pollInterval: 500ms\n  pullFlushInterval: 2s\n');
    expect(loadConfig(['--config', file], {}).jobs).toEqual({
      worker: false,
      pollIntervalMs: 500,
      pullFlushMs: 2000,
      gc: { schedule: '*/30 * * * *', graceSeconds: 7200, deleteUntagged: true },
      uploads: { purgeAfterSeconds: 21600 },
    });
    const env = { WHARF_GC_SCHEDULE: 'off', WHARF_GC_GRACE: '90', WHARF_GC_DELETE_UNTAGGED: 'false', WHARF_UPLOAD_PURGE_AFTER: '1d', WHARF_JOBS_WORKER: 'true', WHARF_PULL_FLUSH_INTERVAL: '250ms' };
    expect(loadConfig(['--config', file], env).jobs).toEqual({ worker: true, pollIntervalMs: 500, pullFlushMs: 250, gc: { graceSeconds: 90, deleteUntagged: false }, uploads: { purgeAfterSeconds: 86400 } });
  });

  it('rejects bad schedules and durations with the key named', () => {
    expect(() => loadConfig([], { WHARF_GC_SCHEDULE: '61 * * * *' })).toThrow(/gc.schedule \(WHARF_GC_SCHEDULE\)/);
    expect(() => loadConfig([], { WHARF_GC_SCHEDULE: '0 0 31 2 *' })).toThrow(/never fires/);
    expect(() => loadConfig([], { WHARF_GC_GRACE: 'an hour' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_JOBS_WORKER: 'maybe' })).toThrow(ConfigError);
    expect(parseDuration('x', '1.5h')).toBe(5400);
    expect(parseDuration('x', 250)).toBe(250);
  });
});
