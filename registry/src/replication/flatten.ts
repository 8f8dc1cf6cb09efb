export const FLATTENING_LEVELS = ['none', 'one', 'two', 'three', 'all'] as const;
export type Flattening = (typeof FLATTENING_LEVELS)[number];

const DROPPED: Record<Exclude<Flattening, 'all'>, number> = { none: 0, one: 1, two: 2, three: 3 };

export class FlatteningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlatteningError';
  }
}

/**
 * The destination repository of `source` (Harbor's semantics): with a namespace, the
 * namespace followed by the source path minus its first `flattening` components (`all`
 * keeps only the last one); without a namespace, the source path unchanged. A source
 * with too few components for its level is an error, as in Harbor.
 */
export function destinationRepository(source: string, namespace: string, flattening: Flattening): string {
  const ns = namespace.replace(/^\/+|\/+$/g, '');
  if (!ns) return source;
  const parts = source.split('/');
  if (flattening === 'all') return `${ns}/${parts[parts.length - 1]}`;
  const drop = DROPPED[flattening];
  if (drop > parts.length - 1) {
    throw new FlatteningError(`repository ${source} has ${parts.length - 1} path component(s) before its name, too few to flatten ${drop} (flattening "${flattening}")`);
  }
  return [ns, ...parts.slice(drop)].join('/');
}
