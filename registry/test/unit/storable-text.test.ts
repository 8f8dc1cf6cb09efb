import { describe, expect, it } from 'vitest';
import { findUnstorableText, isStorableText, printable, toStorableText } from '../../src/storable-text.js';

describe('text PostgreSQL can store', () => {
  it.each([
    ['plain ASCII', 'library/alpine', true],
    ['the empty string', '', true],
    ['latin1 and other BMP text', 'ünïcödé — ✓', true],
    ['a surrogate pair (an astral character)', 'ship 🚢', true],
    ['control characters other than NUL', '\u0001\u001f\u007f', true],
    ['U+FFFD itself', '\ufffd', true],
    ['a NUL', 'a\u0000b', false],
    ['a lone high surrogate', 'a\ud83d', false],
    ['a lone low surrogate', '\udea2b', false],
    ['a pair in the wrong order', '\udea2\ud83d', false],
  ])('%s → %s', (_name, text, storable) => {
    expect(isStorableText(text)).toBe(storable);
  });

  it('names the first unstorable string or key by its path', () => {
    expect(findUnstorableText({ a: 'ok', b: [{ c: 'ok' }, { d: 'x\u0000' }] })).toBe('b[1].d');
    expect(findUnstorableText({ permissions: [{ namespace: '\ud800' }] })).toBe('permissions[0].namespace');
    expect(findUnstorableText({ ok: 1, ['k\u0000']: 'v' })).toBe('k\ufffd (a key)');
    expect(findUnstorableText('\u0000')).toBe('(root)');
    expect(findUnstorableText(['ok', 'ok', '\udc00'])).toBe('[2]');
  });

  it('passes storable values, numbers, booleans, null and binary data', () => {
    expect(findUnstorableText({ a: 'ok', n: 1, b: true, z: null, u: undefined, list: ['🚢', 2] })).toBeUndefined();
    expect(findUnstorableText(Buffer.from([0, 0xff, 0xed, 0xa0, 0x80]))).toBeUndefined();
    expect(findUnstorableText(undefined)).toBeUndefined();
  });

  it('walks null-prototype objects (parsed query strings)', () => {
    const query = Object.assign(Object.create(null) as Record<string, unknown>, { last: 'a\u0000' });
    expect(findUnstorableText(query)).toBe('last');
  });

  it('walks nesting far deeper than the call stack without overflowing, and shortens the path it reports', () => {
    let deep: unknown = 'x\u0000';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findUnstorableText(deep)).toBe(`${'[0]'.repeat(200_000).slice(0, 200)}…`);
  });

  it('shows unstorable characters as U+FFFD and shortens what it echoes', () => {
    expect(printable('a\u0000b\ud800')).toBe('a\ufffdb\ufffd');
    expect(toStorableText('🚢\ud83d')).toBe('🚢\ufffd');
    expect(isStorableText(toStorableText('\u0000\udfff\ud800x'))).toBe(true);
    expect(printable('x'.repeat(150), 100)).toBe(`${'x'.repeat(100)}…`);
  });
});
