-- Replication (docs/replication.md): remote registries, policies, executions and tasks.
-- A registry's password is kept here so that every replica can use it; the management
-- API never returns it.
CREATE TABLE replication_registries (
  id                 uuid PRIMARY KEY,
  name               text COLLATE "C" NOT NULL UNIQUE,
  provider           text NOT NULL,
  url                text NOT NULL,
  username           text,
  password           text,
  insecure           boolean NOT NULL DEFAULT false,
  description        text NOT NULL DEFAULT '',
  health_status      text NOT NULL DEFAULT 'unknown' CHECK (health_status IN ('unknown', 'healthy', 'unhealthy')),
  health_message     text NOT NULL DEFAULT '',
  health_checked_at  timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The policy's settings (mode, filters, destination, trigger, flags) are one JSON
-- document validated by the API; the registry is a real reference so that it cannot be
-- deleted from under a policy.
CREATE TABLE replication_policies (
  id           uuid PRIMARY KEY,
  name         text COLLATE "C" NOT NULL UNIQUE,
  registry_id  uuid NOT NULL REFERENCES replication_registries (id) ON DELETE RESTRICT,
  spec         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE replication_executions (
  id          uuid PRIMARY KEY,
  seq         bigserial NOT NULL UNIQUE,
  policy_id   uuid NOT NULL REFERENCES replication_policies (id) ON DELETE CASCADE,
  trigger     text NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'eventBased')),
  -- For an event-based execution: the one artifact event it replicates.
  event       jsonb,
  status      text NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'InProgress', 'Succeeded', 'Failed', 'Stopped')),
  -- Set once every task exists (planning may run again after a crash; tasks are keyed).
  planned     boolean NOT NULL DEFAULT false,
  message     text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  ended_at    timestamptz
);
CREATE INDEX replication_executions_policy ON replication_executions (policy_id, seq DESC);

CREATE TABLE replication_tasks (
  id               uuid PRIMARY KEY,
  seq              bigserial NOT NULL UNIQUE,
  execution_id     uuid NOT NULL REFERENCES replication_executions (id) ON DELETE CASCADE,
  -- Identifies the task within its execution, so that planning again creates no duplicate.
  key              text NOT NULL,
  operation        text NOT NULL CHECK (operation IN ('copy', 'delete')),
  src_repository   text NOT NULL,
  src_digest       text,
  tags             text[] NOT NULL DEFAULT '{}',
  dst_repository   text NOT NULL,
  status           text NOT NULL DEFAULT 'Pending' CHECK (status IN ('Pending', 'InProgress', 'Succeeded', 'Failed', 'Stopped')),
  attempts         integer NOT NULL DEFAULT 0,
  bytes            int8 NOT NULL DEFAULT 0,
  -- Where an interrupted blob upload stands (destination upload location and offset).
  checkpoint       jsonb,
  log              text NOT NULL DEFAULT '',
  message          text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  ended_at         timestamptz,
  UNIQUE (execution_id, key)
);
CREATE INDEX replication_tasks_execution ON replication_tasks (execution_id, seq);
CREATE INDEX replication_tasks_open ON replication_tasks (execution_id) WHERE status IN ('Pending', 'InProgress');
