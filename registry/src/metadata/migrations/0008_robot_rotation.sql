-- Robot secret rotation without downtime, and declarative management of robots (the
-- operator's RobotAccount resource):
-- * the secret a rotation replaced keeps authenticating until previous_secret_expires_at
--   (the rotation's grace window); a rotation with no grace clears both columns;
-- * managed_by records which object manages a robot, so a robot made by hand, or one that
--   another object manages, is never taken over silently.

ALTER TABLE robots ADD COLUMN previous_secret_hash text;
ALTER TABLE robots ADD COLUMN previous_secret_expires_at timestamptz;
ALTER TABLE robots ADD COLUMN managed_by text;
ALTER TABLE robots ADD CONSTRAINT robots_previous_secret_pair
  CHECK ((previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL));

-- When the current secret was set: a client that stored a secret can tell whether it is still
-- the current one without trying it.
ALTER TABLE robots ADD COLUMN secret_updated_at timestamptz NOT NULL DEFAULT now();
