import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('registry configuration: s3 storage', () => {
  it('reads the s3 keys from the environment, with defaults for region, path style and redirect', () => {
    const config = loadConfig([], {
      WHARF_STORAGE_DRIVER: 's3',
      WHARF_S3_ENDPOINT: 'http://minio:9000',
      WHARF_S3_BUCKET: 'blobs',
      WHARF_S3_ACCESS_KEY_ID: 'id',
      WHARF_S3_SECRET_ACCESS_KEY: 'secret',
    });
    expect(config.storage).toEqual({
      driver: 's3',
      s3: { endpoint: 'http://minio:9000', bucket: 'blobs', region: 'us-east-1', forcePathStyle: true, accessKeyId: 'id', secretAccessKey: 'secret', redirect: false },
    });
  });

  it('takes the YAML file under the environment; credentials come only from the environment', () => {
    const file = join(tmpdir(), `wharf-config-s3-${process.pid}.yaml`);
    writeFileSync(file, 'storage:\n  driver: s3\n  s3:\n    bucket: from-file\n    region: eu-west-1\n    forcePathStyle: false\n    redirect: true\n');
    const config = loadConfig(['--config', file], { WHARF_S3_REGION: 'us-west-2', WHARF_S3_REDIRECT: 'false' });
    expect(config.storage).toEqual({ driver: 's3', s3: { bucket: 'from-file', region: 'us-west-2', forcePathStyle: false, redirect: false } });
  });

  it('rejects a missing bucket, a bad endpoint, a bad boolean and half a credential pair', () => {
    const base = { WHARF_STORAGE_DRIVER: 's3', WHARF_S3_BUCKET: 'b' };
    expect(() => loadConfig([], { WHARF_STORAGE_DRIVER: 's3' })).toThrow(/bucket/);
    expect(() => loadConfig([], { ...base, WHARF_S3_ENDPOINT: 'minio:9000' })).toThrow(ConfigError);
    expect(() => loadConfig([], { ...base, WHARF_S3_REDIRECT: 'sometimes' })).toThrow(/WHARF_S3_REDIRECT/);
    expect(() => loadConfig([], { ...base, WHARF_S3_ACCESS_KEY_ID: 'id' })).toThrow(/both/);
    expect(() => loadConfig([], { WHARF_STORAGE_DRIVER: 'gcs' })).toThrow(/filesystem or s3/);
  });
});
