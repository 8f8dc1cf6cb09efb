/**
 * The one database interface. Both drivers (embedded PGlite and node-postgres) speak
 * PostgreSQL's dialect and run the same migrations; stores are written against this.
 */
export interface Queryable {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

export interface Sql extends Queryable {
  readonly driver: 'pglite' | 'pg';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** A failure this driver cannot recover from without a restart (the embedded database's thread died). */
  fatal?(): Error | undefined;
  /** Collects garbage where the database runs in this process (the embedded database's thread). */
  collectGarbage?(): void;
}

export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}
