import type { FastifyInstance } from 'fastify';
import type { RetentionReport, RetentionRunRequest } from '../jobs/retention.js';
import type { ExecutionView } from '../replication/executions.js';
import type { ReplicationWebhookEvent, RetentionWebhookEvent } from './events.js';

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

/** The replication.status event for an execution that ended. Pure. */
export function replicationWebhookEvent(execution: ExecutionView): ReplicationWebhookEvent {
  return {
    type: 'replication.status',
    actor: 'system:replication',
    at: execution.endedAt ?? new Date(),
    rule: execution.policy,
    executionId: execution.id,
    status: execution.status,
    trigger: execution.trigger,
    tasks: { total: execution.tasks.total, succeeded: execution.tasks.succeeded, failed: execution.tasks.failed },
  };
}

/**
 * Connects the modules registered after the webhooks plugin (retention runs, replication
 * executions) to its notifier. Called once both are registered.
 */
export function connectWebhookSources(app: FastifyInstance): void {
  const notify = app.webhooks.notifications;
  app.jobs.lifecycle.onRetentionFinished((report, request) => notify.notify(report.project, retentionWebhookEvent(report, request)));
  app.replication.executions.onExecutionFinished((execution, projects) => {
    for (const project of projects) notify.notify(project, replicationWebhookEvent(execution));
  });
}
