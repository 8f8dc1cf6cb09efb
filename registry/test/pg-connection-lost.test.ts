// A PostgreSQL connection lost in the middle of a transaction, between two statements: the
// process lives on (the pool does not listen for errors on a client it has handed out), and
// every statement after it is DatabaseUnavailableError (an HTTP 503), including those
// node-postgres refuses on its own once the client has seen the connection break.
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { openPg } from '../src/metadata/pg.js';
import { DatabaseUnavailableError } from '../src/metadata/sql.js';
import { createTestDatabase } from './support/pg.js';

describe('node-postgres errors for a lost connection', () => {
  it('are DatabaseUnavailableError, for the statement that saw it break and for every one after', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    const sql = await openPg(url, { max: 1 });
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    const errors: unknown[] = [];
    try {
      await expect(
        sql.transaction(async (tx) => {
          const [{ pid }] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          // The first statement meets the broken connection, the second the client that knows it.
          for (let i = 0; i < 2; i++) await tx.query('SELECT 1').catch((err: unknown) => errors.push(err));
          throw errors.at(-1);
        }),
      ).rejects.toBeInstanceOf(DatabaseUnavailableError);
      expect(errors).toHaveLength(2);
      for (const err of errors) expect(err, String((err as Error).cause ?? err)).toBeInstanceOf(DatabaseUnavailableError);
      console.log(`errors after the connection was lost: ${errors.map((e) => String((e as Error).cause)).join('; ')}`);
      // The pool replaced the broken client.
      expect(await sql.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
      await sql.close();
    }
  });
});
