-- Multi-tenancy: projects (the first path segment of a repository), users, members,
-- robot accounts and the audit log. IDs are UUIDs that never change.

CREATE TABLE projects (
  id             uuid PRIMARY KEY,
  name           text COLLATE "C" NOT NULL UNIQUE,
  public         boolean NOT NULL DEFAULT false,
  storage_limit  bigint NOT NULL DEFAULT -1 CHECK (storage_limit >= -1),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The project a repository belongs to, derived from its name.
ALTER TABLE repositories ADD COLUMN project text COLLATE "C" GENERATED ALWAYS AS (split_part(name, '/', 1)) STORED;
CREATE INDEX repositories_project ON repositories (project);

CREATE TABLE users (
  id             uuid PRIMARY KEY,
  username       text COLLATE "C" NOT NULL UNIQUE,
  password_hash  text NOT NULL,
  admin          boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
  project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, user_id)
);

-- Robots: `robot$<project>+<name>` (project_id set) or `robot$<name>` (system).
CREATE TABLE robots (
  id           uuid PRIMARY KEY,
  name         text COLLATE "C" NOT NULL UNIQUE,
  project_id   uuid REFERENCES projects (id) ON DELETE CASCADE,
  description  text NOT NULL DEFAULT '',
  secret_hash  text NOT NULL,
  disabled     boolean NOT NULL DEFAULT false,
  duration_days integer NOT NULL DEFAULT -1 CHECK (duration_days = -1 OR duration_days > 0),
  expires_at   timestamptz,
  permissions  jsonb NOT NULL DEFAULT '[]',
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
  id             bigserial PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  actor          text NOT NULL,
  action         text NOT NULL,
  resource_type  text NOT NULL,
  resource       text NOT NULL,
  project        text COLLATE "C",
  outcome        text NOT NULL CHECK (outcome IN ('success', 'failure')),
  detail         jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_resource ON audit_log (resource);
CREATE INDEX audit_log_project ON audit_log (project, id);
