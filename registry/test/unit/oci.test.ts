import { describe, expect, it } from 'vitest';
import { digestOf, parseDigest, tryParseDigest } from '../../src/oci/digest.js';
import { Errors, ociError, registerErrorCode, RegistryError } from '../../src/oci/errors.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { assertRepositoryName, isValidRepositoryName, parseManifestReference } from '../../src/oci/reference.js';

const hex64 = 'a'.repeat(64);

describe('digests', () => {
  it('accepts sha256 and sha512 with the right lengths', () => {
    expect(tryParseDigest(`sha256:${hex64}`)).toMatchObject({ algorithm: 'sha256', hex: hex64 });
    expect(tryParseDigest(`sha512:${'b'.repeat(128)}`)).toMatchObject({ algorithm: 'sha512' });
  });

  it.each([`sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `sha384:${hex64}`, 'sha256', `md5:${hex64}`, `sha256:${hex64}/..`, `sha512:${hex64}`])('rejects %s', (value) => {
    expect(tryParseDigest(value)).toBeUndefined();
    expect(() => parseDigest(value)).toThrow(RegistryError);
  });

  it('computes digests with the requested algorithm', () => {
    expect(digestOf(Buffer.from(''))).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestOf(Buffer.from(''), 'sha512')).toMatch(/^sha512:cf83e135/);
  });
});

describe('repository names', () => {
  it.each(['library/ubuntu', 'a', 'a/b/c', 'my-app', 'my__app', 'my.app', 'a-----b', '0/1'])('accepts %s', (name) => {
    expect(isValidRepositoryName(name)).toBe(true);
  });

  it.each(['', 'A', 'a//b', '../a', 'a/..', 'a/../b', '.a', 'a.', '_a', 'a___b', 'a/', '/a', 'a b', 'a%2fb', `${'a'.repeat(256)}`])('rejects %j', (name) => {
    expect(isValidRepositoryName(name)).toBe(false);
    expect(() => assertRepositoryName(name)).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
  });

  it('accepts names up to 255 characters', () => {
    expect(isValidRepositoryName(`${'a'.repeat(127)}/${'b'.repeat(127)}`)).toBe(true);
  });
});

describe('manifest references', () => {
  it('tells tags from digests', () => {
    expect(parseManifestReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(parseManifestReference(`sha256:${hex64}`)).toMatchObject({ kind: 'digest' });
  });

  it.each(['-bad', '.bad', 'a'.repeat(129), 'with space', 'sha256:short'])('rejects %s', (ref) => {
    expect(() => parseManifestReference(ref)).toThrow(RegistryError);
  });
});

describe('error code table', () => {
  it('refuses to register a code twice', () => {
    expect(() => registerErrorCode('BLOB_UNKNOWN', 'again', 404)).toThrow(/registered twice/);
  });

  it('carries the status from the table and serializes to the OCI shape', () => {
    const e = ociError('MANIFEST_BLOB_UNKNOWN', { missing: ['x'] });
    expect(e.httpStatus).toBe(Errors.MANIFEST_BLOB_UNKNOWN.httpStatus);
    expect(e.toJSON()).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', message: Errors.MANIFEST_BLOB_UNKNOWN.message, detail: { missing: ['x'] } });
  });
});

describe('manifest parsing', () => {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex64}`, size: 10 };
  const image = (extra: object = {}) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [], ...extra }));

  it('reads the blobs an image needs, skipping non-distributable layers', () => {
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'c'.repeat(64)}`, size: 5 };
    const foreign = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: `sha256:${'d'.repeat(64)}`, size: 5, urls: ['https://example.com/l'] };
    const parsed = parseManifest(image({ layers: [layer, foreign] }), undefined);
    expect(parsed.blobs.map((b) => b.digest)).toEqual([config.digest, layer.digest]);
    expect(parsed.artifactType).toBe(config.mediaType);
  });

  it('prefers the manifest artifactType over the config media type', () => {
    expect(parseManifest(image({ artifactType: 'application/x.sbom' }), undefined).artifactType).toBe('application/x.sbom');
  });

  it('takes the media type from Content-Type when the body has none', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [] }));
    expect(parseManifest(body, 'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8').mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });

  it('reads index children and subject', () => {
    const child = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'e'.repeat(64)}`, size: 100 };
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child], subject: child }));
    const parsed = parseManifest(body, undefined);
    expect(parsed.kind).toBe('index');
    expect(parsed.manifests.map((m) => m.digest)).toEqual([child.digest]);
    expect(parsed.subject?.digest).toBe(child.digest);
  });

  it.each([
    ['no layers list', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config }],
    ['schemaVersion 1', { schemaVersion: 1, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [] }],
    ['negative size', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...config, size: -1 }, layers: [] }],
    ['annotations that are not strings', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [], annotations: { a: 1 } }],
  ])('rejects a manifest with %s', (_name, doc) => {
    expect(() => parseManifest(Buffer.from(JSON.stringify(doc)), undefined)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });

  it.each([
    ['a NUL in an annotation', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [], annotations: { a: 'x\u0000' } }, 'annotations.a'],
    ['a lone surrogate in a layer media type', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [{ ...config, mediaType: '\ud800' }] }, 'layers[0].mediaType'],
    ['a NUL in a key', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [], annotations: { 'a\u0000': 'x' } }, 'annotations.a\ufffd (a key)'],
  ])('rejects a manifest with %s, which the database cannot store, and says where', (_name, doc, where) => {
    expect(() => parseManifest(Buffer.from(JSON.stringify(doc)), undefined)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', detail: { where } }));
  });

  it.each([
    ['a media type this registry does not store', { schemaVersion: 2, mediaType: 'text/plain', config, layers: [] }, undefined],
    ['an unknown Content-Type and no mediaType', { schemaVersion: 2, config, layers: [] }, 'application/x-not-a-manifest'],
    ['Docker schema 1', { schemaVersion: 1 }, 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
  ])('answers a manifest with %s with 415 UNSUPPORTED_MEDIA_TYPE', (_name, doc, contentType) => {
    expect(() => parseManifest(Buffer.from(JSON.stringify(doc)), contentType)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_MEDIA_TYPE', httpStatus: 415 }));
  });
});
