// The lifecycle SQL on both metadata drivers (embedded PGlite and PostgreSQL): policies,
// batched pull times, retention candidates, "signed", the referrer closure, the locked tag, and
// what garbage collection finds orphaned by a deleted subject (referrers and cosign accessory tags).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcStore } from '../../src/metadata/gc.js';
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
    // previousTagDigest: what the tag named before this push (tag-created webhooks).
    expect((await put('lc/lock', 'second', { tag: 'v1', tagLocked: true })).result).toEqual({ missing: [], previousTagDigest: first.digest, tagRefused: true });
    expect((await put('lc/lock', 'first', { tag: 'v1', tagLocked: true })).result).toEqual({ missing: [], previousTagDigest: first.digest });
    expect((await meta.manifests.byTag('lc/lock', 'v1', false))?.digest).toBe(first.digest);
  });

  it('finds what a deleted subject orphans: referrers and accessory tags, recursively; deletes only accessory tags whose subject is absent and that are past the grace window', async () => {
    const gc = new GcStore(meta.sql);
    const accessory = (digest: string, suffix: string) => `${digest.replace(':', '-')}.${suffix}`;
    const subject = await put('lc/gc', 'gc-subject', { tag: 'v1' });
    const referrer = await put('lc/gc', 'gc-referrer', { subject: subject.digest, artifactType: COSIGN });
    const sig = await put('lc/gc', 'gc-sig', { tag: accessory(subject.digest, 'sig') });
    const sigOfSig = await put('lc/gc', 'gc-sig-of-sig', { tag: accessory(sig.digest, 'sig') });
    const kept = await put('lc/gc', 'gc-kept', { tag: 'v2' });
    const keptAtt = await put('lc/gc', 'gc-kept-att', { tag: accessory(kept.digest, 'att') });
    // A tag that only looks like an accessory (no known suffix) is an ordinary tag.
    await put('lc/gc', 'gc-lookalike', { tag: `${sha256('nothing').replace(':', '-')}.txt` });
    const later = new Date(Date.now() + 60_000);
    const inRepo = async () => [...(await gc.orphanedReferrers())].filter((k) => k.startsWith('lc/gc@')).sort();

    expect(await inRepo()).toEqual([]);
    expect(await gc.orphanedAccessoryTags(later)).toEqual([]);
    expect(await meta.manifests.delete('lc/gc', subject.digest)).toBeTruthy();

    expect(await inRepo()).toEqual([referrer.digest, sig.digest, sigOfSig.digest].map((d) => `lc/gc@${d}`).sort());
    const orphanedTags = await gc.orphanedAccessoryTags(later);
    expect(orphanedTags.map(({ name, digest, subjectAbsent }) => ({ name, digest, subjectAbsent })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      [
        { name: accessory(subject.digest, 'sig'), digest: sig.digest, subjectAbsent: true },
        { name: accessory(sig.digest, 'sig'), digest: sigOfSig.digest, subjectAbsent: false },
      ].sort((a, b) => a.name.localeCompare(b.name)),
    );
    // Within the grace window nothing is a candidate, and nothing is deleted.
    const earlier = new Date(Date.now() - 60_000);
    expect(await gc.orphanedAccessoryTags(earlier)).toEqual([]);
    expect(await gc.deleteAccessoryTags(orphanedTags, earlier)).toEqual([]);
    // The accessory of a present (if orphaned) manifest waits until that manifest is gone.
    expect(await gc.deleteAccessoryTags(orphanedTags, later)).toEqual([{ repository: 'lc/gc', name: accessory(subject.digest, 'sig') }]);
    expect(await meta.manifests.byTag('lc/gc', accessory(kept.digest, 'att'), false)).toMatchObject({ digest: keptAtt.digest });
    // A dry run that assumes the accessory tag deleted sees its manifest unreachable.
    expect((await gc.unreachableManifests(later, [{ repository: 'lc/gc', name: accessory(sig.digest, 'sig') }])).filter((m) => m.repository === 'lc/gc').map((m) => m.digest).sort()).toEqual(
      [referrer.digest, sig.digest, sigOfSig.digest].sort(),
    );
  });
});
