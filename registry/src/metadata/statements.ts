import { createHash } from 'node:crypto';
import pgTypes from 'pg-types';

const INT8_OID = 20;

/**
 * Result types, the same on both drivers: node-postgres's parsers (bytea as Buffer,
 * timestamptz as Date, jsonb parsed, arrays as arrays), except int8 as a Number
 * (sizes and counts stay far below 2^53).
 */
export const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pgTypes.getTypeParser(oid, format);
  },
};

const MAX_PREPARED = 10_000;

/**
 * Names for prepared statements. Parameterized statements are prepared once per
 * connection, named by their text, so PostgreSQL parses and plans each only once (the
 * registry's SQL is a fixed set; past MAX_PREPARED texts, new ones run unprepared).
 * A statement whose result type a schema change invalidated ("cached plan must not
 * change result type", e.g. another replica's migration during a rolling upgrade)
 * runs unprepared from then on.
 */
export class PreparedStatements {
  private readonly names = new Map<string, string>();
  private readonly unprepared = new Set<string>();

  /** The statement's name, or undefined when it should run unprepared. */
  nameFor(text: string): string | undefined {
    if (this.unprepared.has(text)) return undefined;
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_PREPARED) {
      name = `wharf_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
      this.names.set(text, name);
    }
    return name;
  }

  /** Whether `err` means the prepared form of `text` is stale; if so it is never prepared again. */
  invalidated(text: string, err: unknown): boolean {
    const e = err as { code?: string; message?: string };
    if (e?.code !== '0A000' || !e.message?.includes('cached plan must not change result type')) return false;
    this.unprepared.add(text);
    return true;
  }
}
