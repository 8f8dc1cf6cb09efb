import { describe, expect, it } from 'vitest';
import { acceptsManifest } from '../../src/http/distribution/manifests.js';
import { rewriteDistributionUrl, splitResourcePath } from '../../src/http/distribution/route-paths.js';
import { interpretRange, parseContentRange } from '../../src/http/ranges.js';
import { parsePage } from '../../src/services/listings.js';

describe('distribution paths', () => {
  it.each([
    ['/v2/a/b/manifests/latest', { name: 'a/b', kind: 'manifests', rest: 'manifests/latest' }],
    ['/v2/a/blobs/uploads/', { name: 'a', kind: 'uploads', rest: 'blobs/uploads/' }],
    ['/v2/a/blobs/uploads', { name: 'a', kind: 'uploads', rest: 'blobs/uploads' }],
    ['/v2/a/blobs/uploads/123', { name: 'a', kind: 'uploads', rest: 'blobs/uploads/123' }],
    ['/v2/a/blobs/sha256:x', { name: 'a', kind: 'blobs', rest: 'blobs/sha256:x' }],
    ['/v2/blobs/manifests/x/tags/list', { name: 'blobs/manifests/x', kind: 'tags', rest: 'tags/list' }],
    ['/v2/a/referrers/sha256:x', { name: 'a', kind: 'referrers', rest: 'referrers/sha256:x' }],
  ])('splits %s', (path, expected) => {
    expect(splitResourcePath(path)).toEqual(expected);
  });

  it.each(['/v2/', '/v2/_catalog', '/v2/manifests/x', '/healthz', '/v2/a/unknown/x'])('leaves %s alone', (path) => {
    expect(splitResourcePath(path)).toBeUndefined();
    expect(rewriteDistributionUrl(path)).toBe(path);
  });

  it('encodes the name into one segment and keeps the query', () => {
    expect(rewriteDistributionUrl('/v2/a/b/tags/list?n=2&last=x')).toBe('/v2/_r/a%2Fb/tags/list?n=2&last=x');
  });
});

describe('Range (RFC 9110)', () => {
  it.each([
    ['bytes=0-9', 100, { kind: 'partial', range: { start: 0, end: 9 } }],
    ['bytes=90-', 100, { kind: 'partial', range: { start: 90, end: 99 } }],
    ['bytes=90-1000', 100, { kind: 'partial', range: { start: 90, end: 99 } }],
    ['bytes=-10', 100, { kind: 'partial', range: { start: 90, end: 99 } }],
    ['bytes=-1000', 100, { kind: 'partial', range: { start: 0, end: 99 } }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=100-200', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-0', 0, { kind: 'unsatisfiable' }],
    ['bytes=5-1', 100, { kind: 'whole' }],
    ['bytes=a-b', 100, { kind: 'whole' }],
    ['bytes=0-1,3-4', 100, { kind: 'whole' }],
  ] as const)('%s of %d bytes', (header, size, expected) => {
    expect(interpretRange(header, size)).toEqual(expected);
  });

  it('parses chunk Content-Range forms', () => {
    expect(parseContentRange('0-99')).toEqual({ start: 0, end: 99 });
    expect(parseContentRange('bytes 0-99/100')).toEqual({ start: 0, end: 99 });
    expect(() => parseContentRange('99-0')).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_INVALID' }));
    expect(() => parseContentRange('-5')).toThrow(expect.objectContaining({ code: 'BLOB_UPLOAD_INVALID' }));
  });
});

describe('Accept negotiation for manifests', () => {
  const index = 'application/vnd.oci.image.index.v1+json';
  it('serves when no Accept, a wildcard, or the type itself is listed', () => {
    expect(acceptsManifest(undefined, index)).toBe(true);
    expect(acceptsManifest('*/*', index)).toBe(true);
    expect(acceptsManifest(`application/vnd.oci.image.manifest.v1+json, ${index};q=0.5`, index)).toBe(true);
    expect(acceptsManifest('application/json', index)).toBe(true);
  });

  it('refuses when the client lists manifest types that exclude this one', () => {
    expect(acceptsManifest('application/vnd.oci.image.manifest.v1+json', index)).toBe(false);
  });
});

describe('pagination', () => {
  it('parses n and last', () => {
    expect(parsePage({ n: '10', last: 'a' })).toEqual({ n: 10, last: 'a' });
    expect(parsePage({})).toEqual({});
    expect(() => parsePage({ n: '1.5' })).toThrow(expect.objectContaining({ code: 'PAGINATION_INVALID' }));
  });
});

describe('migration statement splitting', async () => {
  const { splitStatements } = await import('../../src/metadata/migrate.js');
  it('keeps dollar-quoted bodies, strings and comments intact', () => {
    const sql = `-- a comment; with a semicolon
CREATE TABLE a (x text DEFAULT 'it''s; fine');
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1; RETURN NULL;
END
$$;
SELECT $tag$ ; $tag$;`;
    expect(splitStatements(sql)).toEqual([
      "CREATE TABLE a (x text DEFAULT 'it''s; fine')",
      'CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1; RETURN NULL;\nEND\n$$',
      'SELECT $tag$ ; $tag$',
    ]);
  });
});
