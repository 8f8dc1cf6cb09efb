import { createHash } from 'node:crypto';
import pg from 'pg';
import { DatabaseUnavailableError, type Queryable, type Sql } from './sql.js';

const INT8_OID = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

// SQLSTATE classes meaning "the database is not there right now", as opposed to a bad query.
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

function classify(err: unknown): unknown {
  const e = err as { code?: string; message?: string };
  const connectionGone = (e?.message ?? '').includes('Connection terminated') || (e?.message ?? '').includes('timeout exceeded when trying to connect');
  if ((e?.code && (UNAVAILABLE_CODES.has(e.code) || UNAVAILABLE_ERRNOS.has(e.code))) || connectionGone) {
    return new DatabaseUnavailableError(`PostgreSQL is unavailable: ${e?.message ?? String(err)}`, { cause: err });
  }
  return err;
}

/**
 * Parameterized statements are prepared once per connection, named by their text, so
 * PostgreSQL parses and plans each only once (the registry's SQL is a fixed set). A
 * schema change by another replica's migration can invalidate a prepared statement's
 * result type ("cached plan must not change result type"); that text is then run
 * unprepared from then on.
 */
class PreparedStatements {
  private readonly names = new Map<string, string>();
  private readonly unprepared = new Set<string>();

  config(text: string, params: readonly unknown[] | undefined): pg.QueryConfig {
    if (!params) return { text };
    if (this.unprepared.has(text)) return { text, values: params as unknown[] };
    let name = this.names.get(text);
    if (!name) this.names.set(text, (name = `wharf_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`));
    return { name, text, values: params as unknown[] };
  }

  /** Whether `err` means the prepared form of `text` is stale; if so it is never prepared again. */
  invalidated(text: string, err: unknown): boolean {
    const e = err as { code?: string; message?: string };
    if (e?.code !== '0A000' || !e.message?.includes('cached plan must not change result type')) return false;
    this.unprepared.add(text);
    return true;
  }
}

export interface PgOptions {
  max?: number;
  connectionTimeoutMillis?: number;
  statementTimeoutMillis?: number;
}

/** The production driver: a node-postgres pool. */
export async function openPg(connectionString: string, options: PgOptions = {}): Promise<Sql> {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMillis ?? 30_000,
    types: typeParsers,
    application_name: 'wharf-registry',
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const statements = new PreparedStatements();
  const query = async <Row>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[], inTransaction = false): Promise<Row[]> => {
    try {
      return (await client.query(statements.config(text, params))).rows as Row[];
    } catch (err) {
      // Outside a transaction the statement can simply run again, now unprepared; inside
      // one the transaction is aborted, and the caller's retry takes the unprepared path.
      if (statements.invalidated(text, err) && !inTransaction) return query(client, text, params);
      throw classify(err);
    }
  };
  return {
    driver: 'pg',
    query: (text, params) => query(pool, text, params),
    async transaction(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw classify(err);
      }
      const tx: Queryable = { query: (text, params) => query(client, text, params, true) };
      let broken = false;
      try {
        await tx.query('BEGIN');
        const result = await fn(tx);
        await tx.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
