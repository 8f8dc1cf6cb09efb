-- Repositories, blob links, manifests, tags, the referrers subject index and upload sessions.
-- Names and tags use the "C" collation so that ORDER BY and "> last" follow byte order,
-- which is the lexical order the distribution-spec asks for in listings.

CREATE TABLE repositories (
  name        text COLLATE "C" PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per blob present in storage.
CREATE TABLE blobs (
  digest      text PRIMARY KEY,
  size        bigint NOT NULL CHECK (size >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A blob is visible in a repository only through a link (push or mount).
CREATE TABLE repository_blobs (
  repository  text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
  digest      text NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- Manifests are kept byte-exact in `content`.
CREATE TABLE manifests (
  repository     text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
  digest         text NOT NULL,
  media_type     text NOT NULL,
  content        bytea NOT NULL,
  artifact_type  text,
  subject        text,
  annotations    jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_subject ON manifests (repository, subject) WHERE subject IS NOT NULL;

-- What each manifest references: its blobs (config, layers) and child manifests.
CREATE TABLE manifest_references (
  repository  text COLLATE "C" NOT NULL,
  manifest    text NOT NULL,
  child       text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('blob', 'manifest')),
  PRIMARY KEY (repository, manifest, child),
  FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_child ON manifest_references (child);

CREATE TABLE tags (
  repository  text COLLATE "C" NOT NULL,
  name        text COLLATE "C" NOT NULL,
  digest      text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, name),
  FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);

-- Upload sessions survive restarts and are shared by every replica.
CREATE TABLE uploads (
  id          uuid PRIMARY KEY,
  repository  text COLLATE "C" NOT NULL,
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  state       jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_updated_at ON uploads (updated_at);
