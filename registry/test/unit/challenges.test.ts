import { validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatChallenge, quotedString } from '../../src/http/challenges.js';
import { parseChallenge, QUOTED_STRING } from '../support/challenge.js';

const QUOTED = new RegExp(`^${QUOTED_STRING}$`, 's');
/** Characters a quoted-string can carry as they are (HTAB, SP, VCHAR); obs-text is not generated. */
const CARRIED = /^[\t\x20-\x7e]*$/;
const unquote = (q: string) => q.slice(1, -1).replace(/\\(.)/gs, '$1');
/** Any text: every code point, and lone surrogates (any UTF-16 unit). */
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 64 }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 64 }));
const codePoints = (s: string) => [...s].length;

describe('RFC 7230 quoted-string for challenge parameters', () => {
  it('escapes the quote and the backslash', () => {
    expect(quotedString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quotedString('')).toBe('""');
    expect(quotedString('http://h:5000/token')).toBe('"http://h:5000/token"');
  });

  it('replaces what no header may carry (controls, DEL, non-ASCII) instead of passing it on', () => {
    expect(quotedString('a\r\nb\u0000c\u007fd\u00e9e\u2028f\ud800')).toBe('"a??b?c?d?e?f?"');
    expect(quotedString('tab\there')).toBe('"tab\there"');
  });

  it('always yields a valid quoted-string that Node sends and that unquotes to the input where the input was sendable', () => {
    fc.assert(
      fc.property(anyText, (s) => {
        const q = quotedString(s);
        expect(q).toMatch(QUOTED);
        expect(() => validateHeaderValue('www-authenticate', q)).not.toThrow();
        if (CARRIED.test(s)) expect(unquote(q)).toBe(s);
        else expect(codePoints(unquote(q))).toBe(codePoints(s));
      }),
      { seed: 16, numRuns: 2000 },
    );
  });

  it('formats a challenge that a strict parser reads back parameter for parameter, in order, leaving out unset ones', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 40 }), fc.string({ unit: 'binary-ascii', maxLength: 40 }), (realm, description) => {
        const header = formatChallenge('Bearer', { realm, service: 'wharf', scope: undefined, error: 'insufficient_scope', error_description: description });
        expect(() => validateHeaderValue('www-authenticate', header)).not.toThrow();
        const parsed = parseChallenge(header);
        expect(parsed.scheme).toBe('Bearer');
        expect(Object.keys(parsed.params)).toEqual(['realm', 'service', 'error', 'error_description']);
        if (CARRIED.test(realm)) expect(parsed.params.realm).toBe(realm);
        if (CARRIED.test(description)) expect(parsed.params.error_description).toBe(description);
      }),
      { seed: 16, numRuns: 1000 },
    );
    expect(formatChallenge('Bearer', { realm: 'http://r/token', service: 's', scope: 'repository:a/b:pull' })).toBe('Bearer realm="http://r/token",service="s",scope="repository:a/b:pull"');
  });
});
