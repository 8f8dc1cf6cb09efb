/**
 * What webhooks report. Every event names its kind (`type`), when it happened and who
 * caused it; the rest depends on the kind. Scanning events are declared now so that a
 * scanner integration only has to call `notify`; the API accepts them once one exists.
 */

/** Event kinds a webhook policy may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'artifact.pushed',
  'artifact.pulled',
  'artifact.deleted',
  'tag.created',
  'quota.exceeded',
  'quota.warning',
  'replication.status',
  'retention.finished',
] as const;
export type SubscribableEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Reserved for a scanner integration (Harbor: SCANNING_COMPLETED, _FAILED, _STOPPED). */
export const SCAN_EVENT_TYPES = ['scan.completed', 'scan.failed', 'scan.stopped'] as const;
export type ScanEventType = (typeof SCAN_EVENT_TYPES)[number];

export type WebhookEventType = SubscribableEventType | ScanEventType;

/** One artifact an event is about; a batch of pulls carries many. */
export interface EventArtifact {
  digest?: string;
  tag?: string;
  mediaType?: string;
  size?: number;
}

interface EventBase {
  /** Who caused it: a user or robot name, `anonymous`, or `wharf` for the registry itself. */
  actor: string;
  at: Date;
}

export interface ArtifactWebhookEvent extends EventBase {
  type: 'artifact.pushed' | 'artifact.pulled' | 'artifact.deleted' | 'tag.created';
  /** Full repository name, project included. */
  repository: string;
  artifacts: EventArtifact[];
}

export interface QuotaWebhookEvent extends EventBase {
  type: 'quota.exceeded' | 'quota.warning';
  repository: string;
  /** The blob whose push was refused (exceeded) or that crossed the threshold (warning). */
  digest?: string;
  limitBytes: number;
  usedBytes: number;
  /** Bytes the refused or admitted blob needs. */
  neededBytes: number;
  /** The configured warning threshold (webhooks.quotaWarningPercent). */
  warningPercent: number;
}

export interface ReplicationWebhookEvent extends EventBase {
  type: 'replication.status';
  /** The replication rule's name. */
  rule: string;
  executionId: string;
  /** The execution's new status, e.g. running, succeeded, failed, stopped. */
  status: string;
  trigger?: string;
  /** Where the rule copies from and to, as the replication module names them. */
  source?: string;
  destination?: string;
  /** Task counts so far, when known. */
  tasks?: { total: number; succeeded: number; failed: number };
}

export interface RetentionWebhookEvent extends EventBase {
  type: 'retention.finished';
  executionId: string;
  /** succeeded or failed. */
  status: string;
  dryRun: boolean;
  retained: number;
  deleted: number;
  /** What was (or, in a dry run, would be) deleted; may be truncated by the caller. */
  deletedArtifacts?: (EventArtifact & { repository: string })[];
}

export interface ScanWebhookEvent extends EventBase {
  type: ScanEventType;
  repository: string;
  artifact: EventArtifact;
  scanner?: string;
  /** The scanner's summary (severity counts and the like), passed through as given. */
  summary?: Record<string, unknown>;
}

export type WebhookEvent = ArtifactWebhookEvent | QuotaWebhookEvent | ReplicationWebhookEvent | RetentionWebhookEvent | ScanWebhookEvent;

/**
 * The seam other modules call: replication, retention and (later) scanning report their
 * events through `notify`, which only buffers in memory; delivery happens on the job queue.
 */
export interface WebhookNotifications {
  notify(project: string, event: WebhookEvent): void;
}
