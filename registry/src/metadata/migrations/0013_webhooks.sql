-- Webhook policies and their delivery log (docs/webhooks.md). The auth header and the
-- HMAC secret are kept here so that every replica can deliver; the API never returns them.
CREATE TABLE webhooks (
  id           uuid PRIMARY KEY,
  project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  name         text COLLATE "C" NOT NULL,
  url          text NOT NULL,
  format       text NOT NULL CHECK (format IN ('harbor', 'cloudevents')),
  events       text[] NOT NULL,
  auth_header  text,
  secret       text,
  enabled      boolean NOT NULL DEFAULT true,
  managed_by   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, name)
);

-- One row per event sent to one webhook: the outbox the delivery job reads (body) and the
-- log the API lists (status, attempts, last error). `seq` orders the log and pages it.
CREATE TABLE webhook_deliveries (
  id               uuid PRIMARY KEY,
  seq              bigserial NOT NULL UNIQUE,
  webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_type       text NOT NULL,
  event_id         text NOT NULL,
  content_type     text NOT NULL,
  body             text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  response_status  integer,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, seq DESC);
