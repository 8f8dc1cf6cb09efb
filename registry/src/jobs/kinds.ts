/** Job kinds in the queue. */
export const JobKinds = {
  /** Garbage collection; payload: { dryRun, deleteUntagged }. */
  gc: 'gc',
  /** Upload purge and job-table upkeep; no payload. */
  maintenance: 'maintenance',
  /** One webhook delivery; payload: { deliveryId } (registry/src/webhooks/). */
  webhookDelivery: 'webhook-delivery',
  /** Tag retention of one project; payload: { project, dryRun, trigger, actor }. */
  retention: 'retention',
} as const;
