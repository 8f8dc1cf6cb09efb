import type { Exchange } from './exchange.js';
import type { FailureClass } from './explore.js';
import type { Finding } from './runner.js';

const PRINTABLE = /^[\x20-\x7e]*$/;

/** A shell word for `s` (bytes as Latin-1): plain quotes when printable, `$'…'` with escapes otherwise. */
function shellWord(s: string): string {
  if (PRINTABLE.test(s)) return `'${s.replace(/'/g, `'\\''`)}'`;
  return `$'${[...Buffer.from(s, 'latin1')].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}'`;
}

/** Long runs of one character shown once with a count, so overlong values stay readable. */
function squeeze(s: string, max = 400): string {
  const runs = s.replace(/(.{1,4}?)\1{15,}/gsu, (run, unit: string) => `${unit}…(${run.length / unit.length}×)`);
  return runs.length > max ? `${runs.slice(0, max)}…(${s.length} chars)` : runs;
}

function bodyText(body: Buffer): string {
  const text = body.toString('latin1');
  return PRINTABLE.test(text) ? squeeze(text) : `${body.length} bytes: ${squeeze(JSON.stringify(body.toString('utf8')))}`;
}

/** The request as a reader checks it (headers one per line) and as curl sends it (`$R` is the registry's URL). */
export function describeExchange(ex: Exchange, authorizationNote?: string): string {
  const r = ex.request;
  // Tokens and passwords of the run are named, not printed: the curl line reads them from $AUTH.
  const secret = authorizationNote !== undefined && /^(?:Bearer|Basic) </.test(authorizationNote);
  const lines = [`    ${r.method} ${squeeze(r.path)}`];
  for (const [k, v] of r.headers) lines.push(`    ${k}: ${k.toLowerCase() === 'authorization' && authorizationNote ? authorizationNote : squeeze(v)}`);
  if (r.body) lines.push(`    (${r.chunked ? 'chunked' : `${r.body.length} bytes`}) ${bodyText(r.body)}`);
  const answer = ex.status === undefined ? `no response (${ex.error})` : `${ex.status} ${bodyText(ex.body).slice(0, 300)}`;
  lines.push(`    → ${answer}`);
  const curl = ['curl -sS -i --path-as-is', '-X', r.method, `"$R"${shellWord(r.path)}`];
  for (const [k, v] of r.headers) {
    if (k.toLowerCase() === 'authorization' && secret) curl.push('-H', `"Authorization: $AUTH"`);
    else curl.push('-H', shellWord(`${k}: ${v}`));
  }
  if (r.body) {
    const body = r.body.toString('latin1');
    curl.push('--data-binary', body.length > 2000 ? `@body.bin  # ${r.body.length} bytes, as above` : shellWord(body));
    if (r.chunked) curl.push('-H', "'Transfer-Encoding: chunked'");
  }
  lines.push(`    ${curl.join(' ')}${secret ? `   # AUTH = ${authorizationNote}` : ''}`);
  return lines.join('\n');
}

function describeFinding(f: Finding): string {
  if (f.batch) return `${f.batch.map((b) => describeExchange(b.exchange, b.authorizationNote)).join('\n')}\n    ${f.detail.split('\n').join('\n    ')}`;
  return `${describeExchange(f.exchange, f.authorizationNote)}\n    ${f.detail.split('\n')[0]}`;
}

export function formatClasses(classes: FailureClass[], context: string): string {
  const parts = [`${classes.length} distinct failure class(es) ${context}:`];
  classes.forEach((cls, i) => {
    parts.push(`\n${i + 1}. ${cls.key}`);
    parts.push(`   seen ${cls.occurrences}×, first in run ${cls.runIndex}${cls.shrunk ? `; shrunk (path ${cls.shrinkSteps?.slice(0, 60)}) to:` : '; not shrunk, first seen as:'}`);
    parts.push(describeFinding(cls.shrunk ?? cls.first));
  });
  return parts.join('\n');
}
