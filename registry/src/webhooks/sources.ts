import type { FastifyInstance } from 'fastify';
import type { RetentionReport, RetentionRunRequest } from '../jobs/retention.js';
import type { RetentionWebhookEvent } from './events.js';

/** A retention.finished delivery lists at most this many deleted artifacts; the run's report has them all. */
const MAX_LISTED_ARTIFACTS = 100;

/** The retention.finished event for a finished run. Pure. */
export function retentionWebhookEvent(report: RetentionReport, request: RetentionRunRequest): RetentionWebhookEvent {
  return {
    type: 'retention.finished',
    actor: request.actor,
    at: new Date(report.finishedAt),
    executionId: request.runId ?? '',
    status: 'succeeded',
    dryRun: report.dryRun,
    retained: report.kept.length,
    deleted: report.deleted.length,
    deletedArtifacts: report.deleted.slice(0, MAX_LISTED_ARTIFACTS).map((d) => ({ repository: d.repository, digest: d.digest, ...(d.tag !== null && { tag: d.tag }) })),
  };
}

/**
 * Connects the modules registered after the webhooks plugin (retention runs, replication
 * executions) to its notifier. Called once both are registered.
 */
export function connectWebhookSources(app: FastifyInstance): void {
  const notify = app.webhooks.notifications;
  app.jobs.lifecycle.onRetentionFinished((report, request) => notify.notify(report.project, retentionWebhookEvent(report, request)));
}
