import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Queryable } from '../../../registry/src/metadata/sql.js';
import { runConcurrently } from '../util/concurrency.js';

/**
 * Writes, straight into a registry's storage, what pushes through its API would have
 * left: copies of what one real push left behind. Pushing 100,000 tags one request at a
 * time would take longer than the whole benchmark; the listings only read this state.
 */
export interface Seeder {
  /** Adds tags `names` in `repository`, each naming the image its tag `tagged` (pushed through the API) names. */
  tags(repository: string, tagged: string, names: readonly string[]): Promise<void>;
  /** Adds repositories `names`, each holding what the API push left in `template`: its blob links, manifests and tags. */
  repositories(template: string, names: readonly string[]): Promise<void>;
}

/** Rows per statement: large enough to be quick, small enough for PGlite's message buffers. */
const BATCH = 10_000;

function batches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

/** What a repository holds, table by table, besides its row in `repositories`. */
const COPIED: Array<[table: string, columns: string[]]> = [
  ['repository_blobs', ['digest']],
  ['manifests', ['digest', 'media_type', 'content', 'artifact_type', 'subject', 'annotations']],
  ['manifest_references', ['manifest', 'child', 'kind']],
  ['tags', ['name', 'digest']],
];

/**
 * Wharf: the rows a push writes, copied with INSERT … SELECT from the rows of the pushed
 * template (the audit records and upload sessions a push also leaves are not listed by
 * anything measured here and are not copied).
 */
export function wharfSeeder(sql: Queryable): Seeder {
  return {
    async tags(repository, tagged, names) {
      for (const batch of batches(names)) {
        await sql.query(
          `INSERT INTO tags (repository, name, digest)
           SELECT $1, n, (SELECT digest FROM tags WHERE repository = $1 AND name = $2) FROM unnest($3::text[]) AS n`,
          [repository, tagged, batch],
        );
      }
    },
    async repositories(template, names) {
      for (const batch of batches(names)) {
        await sql.query('INSERT INTO repositories (name) SELECT unnest($1::text[])', [batch]);
        for (const [table, columns] of COPIED) {
          await sql.query(
            `INSERT INTO ${table} (repository, ${columns.join(', ')})
             SELECT n, ${columns.map((c) => `t.${c}`).join(', ')} FROM ${table} t CROSS JOIN unnest($2::text[]) AS n WHERE t.repository = $1`,
            [template, batch],
          );
        }
      }
    },
  };
}

interface Tree {
  /** Directories without subdirectories, relative. */
  leaves: string[];
  files: Array<{ path: string; content: Buffer }>;
}

async function readTree(dir: string, skip: readonly string[] = [], prefix = ''): Promise<Tree> {
  const tree: Tree = { leaves: [], files: [] };
  const entries = (await readdir(join(dir, prefix), { withFileTypes: true })).filter((e) => !skip.includes(e.name));
  if (!entries.some((e) => e.isDirectory())) tree.leaves.push(prefix);
  for (const entry of entries) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) {
      const sub = await readTree(dir, [], path);
      tree.leaves.push(...sub.leaves);
      tree.files.push(...sub.files);
    } else {
      tree.files.push({ path, content: await readFile(join(dir, path)) });
    }
  }
  return tree;
}

async function replay(tree: Tree, targets: readonly string[]): Promise<void> {
  await runConcurrently(targets.length, 32, async (i) => {
    const target = targets[i]!;
    for (const leaf of tree.leaves) await mkdir(join(target, leaf), { recursive: true });
    for (const file of tree.files) await writeFile(join(target, file.path), file.content);
  });
}

/**
 * distribution's filesystem layout (`registry/storage/paths.go`): a tag is the directory
 * `_manifests/tags/<tag>` (`current/link` and `index/sha256/<hex>/link`), a repository
 * the directory tree under its name. Copies of the directories distribution wrote for
 * the template's push, byte for byte.
 */
export function distributionSeeder(dataDir: string): Seeder {
  const repositories = join(dataDir, 'docker', 'registry', 'v2', 'repositories');
  return {
    async tags(repository, tagged, names) {
      const tags = join(repositories, repository, '_manifests', 'tags');
      const tree = await readTree(join(tags, tagged));
      await replay(tree, names.map((n) => join(tags, n)));
    },
    async repositories(template, names) {
      const tree = await readTree(join(repositories, template), ['_uploads']);
      await replay(tree, names.map((n) => join(repositories, n)));
    },
  };
}
