-- Indexes that make every listing page one index range scan (see docs/listings.md).
-- A project's robots in name order, and the system robots (project_id NULL) in name order.
CREATE INDEX robots_project_name ON robots (project_id, name) WHERE project_id IS NOT NULL;
CREATE INDEX robots_system_name ON robots (name) WHERE project_id IS NULL;
-- The public projects in name order, for listings of what a non-member may read.
CREATE INDEX projects_public_name ON projects (name) WHERE public;
-- The administrators (are there others besides this one?).
CREATE INDEX users_admins ON users (username) WHERE admin;
-- The audit log filtered by actor or by resource, newest first.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
DROP INDEX audit_log_resource;
CREATE INDEX audit_log_resource ON audit_log (resource, id);
