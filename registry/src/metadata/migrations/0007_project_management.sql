-- Declarative management of projects (the operator's Project resource):
-- which object manages a project, and group members (stored now; they grant access once
-- identities carry groups).

ALTER TABLE projects ADD COLUMN managed_by text;

CREATE TABLE group_members (
  project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  group_name  text COLLATE "C" NOT NULL,
  role        text NOT NULL CHECK (role IN ('projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, group_name)
);
