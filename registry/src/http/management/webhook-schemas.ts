import { Type } from '@sinclair/typebox';
import { WEBHOOK_EVENT_TYPES } from '../../webhooks/events.js';
import { WEBHOOK_FORMATS } from '../../webhooks/formats.js';
import { HTTP_URL_PATTERN } from './url-pattern.js';

const EventType = Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)), { description: 'An event kind; CloudEvents type is wharf.<kind>' });
const Format = Type.Union(WEBHOOK_FORMATS.map((f) => Type.Literal(f)), { description: 'harbor: Harbor default payload (application/json); cloudevents: CloudEvents 1.0 structured (application/cloudevents+json)' });

export const Webhook = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    url: Type.String(),
    format: Format,
    events: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    authHeaderSet: Type.Boolean({ description: 'Whether an Authorization header value is stored; it is never returned' }),
    secretSet: Type.Boolean({ description: 'Whether an HMAC secret is stored; it is never returned' }),
    managedBy: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Webhook', description: 'A webhook policy of a project' },
);

export const WebhookInput = Type.Object(
  {
    url: Type.String({ maxLength: 2048, pattern: HTTP_URL_PATTERN, description: 'Target, http:// or https://; private addresses only when the registry allows them (webhooks.allowPrivateTargets)' }),
    format: Type.Optional(Format),
    events: Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length * 2, description: 'Events to send; pulls (artifact.pulled, batched) only when listed' }),
    enabled: Type.Optional(Type.Boolean({ description: 'Default true' })),
    authHeader: Type.Optional(Type.String({ maxLength: 4096, description: 'Write-only value of the Authorization header sent with each delivery; omitted keeps the stored one, "" removes it' })),
    secret: Type.Optional(Type.String({ maxLength: 4096, description: 'Write-only HMAC-SHA256 key: each delivery carries X-Wharf-Signature-256: sha256=<hex of the body\'s HMAC>; omitted keeps the stored one, "" removes it' })),
    managedBy: Type.Optional(Type.String({ maxLength: 512, description: 'Who manages the webhook declaratively; "" clears it' })),
  },
  { additionalProperties: false },
);

export const WebhookDelivery = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    eventType: Type.String(),
    eventId: Type.String({ description: 'The event id (CloudEvents id), the same for every webhook it went to' }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('retrying'), Type.Literal('delivered'), Type.Literal('failed')]),
    attempts: Type.Integer(),
    responseStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last answer, if any' }),
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WebhookDelivery', description: 'One event sent (or being sent) to one webhook' },
);

export const ProjectWebhookParams = Type.Object({ project: Type.String(), webhook: Type.String() });
