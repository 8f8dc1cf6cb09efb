/** Job kinds in the queue. */
export const JobKinds = {
  /** Garbage collection; payload: { dryRun, deleteUntagged }. */
  gc: 'gc',
  /** Upload purge and job-table upkeep; no payload. */
  maintenance: 'maintenance',
  /** One webhook delivery; payload: { deliveryId } (registry/src/webhooks/). */
  webhookDelivery: 'webhook-delivery',
} as const;
