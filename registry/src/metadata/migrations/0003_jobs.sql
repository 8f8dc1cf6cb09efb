-- Background jobs, claimed with SELECT ... FOR UPDATE SKIP LOCKED by any replica.
-- A running job holds a lease; a worker that dies stops renewing it, and once it
-- expires another worker claims the job again (jobs are idempotent).

CREATE TABLE jobs (
  id            uuid PRIMARY KEY,
  kind          text NOT NULL,
  payload       jsonb NOT NULL DEFAULT '{}',
  -- Deduplication: at most one job per key, ever (e.g. one job per cron tick).
  dedupe_key    text UNIQUE,
  state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  attempts      integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  run_at        timestamptz NOT NULL DEFAULT now(),
  locked_by     text,
  lease_until   timestamptz,
  progress      jsonb,
  result        jsonb,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz
);
CREATE INDEX jobs_queued ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_kind_created ON jobs (kind, created_at);
