/**
 * A strict parser for one RFC 7235 challenge (`scheme param=value, ...`), written from the
 * RFC's grammar and independent of the registry's formatter: anything it refuses is a
 * header a careful client could misread.
 */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** RFC 7230 quoted-string: qdtext and quoted-pair. */
export const QUOTED_STRING = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string): Challenge {
  const head = new RegExp(`^(${TOKEN}) +(.+)$`, 's').exec(header);
  if (!head) throw new Error(`not a challenge: ${JSON.stringify(header)}`);
  const param = new RegExp(`^(${TOKEN})=(${TOKEN}|${QUOTED_STRING})(?:[ \\t]*,[ \\t]*(?=.)|$)`, 's');
  const params: Record<string, string> = {};
  let rest = head[2]!;
  while (rest.length > 0) {
    const m = param.exec(rest);
    if (!m) throw new Error(`malformed auth-param at ${JSON.stringify(rest)} in ${JSON.stringify(header)}`);
    const key = m[1]!.toLowerCase();
    if (key in params) throw new Error(`duplicate auth-param ${key} in ${JSON.stringify(header)}`);
    params[key] = m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/\\(.)/gs, '$1') : m[2]!;
    rest = rest.slice(m[0].length);
  }
  return { scheme: head[1]!, params };
}
