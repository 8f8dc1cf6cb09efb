import fc from 'fast-check';

/**
 * Characters that have broken registries and databases before: NUL (PostgreSQL cannot
 * store it in text), lone UTF-16 surrogates (no UTF-8 form), byte-order marks, bidi
 * overrides, line separators, combining marks, percent signs that decode to nothing
 * valid, path separators and the delimiters of every header and scope grammar.
 */
export const SPECIALS = [
  '\u0000', '\ud800', '\udfff', '\ud83d', '\uffff', '\ufffe', '\ufeff', '\u202e', '\u2028', '\u0301',
  'é', '€', '😀', 'ǅ', 'İ', '\x7f', '\x01', '\x1b', '\t', ' ',
  '%00', '%', '%zz', '%ED%A0%80', '%C0%AE', '..', '/', '\\', '//', './',
  '"', "'", ',', ';', '=', '*', '$', '+', ':', '@', '?', '#', '&', '<', '>', '{', '}', '[', ']', '|',
] as const;

/** Numbers as JSON or query text: the edges of int4, int8, doubles and the safe-integer range. */
export const NUMBER_TEXTS = [
  '0', '-0', '1', '-1', '-2', '0.5', '1.0', '1e2', '1E+2', '0x10', '007', '+1', ' 1', '',
  '2147483647', '2147483648', '-2147483649', '4294967296', '10737418240', '53687091200',
  '9007199254740991', '9007199254740993', '9223372036854775807', '9223372036854775808', '-9223372036854775809',
  '18446744073709551616', '99999999999999999999', '1e308', '1e309', '-1e309', 'NaN', 'Infinity', '1_000',
] as const;

/** Any UTF-16 code unit, lone surrogates and control characters included. */
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

const overlong = fc
  .tuple(fc.constantFrom(256, 1025, 4097, 70_000), fc.constantFrom('a', 'é', '\u0000', '9', '\ud800', '/'))
  .map(([n, c]) => c.repeat(n));

/** What breaks storage most often comes up most often: NUL and lone surrogates. */
const special = fc.oneof({ arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff'), weight: 2 }, { arbitrary: fc.constantFrom(...SPECIALS), weight: 3 });

export const numberText = fc.oneof(
  { arbitrary: fc.constantFrom(...NUMBER_TEXTS), weight: 4 },
  { arbitrary: fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String), weight: 1 },
  { arbitrary: fc.double().map(String), weight: 1 },
);

/** A string built to break parsers, validators and storage. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 16 }), weight: 9 },
  { arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 16 }), weight: 6 },
  { arbitrary: special, weight: 6 },
  { arbitrary: fc.array(fc.oneof(special, fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')), weight: 9 },
  { arbitrary: numberText, weight: 3 },
  // Rare: an oversized value is refused before routing (431), which hides everything else in its request.
  { arbitrary: overlong, weight: 1 },
);

/** A valid value with something hostile inserted at some position (past validators that only check a prefix). */
export function spliced(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.oneof(special, hostileString), fc.nat()).map(([s, insert, at]) => {
    const i = at % (s.length + 1);
    return s.slice(0, i) + insert + s.slice(i);
  });
}

/**
 * UTF-8 bytes of a JavaScript string, lone surrogates kept as the three bytes their
 * code unit would take (WTF-8), so that they reach the server as invalid UTF-8 instead
 * of being replaced by U+FFFD on the way.
 */
export function wtf8(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      bytes.push(...Buffer.from(s.slice(i, i + 2), 'utf8'));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** How a value goes into a URL. */
export type UrlEncoding = 'component' | 'keep-slashes' | 'literal-percent' | 'double';

/**
 * Percent-encodes every byte but the unreserved ones. `keep-slashes` leaves `/` as is
 * (repository names); `literal-percent` leaves an existing `%xx` (or a stray `%`) for the
 * server to decode; `double` encodes twice.
 */
export function encodeUrlPart(value: string, how: UrlEncoding): string {
  const encode = (s: string, keep: (ch: string) => boolean) =>
    [...wtf8(s)].map((b) => {
      const ch = String.fromCharCode(b);
      return (b < 0x80 && UNRESERVED.test(ch)) || keep(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }).join('');
  switch (how) {
    case 'component':
      return encode(value, () => false);
    case 'keep-slashes':
      return encode(value, (ch) => ch === '/');
    case 'literal-percent':
      return encode(value, (ch) => ch === '%' || ch === '/');
    case 'double':
      return encode(encode(value, () => false), () => false);
  }
}

/**
 * A header value as bytes on the wire: UTF-8 (surrogates as WTF-8) read as Latin-1,
 * which is how HTTP clients put non-ASCII text in headers. Bytes no HTTP/1.1 header may
 * carry (NUL, CR, LF and other controls) cannot be sent and are dropped; NUL still
 * reaches the server inside Basic credentials, which are base64.
 */
export function headerValue(s: string): string {
  return [...wtf8(s)].filter((b) => b === 0x09 || (b >= 0x20 && b !== 0x7f)).map((b) => String.fromCharCode(b)).join('');
}
