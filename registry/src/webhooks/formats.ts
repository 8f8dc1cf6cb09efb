import { CloudEvent, HTTP } from 'cloudevents';
import type { EventArtifact, WebhookEvent, WebhookEventType } from './events.js';

export const WEBHOOK_FORMATS = ['harbor', 'cloudevents'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** Harbor's names for the event kinds (its "webhook event type"); tag.created is Wharf's own. */
const HARBOR_TYPES: Record<WebhookEventType, string> = {
  'artifact.pushed': 'PUSH_ARTIFACT',
  'artifact.pulled': 'PULL_ARTIFACT',
  'artifact.deleted': 'DELETE_ARTIFACT',
  'tag.created': 'CREATE_TAG',
  'quota.exceeded': 'QUOTA_EXCEED',
  'quota.warning': 'QUOTA_WARNING',
  'replication.status': 'REPLICATION',
  'retention.finished': 'TAG_RETENTION',
  'scan.completed': 'SCANNING_COMPLETED',
  'scan.failed': 'SCANNING_FAILED',
  'scan.stopped': 'SCANNING_STOPPED',
};

/** What rendering needs besides the event. */
export interface RenderContext {
  /** The event's id, the same for every webhook it goes to. */
  eventId: string;
  project: string;
  projectPublic: boolean;
  /** The webhook policy's name (CloudEvents `source`). */
  webhook: string;
  /** host[:port] clients pull from, for resource_url. */
  registryHost: string;
}

export interface RenderedBody {
  contentType: string;
  body: string;
}

const seconds = (at: Date) => Math.floor(at.getTime() / 1000);

function resourceUrl(host: string, repository: string, artifact: EventArtifact): string {
  if (artifact.tag) return `${host}/${repository}:${artifact.tag}`;
  return artifact.digest ? `${host}/${repository}@${artifact.digest}` : `${host}/${repository}`;
}

function harborResource(host: string, repository: string, artifact: EventArtifact) {
  return {
    ...(artifact.digest && { digest: artifact.digest }),
    ...(artifact.tag && { tag: artifact.tag }),
    resource_url: resourceUrl(host, repository, artifact),
    ...(artifact.mediaType && { media_type: artifact.mediaType }),
    ...(artifact.size !== undefined && { size: artifact.size }),
  };
}

function harborRepository(context: RenderContext, repository: string) {
  const slash = repository.indexOf('/');
  return {
    name: slash < 0 ? repository : repository.slice(slash + 1),
    namespace: context.project,
    repo_full_name: repository,
    repo_type: context.projectPublic ? 'public' : 'private',
  };
}

/** Harbor's `event_data` for an event: resources[] and repository, plus what the kind adds. */
export function harborEventData(event: WebhookEvent, context: RenderContext): Record<string, unknown> {
  const host = context.registryHost;
  switch (event.type) {
    case 'artifact.pushed':
    case 'artifact.pulled':
    case 'artifact.deleted':
    case 'tag.created':
      return { resources: event.artifacts.map((a) => harborResource(host, event.repository, a)), repository: harborRepository(context, event.repository) };
    case 'quota.exceeded':
    case 'quota.warning': {
      const details =
        event.type === 'quota.exceeded'
          ? `storage quota of project ${context.project} exceeded: ${event.usedBytes} of ${event.limitBytes} bytes used, a blob of ${event.neededBytes} bytes was refused`
          : `storage quota of project ${context.project} passed ${event.warningPercent}%: ${event.usedBytes + event.neededBytes} of ${event.limitBytes} bytes used`;
      return {
        resources: [harborResource(host, event.repository, event.digest ? { digest: event.digest } : {})],
        repository: harborRepository(context, event.repository),
        custom_attributes: { Details: details, limit_bytes: event.limitBytes, used_bytes: event.usedBytes, needed_bytes: event.neededBytes, warning_percent: event.warningPercent },
      };
    }
    case 'replication.status':
      return {
        replication: {
          policy_name: event.rule,
          execution_id: event.executionId,
          job_status: event.status,
          ...(event.trigger && { trigger_type: event.trigger }),
          ...(event.source && { src_resource: event.source }),
          ...(event.destination && { dest_resource: event.destination }),
          ...(event.tasks && { tasks: event.tasks }),
          execution_timestamp: seconds(event.at),
        },
      };
    case 'retention.finished':
      return {
        retention: {
          execution_id: event.executionId,
          project_name: context.project,
          result: event.status,
          dry_run: event.dryRun,
          retained: event.retained,
          total: event.retained + event.deleted,
          deleted_artifact: (event.deletedArtifacts ?? []).map((a) => harborResource(host, a.repository, a)),
        },
      };
    case 'scan.completed':
    case 'scan.failed':
    case 'scan.stopped':
      return {
        resources: [{ ...harborResource(host, event.repository, event.artifact), ...(event.summary && { scan_overview: event.summary }) }],
        repository: harborRepository(context, event.repository),
        ...(event.scanner && { scanner: event.scanner }),
      };
  }
}

/** Harbor's default payload: type, occur_at (Unix seconds), operator, event_data. */
export function renderHarbor(event: WebhookEvent, context: RenderContext): RenderedBody {
  const payload = { type: HARBOR_TYPES[event.type], occur_at: seconds(event.at), operator: event.actor, event_data: harborEventData(event, context) };
  return { contentType: 'application/json', body: JSON.stringify(payload) };
}

/**
 * CloudEvents 1.0, structured mode: type `wharf.<kind>`, source the webhook policy, the
 * Harbor event_data as `data` (same field names), the actor as the `operator` extension.
 */
export function renderCloudEvent(event: WebhookEvent, context: RenderContext): RenderedBody {
  const cloudEvent = new CloudEvent({
    specversion: '1.0',
    id: context.eventId,
    type: `wharf.${event.type}`,
    source: `/projects/${context.project}/webhooks/${context.webhook}`,
    time: event.at.toISOString(),
    datacontenttype: 'application/json',
    ...('repository' in event && { subject: event.repository }),
    operator: event.actor,
    data: harborEventData(event, context),
  });
  const message = HTTP.structured(cloudEvent);
  return { contentType: 'application/cloudevents+json', body: String(message.body) };
}

export function render(format: WebhookFormat, event: WebhookEvent, context: RenderContext): RenderedBody {
  return format === 'cloudevents' ? renderCloudEvent(event, context) : renderHarbor(event, context);
}
