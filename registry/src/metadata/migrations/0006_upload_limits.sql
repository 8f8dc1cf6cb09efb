-- Who opened each upload session, so that open sessions can be capped per principal
-- (a token subject, or the client's address when anonymous) and per repository.
ALTER TABLE uploads ADD COLUMN principal text COLLATE "C";
CREATE INDEX uploads_principal ON uploads (principal);
CREATE INDEX uploads_repository ON uploads (repository);
