import pg from 'pg';
import { DatabaseUnavailableError, type Queryable, type Sql } from './sql.js';
import { PreparedStatements, typeParsers } from './statements.js';

// SQLSTATE classes meaning "the database is not there right now", as opposed to a bad query.
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

// node-postgres's own errors (no SQLSTATE) for a connection that broke or closed, including the
// ones a client that already lost its connection gives every later query on it.
const CONNECTION_GONE = ['Connection terminated', 'timeout exceeded when trying to connect', 'Client has encountered a connection error and is not queryable', 'Client was closed and is not queryable'];

function classify(err: unknown): unknown {
  const e = err as { code?: string; message?: string };
  const connectionGone = CONNECTION_GONE.some((text) => (e?.message ?? '').includes(text));
  if ((e?.code && (UNAVAILABLE_CODES.has(e.code) || UNAVAILABLE_ERRNOS.has(e.code))) || connectionGone) {
    return new DatabaseUnavailableError(`PostgreSQL is unavailable: ${e?.message ?? String(err)}`, { cause: err });
  }
  return err;
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
      const name = params ? statements.nameFor(text) : undefined;
      const values = params as unknown[] | undefined;
      return (await client.query(name ? { name, text, values } : { text, values })).rows as Row[];
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
      // The pool listens for errors only on idle clients: a connection that breaks between two
      // statements would emit 'error' with no listener and bring the process down.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
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
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
