// Destination paths and filters, checked against Harbor's documented examples
// (source a/b/c/d/img, destination namespace nm).
import { describe, expect, it } from 'vitest';
import { artifactFacts, PolicyFilters } from '../../src/replication/filters.js';
import { destinationRepository, FlatteningError } from '../../src/replication/flatten.js';

describe('flattening (Harbor’s examples)', () => {
  it.each([
    ['none', 'nm/a/b/c/d/img'],
    ['one', 'nm/b/c/d/img'],
    ['two', 'nm/c/d/img'],
    ['three', 'nm/d/img'],
    ['all', 'nm/img'],
  ] as const)('%s: a/b/c/d/img → %s', (level, expected) => {
    expect(destinationRepository('a/b/c/d/img', 'nm', level)).toBe(expected);
  });

  it('keeps the source path when there is no namespace, whatever the level', () => {
    for (const level of ['none', 'one', 'two', 'three', 'all'] as const) expect(destinationRepository('a/b/img', '', level)).toBe('a/b/img');
  });

  it('takes a namespace of several components', () => {
    expect(destinationRepository('library/nginx', 'mirror/hub', 'one')).toBe('mirror/hub/nginx');
  });

  it('refuses to drop more components than precede the name', () => {
    expect(() => destinationRepository('a/img', 'nm', 'two')).toThrow(FlatteningError);
    expect(() => destinationRepository('a/img', 'nm', 'two')).toThrow(/1 path component\(s\) before its name, too few to flatten 2/);
    expect(destinationRepository('img', 'nm', 'all')).toBe('nm/img');
    expect(destinationRepository('img', 'nm', 'none')).toBe('nm/img');
  });
});

describe('filters', () => {
  const filters = (f: Partial<ConstructorParameters<typeof PolicyFilters>[0]>) =>
    new PolicyFilters({ name: { matches: [], excludes: [] }, tag: { matches: [], excludes: [] }, label: { matches: [], excludes: [] }, resource: 'all', ...f });

  it('matches doublestar names: * within a segment, ** across, ? and {a,b}', () => {
    const one = filters({ name: { matches: ['library/*'], excludes: [] } });
    expect(one.name('library/nginx')).toBe(true);
    expect(one.name('library/team/nginx')).toBe(false);
    const deep = filters({ name: { matches: ['library/**'], excludes: ['**/tmp-?'] } });
    expect(deep.name('library/team/nginx')).toBe(true);
    expect(deep.name('library/team/tmp-1')).toBe(false);
    expect(deep.name('other/nginx')).toBe(false);
    const braces = filters({ tag: { matches: ['{v1,v2}.*'], excludes: ['*-rc*'] } });
    expect(['v1.0', 'v2.3', 'v3.0', 'v1.0-rc1'].filter(braces.tag)).toEqual(['v1.0', 'v2.3']);
  });

  it('selects everything without matches, and excludes win', () => {
    const f = filters({ tag: { matches: [], excludes: ['latest'] } });
    expect(['1', 'latest'].filter(f.tag)).toEqual(['1']);
  });

  it('uses literal names without a catalog only when every pattern is literal', () => {
    expect(filters({ name: { matches: ['a/b', 'c/d'], excludes: ['c/d'] } }).literalNames()).toEqual(['a/b']);
    expect(filters({ name: { matches: ['a/*'], excludes: [] } }).literalNames()).toBeUndefined();
    expect(filters({}).literalNames()).toBeUndefined();
  });

  it('tells images from other artifacts, and labels are annotations', () => {
    const image = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json' }, annotations: { team: 'red', signed: 'yes' } }));
    const chart = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json' } }));
    const facts = artifactFacts(image, 'application/vnd.oci.image.manifest.v1+json');
    expect(facts.kind).toBe('image');
    expect(artifactFacts(chart, 'application/vnd.oci.image.manifest.v1+json').kind).toBe('artifact');
    expect(filters({ resource: 'artifact' }).artifact(facts)).toBe(false);
    expect(filters({ resource: 'image', label: { matches: ['team=red', 'signed'], excludes: [] } }).artifact(facts)).toBe(true);
    expect(filters({ label: { matches: ['team=blue'], excludes: [] } }).artifact(facts)).toBe(false);
    expect(filters({ label: { matches: [], excludes: ['signed'] } }).artifact(facts)).toBe(false);
  });
});
