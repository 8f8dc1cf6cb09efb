import picomatch from 'picomatch';
import type { PatternFilter, PolicySpec, ResourceKind } from './policy.js';

type Matcher = (value: string) => boolean;

/** matches (any; none listed = everything) and not excludes (any). */
function compile(filter: PatternFilter): Matcher {
  const options = { dot: true };
  const matches = filter.matches.length > 0 ? picomatch(filter.matches, options) : () => true;
  const excludes = filter.excludes.length > 0 ? picomatch(filter.excludes, options) : () => false;
  return (value) => matches(value) && !excludes(value);
}

/** A label is an annotation: `key` (present) or `key=value` (equal). */
function labelMatcher(filter: PatternFilter): (annotations: Record<string, string>) => boolean {
  const has = (annotations: Record<string, string>, label: string) => {
    const eq = label.indexOf('=');
    return eq < 0 ? label in annotations : annotations[label.slice(0, eq)] === label.slice(eq + 1);
  };
  return (annotations) => filter.matches.every((l) => has(annotations, l)) && !filter.excludes.some((l) => has(annotations, l));
}

export interface ArtifactFacts {
  kind: Exclude<ResourceKind, 'all'>;
  annotations: Record<string, string>;
}

/** A policy's filters, compiled once per execution. */
export class PolicyFilters {
  readonly name: Matcher;
  readonly tag: Matcher;
  private readonly label: (annotations: Record<string, string>) => boolean;

  constructor(private readonly filters: PolicySpec['filters']) {
    this.name = compile(filters.name);
    this.tag = compile(filters.tag);
    this.label = labelMatcher(filters.label);
  }

  /** Literal repository names, when every `name.matches` pattern is one (no catalog needed). */
  literalNames(): string[] | undefined {
    const { matches } = this.filters.name;
    if (matches.length === 0 || matches.some((p) => picomatch.scan(p).isGlob)) return undefined;
    return matches.filter((m) => this.name(m));
  }

  artifact(facts: ArtifactFacts): boolean {
    if (this.filters.resource !== 'all' && this.filters.resource !== facts.kind) return false;
    return this.label(facts.annotations);
  }
}

const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * Whether manifest bytes are a container image (an image config, a Docker v2s2 or
 * v2s1 manifest, or an index whose children are images as far as their platform says)
 * or another artifact, and their annotations (what a label filter looks at).
 */
export function artifactFacts(content: Buffer, mediaType: string): ArtifactFacts {
  let doc: { config?: { mediaType?: string }; artifactType?: string; annotations?: Record<string, string>; manifests?: { platform?: unknown; artifactType?: string }[] };
  try {
    doc = JSON.parse(content.toString('utf8')) as typeof doc;
  } catch {
    return { kind: 'artifact', annotations: {} };
  }
  const annotations = doc.annotations && typeof doc.annotations === 'object' ? doc.annotations : {};
  if (mediaType.includes('docker.distribution.manifest')) return { kind: 'image', annotations };
  if (Array.isArray(doc.manifests)) {
    const image = !doc.artifactType && doc.manifests.length > 0 && doc.manifests.every((m) => m.platform !== undefined || !m.artifactType);
    return { kind: image ? 'image' : 'artifact', annotations };
  }
  const image = !doc.artifactType && IMAGE_CONFIG_TYPES.has(doc.config?.mediaType ?? '');
  return { kind: image ? 'image' : 'artifact', annotations };
}
