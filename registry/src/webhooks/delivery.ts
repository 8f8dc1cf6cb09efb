import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { JobContext, JobHandler } from '../jobs/worker.js';
import type { DeliveryToSend, WebhookStore } from '../metadata/webhooks.js';
import { REGISTRY_VERSION } from '../version.js';
import { guardedLookup, isPrivateAddress } from './targets.js';

/** The signature header: `sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the webhook's secret>`. */
export const SIGNATURE_HEADER = 'X-Wharf-Signature-256';
export const EVENT_HEADER = 'X-Wharf-Event';
export const DELIVERY_HEADER = 'X-Wharf-Delivery';

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface DeliverySettings {
  /** Longest a single attempt may take, connection to the end of the response. */
  timeoutMs: number;
  allowPrivateTargets: boolean;
  /** First retry delay, doubled per attempt. */
  retryDelaySeconds: number;
}

/** Only the beginning of a receiver's error answer is kept in the log. */
const MAX_ERROR_TEXT = 200;

class AttemptFailed extends Error {}

/**
 * Sends one delivery per job: POST of the stored body with the content type, the auth
 * header and the HMAC signature, bounded by the delivery timeout. Each attempt is written
 * to the delivery log; a failed one throws so the queue retries it with backoff, until
 * the job's attempts run out and the delivery is marked failed.
 */
export class DeliveryHandler implements JobHandler {
  readonly retryDelaySeconds: number;
  private readonly agent: Agent;

  constructor(
    private readonly store: WebhookStore,
    private readonly settings: DeliverySettings,
  ) {
    this.retryDelaySeconds = settings.retryDelaySeconds;
    this.agent = new Agent({
      connect: { lookup: guardedLookup(settings.allowPrivateTargets), timeout: settings.timeoutMs },
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  async run(payload: Record<string, unknown>, context: JobContext): Promise<unknown> {
    const found = await this.store.deliveryToSend(String(payload.deliveryId));
    // The webhook (and with it its log) was deleted after the event was queued.
    if (!found) return { skipped: 'webhook deleted' };
    const { delivery, webhook } = found;
    const attempts = context.job.attempts;
    if (!webhook.enabled) {
      await this.store.recordAttempt(delivery.id, { status: 'failed', attempts: delivery.attempts, responseStatus: null, error: 'webhook disabled before delivery' });
      return { skipped: 'webhook disabled' };
    }
    let responseStatus: number | null = null;
    try {
      responseStatus = await this.send(found, context.signal);
      await this.store.recordAttempt(delivery.id, { status: 'delivered', attempts, responseStatus, error: null });
      return { status: responseStatus, attempts };
    } catch (err) {
      const message = (err as Error).message;
      responseStatus = (err as { statusCode?: number }).statusCode ?? null;
      const final = attempts >= context.job.maxAttempts;
      await this.store.recordAttempt(delivery.id, { status: final ? 'failed' : 'retrying', attempts, responseStatus, error: message });
      throw new AttemptFailed(`webhook ${webhook.name}: ${message}`);
    }
  }

  /** Resolves with the 2xx status, or throws with what went wrong (never echoing the credentials). */
  private async send({ delivery, webhook, body, contentType }: DeliveryToSend, jobSignal: AbortSignal): Promise<number> {
    const url = new URL(webhook.url);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!this.settings.allowPrivateTargets && isIP(host) && isPrivateAddress(host)) throw new Error(`webhook target ${host} is a private address`);
    const headers: Record<string, string> = {
      'content-type': contentType,
      'user-agent': `wharf-webhook/${REGISTRY_VERSION}`,
      [EVENT_HEADER]: delivery.eventType,
      [DELIVERY_HEADER]: delivery.id,
    };
    if (webhook.authHeader) headers.authorization = webhook.authHeader;
    if (webhook.secret) headers[SIGNATURE_HEADER] = signature(webhook.secret, body);
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    const signal = AbortSignal.any([jobSignal, timeout]);
    try {
      const response = await request(url, { method: 'POST', headers, body, signal, dispatcher: this.agent });
      const text = (await response.body.text()).slice(0, MAX_ERROR_TEXT);
      if (response.statusCode >= 200 && response.statusCode < 300) return response.statusCode;
      const error = new Error(`receiver answered ${response.statusCode}${text ? `: ${text}` : ''}`);
      throw Object.assign(error, { statusCode: response.statusCode });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== undefined) throw err;
      if (timeout.aborted) throw new Error(`timed out after ${this.settings.timeoutMs} ms`);
      if (jobSignal.aborted) throw new Error('delivery interrupted: the worker stopped');
      const e = err as Error & { cause?: Error; code?: string };
      throw new Error(e.cause?.message ?? e.message ?? String(err));
    }
  }

  /** Drops open connections (a hanging receiver must not hold shutdown). */
  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
