/** The parts of a V8 `.cpuprofile` (as `node --cpu-prof` writes it) this summary reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A span of CLOCK_MONOTONIC time in microseconds (V8's profile clock, and process.hrtime's). */
export interface TimeWindow {
  fromUs: number;
  toUs: number;
}

/** Microseconds of CLOCK_MONOTONIC now, comparable with a profile's sample times. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Hit counts per node, counting only the samples taken inside `window`. */
function hitsIn(profile: CpuProfile, window: TimeWindow | undefined): Map<number, number> {
  const hits = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) return;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  return hits;
}

/** Where a function lives: a package, Node.js itself, V8's pseudo-frames, or Wharf's own code. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const own = /dist\/([^/]+\/src\/[^/]+)/.exec(url);
  return own ? own[1]! : url;
}

function percent(part: number, total: number): string {
  return `${((100 * part) / total).toFixed(1).padStart(5)}%`;
}

/**
 * A plain-text table: the hottest functions by self time, and self time per module,
 * over the samples inside `window` (the whole profile when absent).
 */
export function summarizeProfile(profile: CpuProfile, top: number, window?: TimeWindow): string {
  const hitsById = hitsIn(profile, window);
  const totalSamples = [...hitsById.values()].reduce((a, b) => a + b, 0);
  const ms = window ? (window.toUs - window.fromUs) / 1000 : (profile.endTime - profile.startTime) / 1000;
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = hitsById.get(node.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    const mod = moduleOf(url, functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + hits);
  }
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [`${totalSamples} samples over ${ms.toFixed(0)} ms`, '', 'self time by function:'];
  for (const [key, hits] of rank(byFunction)) lines.push(`  ${percent(hits, totalSamples)}  ${key}`);
  lines.push('', 'self time by module:');
  for (const [key, hits] of rank(byModule)) lines.push(`  ${percent(hits, totalSamples)}  ${key}`);
  return lines.join('\n');
}
