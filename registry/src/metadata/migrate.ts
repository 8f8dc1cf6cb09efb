import { readdir, readFile } from 'node:fs/promises';
import type { Sql } from './sql.js';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
// Arbitrary constant: the advisory lock key that serializes migrations across replicas.
const MIGRATION_LOCK_KEY = 4_711_2024;

export interface Migration {
  version: string;
  sql: string;
}

export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (file) => ({ version: file.replace(/\.sql$/, ''), sql: await readFile(new URL(file, dir), 'utf8') })));
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so replicas
 * starting together apply each migration exactly once. Returns the versions applied.
 */
export async function migrate(sql: Sql, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  return sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await tx.query<{ version: string }>('SELECT version FROM schema_migrations')).map((r) => r.version));
    const applied: string[] = [];
    for (const m of all) {
      if (done.has(m.version)) continue;
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
      applied.push(m.version);
    }
    return applied;
  });
}

/**
 * Splits a migration file into statements at top-level semicolons, skipping `--`
 * comments and keeping quoted strings and dollar-quoted bodies (`$$ … $$`, `$fn$ … $fn$`)
 * whole, so migrations may define functions and triggers.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    if (rest.startsWith('--')) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end + 1;
      current += '\n';
      continue;
    }
    const dollar = /^\$[A-Za-z_]*\$/.exec(rest);
    if (dollar) {
      const close = text.indexOf(dollar[0], i + dollar[0].length);
      const end = close === -1 ? text.length : close + dollar[0].length;
      current += text.slice(i, end);
      i = end;
      continue;
    }
    if (text[i] === "'") {
      let end = i + 1;
      while (end < text.length && !(text[end] === "'" && text[end + 1] !== "'")) end += text[end] === "'" ? 2 : 1;
      current += text.slice(i, end + 1);
      i = end + 1;
      continue;
    }
    if (text[i] === ';') {
      if (current.trim()) statements.push(current.trim());
      current = '';
      i++;
      continue;
    }
    current += text[i];
    i++;
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}
