-- Artifact lifecycle (docs/lifecycle.md): tag retention, tag immutability, pull times.

-- One retention policy per project: rules (JSON, see lifecycle/policies.ts) and an
-- optional cron schedule. A project without a row has no policy.
CREATE TABLE retention_policies (
  project_id  uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  rules       jsonb NOT NULL DEFAULT '[]',
  schedule    text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Tag immutability rules, and the project's protection of signed artifacts.
CREATE TABLE immutability_policies (
  project_id      uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  rules           jsonb NOT NULL DEFAULT '[]',
  protect_signed  boolean NOT NULL DEFAULT false,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- When the manifest was last pulled (GET), written in batches off the request path.
ALTER TABLE manifests ADD COLUMN pulled_at timestamptz;
