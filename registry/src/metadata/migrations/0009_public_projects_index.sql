-- The public projects in name order, as (public, name) rather than (name) WHERE public: with
-- both columns in the index, `public AND name > $1` is entirely an index condition, so even a
-- plan cached while the table was small (PGlite never runs ANALYZE) cannot prefer walking the
-- unique (name) index and filtering out the private projects (docs/listings.md).
DROP INDEX projects_public_name;
CREATE INDEX projects_public_name ON projects (public, name);
