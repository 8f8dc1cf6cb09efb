// The lifecycle SQL on both metadata drivers (embedded PGlite and PostgreSQL): policies,
// batched pull times, retention candidates, "signed", the referrer closure, and the locked tag.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataOn, type Metadata } from '../../src/metadata/index.js';
import { metadataDrivers } from '../support/metadata-drivers.js';
import { sha256 } from '../support/oci.js';

const COSIGN = 'application/vnd.dev.cosign.artifact.sig.v1+json';

describe.each(metadataDrivers())('lifecycle store on $name', ({ open }) => {
  let meta: Metadata;
  let cleanup: () => Promise<void>;
  let projectId: string;

  const manifest = (name: string, extra: Record<string, unknown> = {}) => {
    const content = Buffer.from(JSON.stringify({ schemaVersion: 2, name, ...extra }));
    return { digest: sha256(content), content };
  };
  async function put(repository: string, name: string, options: { tag?: string; subject?: string; artifactType?: string; tagLocked?: boolean } = {}) {
    const m = manifest(name, options.subject ? { subject: options.subject } : {});
    const result = await meta.manifests.put({
      repository,
      digest: m.digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      content: m.content,
      blobs: [],
      manifests: [],
      ...(options.tag && { tag: options.tag }),
      ...(options.subject && { subject: options.subject }),
      ...(options.artifactType && { artifactType: options.artifactType }),
      ...(options.tagLocked && { tagLocked: true }),
    });
    return { digest: m.digest, result };
  }

  beforeAll(async () => {
    const opened = await open();
    meta = metadataOn(opened.sql);
    cleanup = opened.cleanup;
    projectId = (await meta.projects.upsert('lc', {}) as { project: { id: string } }).project.id;
  });

  afterAll(async () => cleanup?.());

  it('stores policies, lists schedules, and keeps an existing policy when asked to', async () => {
    expect(await meta.lifecycle.retentionPolicy('lc')).toBeUndefined();
    await meta.lifecycle.setRetentionPolicy(projectId, { rules: [{ template: 'always' }], schedule: '@daily' });
    await meta.lifecycle.setRetentionPolicy(projectId, { rules: [], schedule: null }, true);
    expect(await meta.lifecycle.retentionPolicy('lc')).toEqual({ rules: [{ template: 'always' }], schedule: '@daily' });
    expect(await meta.lifecycle.retentionSchedules()).toEqual([{ project: 'lc', schedule: '@daily' }]);
    await meta.lifecycle.setImmutabilityPolicy(projectId, { rules: [{ tagMatches: 'v*' }], protectSignedArtifacts: true });
    expect(await meta.lifecycle.immutabilityPolicy('lc')).toEqual({ rules: [{ tagMatches: 'v*' }], protectSignedArtifacts: true });
  });

  it('records a batch of pulls, keeping the latest time per artifact, never moving one back', async () => {
    const { digest } = await put('lc/pulls', 'pulled', { tag: 'a' });
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-02-01T00:00:00Z');
    await meta.lifecycle.recordPulls([{ repository: 'lc/pulls', digest, at: t1 }, { repository: 'lc/pulls', digest, at: t2 }]);
    await meta.lifecycle.recordPulls([{ repository: 'lc/pulls', digest, at: t1 }]);
    const [candidate] = (await meta.lifecycle.retentionCandidates('lc')).filter((c) => c.repository === 'lc/pulls');
    expect(candidate).toMatchObject({ tag: 'a', digest, pulledAt: t2 });
  });

  it('lists tags and untagged roots as candidates, not referrers of present subjects nor accessory tags', async () => {
    const subject = await put('lc/app', 'subject', { tag: 'v1' });
    const sig = await put('lc/app', 'sig', { subject: subject.digest, artifactType: COSIGN });
    await put('lc/app', 'accessory', { tag: `${subject.digest.replace(':', '-')}.sig` });
    const loose = await put('lc/app', 'loose');
    const orphan = await put('lc/app', 'orphan', { subject: sha256('gone') });
    const candidates = (await meta.lifecycle.retentionCandidates('lc')).filter((c) => c.repository === 'lc/app');
    expect(candidates.map((c) => c.tag ?? c.digest).sort()).toEqual(['v1', loose.digest, orphan.digest].sort());
    expect([...(await meta.lifecycle.signed('lc/app', [subject.digest, loose.digest]))]).toEqual([subject.digest]);
    expect((await meta.lifecycle.withReferrers('lc/app', subject.digest)).length).toBe(3);
    expect(await meta.lifecycle.deleteWithReferrers('lc/app', subject.digest, true)).toEqual([]);
    expect(await meta.lifecycle.deleteTagAt('lc/app', 'v1', sig.digest)).toBe(false);
    expect(await meta.lifecycle.deleteTagAt('lc/app', 'v1', subject.digest)).toBe(true);
    expect((await meta.lifecycle.deleteWithReferrers('lc/app', subject.digest, true)).length).toBe(3);
    expect((await meta.lifecycle.retentionCandidates('lc')).filter((c) => c.repository === 'lc/app').map((c) => c.digest).sort()).toEqual([loose.digest, orphan.digest].sort());
  });

  it('refuses moving a locked tag in the statement that writes it; the same digest passes', async () => {
    const first = await put('lc/lock', 'first', { tag: 'v1', tagLocked: true });
    expect(first.result).toEqual({ missing: [] });
    expect((await put('lc/lock', 'second', { tag: 'v1', tagLocked: true })).result).toEqual({ missing: [], tagRefused: true });
    expect((await put('lc/lock', 'first', { tag: 'v1', tagLocked: true })).result).toEqual({ missing: [] });
    expect((await meta.manifests.byTag('lc/lock', 'v1', false))?.digest).toBe(first.digest);
  });
});
