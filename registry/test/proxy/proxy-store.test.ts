// The proxy cache's tables on both metadata drivers: fill leases (one holder, taken over once
// expired), tag checks on the database's clock, and one project per mirrored host.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataOn, type Metadata } from '../../src/metadata/index.js';
import { MirrorHostTakenError, type ProxyCacheRecord } from '../../src/metadata/proxy-caches.js';
import { metadataDrivers } from '../support/metadata-drivers.js';

const record = (hosts: string[]): ProxyCacheRecord => ({ provider: 'docker-hub', url: 'https://registry-1.docker.io', username: null, password: null, insecure: false, mirrorOf: hosts, mirrorHosts: hosts, manifestTtlSeconds: 60 });

describe.each(metadataDrivers())('proxy cache store on $name', (driver) => {
  let meta: Metadata;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const opened = await driver.open();
    meta = metadataOn(opened.sql);
    cleanup = async () => {
      await opened.sql.close();
      await opened.cleanup();
    };
  });
  afterAll(async () => cleanup?.());

  it('gives a fill lease to one replica at a time, and to another once it expires or is released', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(await meta.proxyCaches.claimFill(digest, 'replica-a', 1)).toBe(true);
    expect(await meta.proxyCaches.claimFill(digest, 'replica-b', 1)).toBe(false);
    expect(await meta.proxyCaches.fillInProgress(digest)).toBe(true);
    expect(await meta.proxyCaches.renewFill(digest, 'replica-b', 1)).toBe(false);
    await sleep(1200);
    // replica-a died (no renewal): its lease is over.
    expect(await meta.proxyCaches.fillInProgress(digest)).toBe(false);
    expect(await meta.proxyCaches.claimFill(digest, 'replica-b', 30)).toBe(true);
    expect(await meta.proxyCaches.renewFill(digest, 'replica-a', 30)).toBe(false);
    await meta.proxyCaches.releaseFill(digest, 'replica-a');
    expect(await meta.proxyCaches.fillInProgress(digest)).toBe(true);
    await meta.proxyCaches.releaseFill(digest, 'replica-b');
    expect(await meta.proxyCaches.claimFill(digest, 'replica-a', 30)).toBe(true);
    // The maintenance job prunes only leases long expired.
    expect(await meta.proxyCaches.pruneFills()).toBe(0);
    await meta.sql.query("UPDATE proxy_fills SET lease_until = now() - interval '2 hours' WHERE digest = $1", [digest]);
    expect(await meta.proxyCaches.pruneFills()).toBe(1);
  });

  it('lets one project mirror a host, writing nothing for the loser', async () => {
    const a = await meta.projects.upsert('mirror-a', {});
    const b = await meta.projects.upsert('mirror-b', {});
    if ('managedByOther' in a || 'managedByOther' in b) throw new Error('unexpected');
    expect(await meta.proxyCaches.set(a.project.id, record(['docker.io']))).toBe(true);
    expect(await meta.proxyCaches.set(a.project.id, record(['docker.io']))).toBe(false);
    await expect(meta.proxyCaches.set(b.project.id, record(['quay.io', 'docker.io']))).rejects.toBeInstanceOf(MirrorHostTakenError);
    expect(await meta.proxyCaches.byProject('mirror-b')).toBeUndefined();
    expect((await meta.proxyCaches.byMirrorHost('quay.io'))).toBeUndefined();
    expect((await meta.proxyCaches.byMirrorHost('docker.io'))?.project).toBe('mirror-a');
    // Released by a, the host is free for b.
    await meta.proxyCaches.set(a.project.id, record([]));
    await meta.proxyCaches.set(b.project.id, record(['docker.io']));
    expect((await meta.proxyCaches.byMirrorHost('docker.io'))?.project).toBe('mirror-b');
  });

  it("ages tag checks on the database's clock; a check of a repository that is gone is not kept", async () => {
    const repository = 'mirror-a/library/app';
    await meta.repositories.ensure(repository);
    expect(await meta.proxyCaches.tagAge(repository, '1')).toBeUndefined();
    await meta.proxyCaches.markTagChecked(repository, '1');
    const age = await meta.proxyCaches.tagAge(repository, '1');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    await meta.proxyCaches.markTagChecked('mirror-a/absent', '1');
    expect(await meta.proxyCaches.tagAge('mirror-a/absent', '1')).toBeUndefined();
  });
});
