// Trusting a private CA for the PostgreSQL connection (`database.caFile`).
//
// node-postgres (pg 8.23 with pg-connection-string 2.14) takes a CA file only from the DSN's
// `sslrootcert=<file>`, and TLS settings parsed from a DSN replace the pool's `ssl` option
// wholesale, so a CA handed to the pool would be dropped as soon as the DSN says `sslmode=...`.
// The configured file is therefore added to the DSN as `sslrootcert`, and the driver's own
// sslmode rules apply unchanged (registry/CONFIG.md, "PostgreSQL TLS"). The driver reads the file
// for every new connection, so a CA replaced on disk is used without a restart.
// No driver module is imported here: the configuration checks the DSN before any driver loads.

/** Why `caFile` cannot be combined with `dsn`, or undefined when it can. Never repeats the DSN (it holds a password). */
export function caFileConflict(dsn: string): string | undefined {
  if (dsn.startsWith('/')) return 'a Unix-socket DSN has no TLS';
  const params = queryOf(dsn);
  if (params.has('sslrootcert')) return 'the DSN already names a CA file (sslrootcert=)';
  if (params.get('sslmode') === 'disable' || params.get('ssl') === 'false' || params.get('ssl') === '0') return 'the DSN turns TLS off (sslmode=disable or ssl=false)';
  return undefined;
}

/** `dsn` with `sslrootcert=<caFile>` added to its query; throws when they conflict (see caFileConflict). */
export function dsnWithCaFile(dsn: string, caFile: string): string {
  const conflict = caFileConflict(dsn);
  if (conflict) throw new Error(`database.caFile cannot be used: ${conflict}`);
  const hash = dsn.indexOf('#');
  const [base, fragment] = hash >= 0 ? [dsn.slice(0, hash), dsn.slice(hash)] : [dsn, ''];
  return `${base}${base.includes('?') ? '&' : '?'}sslrootcert=${encodeURIComponent(caFile)}${fragment}`;
}

function queryOf(dsn: string): URLSearchParams {
  const q = dsn.indexOf('?');
  if (q < 0) return new URLSearchParams();
  const hash = dsn.indexOf('#', q);
  return new URLSearchParams(dsn.slice(q + 1, hash >= 0 ? hash : undefined));
}
