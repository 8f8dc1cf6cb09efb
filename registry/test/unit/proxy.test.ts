// Pure parts of the proxy cache: name mapping, settings checks, challenge parsing, error answers.
import { describe, expect, it } from 'vitest';
import { canonicalMirrorHost, isMirrorHost, upstreamRepository } from '../../src/proxy/names.js';
import { proxyCacheRecord, proxyCacheView } from '../../src/proxy/settings.js';
import { upstreamFailure } from '../../src/proxy/errors.js';
import { parseAuthChallenge } from '../../src/remote/challenge.js';
import { RemoteError } from '../../src/remote/errors.js';
import { RegistryError } from '../../src/oci/errors.js';

describe('names', () => {
  it('maps single-segment Docker Hub names to library/, and nothing else', () => {
    expect(upstreamRepository('docker-hub', 'hub/nginx')).toBe('library/nginx');
    expect(upstreamRepository('docker-hub', 'hub/library/nginx')).toBe('library/nginx');
    expect(upstreamRepository('docker-hub', 'hub/bitnami/redis')).toBe('bitnami/redis');
    expect(upstreamRepository('ghcr', 'gh/nginx')).toBe('nginx');
  });

  it("folds Docker Hub's aliases into docker.io and checks host names", () => {
    expect(canonicalMirrorHost('Registry-1.Docker.io')).toBe('docker.io');
    expect(canonicalMirrorHost('index.docker.io')).toBe('docker.io');
    expect(canonicalMirrorHost('ghcr.io:443')).toBe('ghcr.io');
    expect(canonicalMirrorHost('registry.example:5000')).toBe('registry.example:5000');
    expect(isMirrorHost('registry.example:5000')).toBe(true);
    expect(isMirrorHost('https://ghcr.io')).toBe(false);
    expect(isMirrorHost('a/b')).toBe(false);
    expect(['x:65535', 'x:1', 'x:0', 'x:65536', 'x:99999'].map(isMirrorHost)).toEqual([true, true, false, false, false]);
  });
});

describe('proxyCacheRecord', () => {
  it('normalizes the URL and hosts, and keeps the stored password when none is given', () => {
    const record = proxyCacheRecord({ provider: 'docker-hub', url: 'https://registry-1.docker.io/', username: 'me', mirrorOf: ['Docker.io', 'registry-1.docker.io'] });
    expect(record).toEqual({ provider: 'docker-hub', url: 'https://registry-1.docker.io', username: 'me', insecure: false, mirrorOf: ['docker.io', 'registry-1.docker.io'], mirrorHosts: ['docker.io'], manifestTtlSeconds: 300 });
    expect('password' in record).toBe(false);
    expect(proxyCacheRecord({ provider: 'quay', url: 'https://quay.io', username: 'me', password: 's' }).password).toBe('s');
    // No username: no password either.
    expect(proxyCacheRecord({ provider: 'quay', url: 'https://quay.io' }).password).toBeNull();
  });

  it('refuses what cannot work, naming the field', () => {
    expect(() => proxyCacheRecord({ provider: 'quay', url: 'ftp://quay.io' })).toThrow(/proxyCache.url/);
    expect(() => proxyCacheRecord({ provider: 'quay', url: 'https://quay.io?x=1' })).toThrow(/proxyCache.url/);
    expect(() => proxyCacheRecord({ provider: 'quay', url: 'https://quay.io', password: 'x' })).toThrow(/proxyCache.password/);
    expect(() => proxyCacheRecord({ provider: 'quay', url: 'https://quay.io', mirrorOf: ['https://quay.io'] })).toThrow(/proxyCache.mirrorOf/);
    expect(() => proxyCacheRecord({ provider: 'quay', url: 'https://quay.io', manifestTTLSeconds: -1 })).toThrow(/manifestTTLSeconds/);
  });

  it('shows everything but the password', () => {
    const view = proxyCacheView({ projectId: 'x', project: 'p', public: false, storageLimit: -1, provider: 'quay', url: 'https://quay.io', username: 'me', password: 'secret', insecure: false, mirrorOf: [], manifestTtlSeconds: 1, updatedAt: new Date() });
    expect(JSON.stringify(view)).not.toContain('secret');
    expect(view.passwordSet).toBe(true);
  });
});

describe('parseAuthChallenge', () => {
  it('reads Docker Hub, GHCR and Basic challenges, quoted or not', () => {
    expect(parseAuthChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
    expect(parseAuthChallenge('Bearer realm=https://ghcr.io/token, service=ghcr.io')?.params).toEqual({ realm: 'https://ghcr.io/token', service: 'ghcr.io' });
    expect(parseAuthChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseAuthChallenge(undefined)).toBeUndefined();
  });
});

describe('upstreamFailure', () => {
  const what = { kind: 'manifest' as const, repository: 'hub/library/app', reference: '1' };
  it('answers unknown for 404, 429 with Retry-After for throttling, 503 for the rest', () => {
    const notFound = upstreamFailure(new RemoteError('not-found', 'x', { status: 404 }), what) as RegistryError;
    expect([notFound.code, notFound.httpStatus]).toEqual(['MANIFEST_UNKNOWN', 404]);
    const throttled = upstreamFailure(new RemoteError('throttled', 'x', { status: 429, retryAfterSeconds: 7 }), what) as RegistryError;
    expect([throttled.code, throttled.httpStatus, throttled.headers['Retry-After']]).toEqual(['TOOMANYREQUESTS', 429, '7']);
    const down = upstreamFailure(new RemoteError('unreachable', 'x'), { ...what, kind: 'blob' }) as RegistryError;
    expect([down.code, down.httpStatus]).toEqual(['UNAVAILABLE', 503]);
    const other = new Error('not remote');
    expect(upstreamFailure(other, what)).toBe(other);
  });
});
