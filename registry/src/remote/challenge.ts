/** One `WWW-Authenticate` challenge of a registry: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface AuthChallenge {
  scheme: 'bearer' | 'basic' | string;
  params: Record<string, string>;
}

const PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/y;

/**
 * Parses the first challenge of a `WWW-Authenticate` header, leniently (registries in
 * the wild send unquoted values and stray spaces); undefined when there is none.
 */
export function parseAuthChallenge(header: string | string[] | undefined): AuthChallenge | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const head = /^\s*([A-Za-z][A-Za-z0-9._-]*)(?:\s+|$)/.exec(value);
  if (!head) return undefined;
  const params: Record<string, string> = {};
  PARAM.lastIndex = head[0].length;
  for (;;) {
    const start = PARAM.lastIndex;
    if (start >= value.length) break;
    const m = PARAM.exec(value);
    if (!m) break;
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  }
  return { scheme: head[1]!.toLowerCase(), params };
}
