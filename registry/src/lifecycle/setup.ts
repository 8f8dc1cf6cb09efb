import type { FastifyInstance } from 'fastify';
import type { JobsConfig } from '../config.js';
import { JobKinds } from '../jobs/kinds.js';
import type { JobQueue } from '../jobs/queue.js';
import { RetentionRunner } from '../jobs/retention.js';
import type { JobHandler } from '../jobs/worker.js';
import { LifecycleService } from '../services/lifecycle.js';
import { PullTimeRecorder } from './pull-times.js';
import { StoredScheduleChecker } from '../jobs/stored-schedules.js';

/** How often the per-project retention schedules are looked at. */
const SCHEDULE_CHECK_MS = 30_000;

/**
 * Artifact lifecycle wiring for the jobs plugin: the retention job handler, the
 * per-project retention scheduler, the management-side service, and the batched pull-time
 * recorder (subscribed to artifact events). `start`/`stop` follow the app's ready/close.
 */
export function lifecycleJobs(app: FastifyInstance, queue: JobQueue, config: JobsConfig) {
  const runner = new RetentionRunner(app.metadata, app.services.events, app.log.child({ component: 'retention' }), () => app.services.references?.clear());
  const handler: JobHandler = {
    async run(payload, context) {
      return runner.run(
        { project: String(payload.project), dryRun: payload.dryRun === true, trigger: payload.trigger === 'schedule' ? 'schedule' : 'manual', actor: String(payload.actor ?? 'unknown'), runId: context.job.id },
        context.signal,
      );
    },
  };
  const recorder = new PullTimeRecorder(app.metadata.lifecycle, config.pullFlushMs, app.log.child({ component: 'pull-times' }));
  const unsubscribe = app.services.events.subscribe(recorder.onEvent);
  const scheduler = new StoredScheduleChecker(
    async () => (await app.metadata.lifecycle.retentionSchedules()).map(({ project, schedule }) => ({ key: project, schedule })),
    async (project, tick) =>
      void (await queue.enqueue({ kind: JobKinds.retention, payload: { project, dryRun: false, trigger: 'schedule', actor: 'scheduler' }, dedupeKey: `retention:${project}@${tick.toISOString()}` })),
    SCHEDULE_CHECK_MS,
    app.log.child({ component: 'retention-scheduler' }),
  );
  return {
    kind: JobKinds.retention,
    handler,
    service: new LifecycleService(app.metadata, queue, runner, app.auth.audit),
    recorder,
    start: () => (config.worker ? scheduler.start() : undefined),
    async stop() {
      scheduler.stop();
      unsubscribe();
      await recorder.flush();
    },
  };
}
