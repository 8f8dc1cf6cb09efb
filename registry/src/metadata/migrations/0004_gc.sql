-- Online garbage collection.
-- blobs.pushed_at: the last time a push wrote the blob's storage object; the grace
-- window counts from it. blobs.deleting_since: set while garbage collection removes
-- the storage object; a push of the same digest waits until the row is gone.
ALTER TABLE blobs ADD COLUMN pushed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE blobs ADD COLUMN deleting_since timestamptz;
CREATE INDEX blobs_pushed_at ON blobs (pushed_at);
-- repository_blobs.created_at is refreshed when a push links the blob again, so it
-- reads as "last linked"; links older than the grace window and unreferenced are swept.
CREATE INDEX repository_blobs_created_at ON repository_blobs (created_at);
CREATE INDEX manifests_created_at ON manifests (created_at);
