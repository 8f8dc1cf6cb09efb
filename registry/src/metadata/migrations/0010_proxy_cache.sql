-- Proxy-cache projects: pull-through caches of another registry (docs/proxy-cache.md).
-- The upstream's password is kept here so that every replica can use it; the management
-- API never returns it.
CREATE TABLE proxy_caches (
  project_id            uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  provider              text NOT NULL CHECK (provider IN ('docker-hub', 'docker-registry', 'harbor', 'wharf', 'ghcr', 'quay', 'gcr', 'ecr', 'acr')),
  url                   text NOT NULL,
  username              text,
  password              text,
  insecure              boolean NOT NULL DEFAULT false,
  mirror_of             text[] NOT NULL DEFAULT '{}',
  manifest_ttl_seconds  integer NOT NULL CHECK (manifest_ttl_seconds >= 0),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Upstream host (as containerd names it in ?ns=) → the proxy project that mirrors it.
-- The primary key is what makes a host mirrored by one project at most.
CREATE TABLE proxy_mirror_hosts (
  host        text COLLATE "C" PRIMARY KEY,
  project_id  uuid NOT NULL REFERENCES proxy_caches (project_id) ON DELETE CASCADE
);
CREATE INDEX proxy_mirror_hosts_project ON proxy_mirror_hosts (project_id);

-- When a cached tag was last found current upstream; the manifest TTL counts from it.
CREATE TABLE proxy_tag_checks (
  repository  text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
  tag         text COLLATE "C" NOT NULL,
  checked_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, tag)
);

-- Blob fills in progress: one replica fetches a digest from upstream at a time, the
-- others wait for it. A replica that dies stops renewing its lease and another takes over.
CREATE TABLE proxy_fills (
  digest       text PRIMARY KEY,
  owner        text NOT NULL,
  lease_until  timestamptz NOT NULL
);
