import { median } from '../util/stats.js';
import type { Results } from './results.js';

export const WHARF_VARIANTS = ['wharf-pglite', 'wharf-postgres'] as const;

/** 150 MB: the memory ceiling for the registry process, decimal megabytes. */
export const RSS_LIMIT_BYTES = 150e6;

export interface TargetVerdict {
  /** Row heading, e.g. "Blob pull ≥ 1.0× distribution". */
  goal: string;
  /** Per Wharf variant: the figure and whether it meets the goal (undefined: cannot be judged). */
  cells: Map<string, { text: string; met: boolean | undefined }>;
}

function ratioGoal(results: Results, goal: string, metric: 'blobPull' | 'monolithicPush' | 'smallPush' | 'manifestRps', peer: string, min: number, note?: (wharf: string) => string): TargetVerdict {
  const cells = new Map<string, { text: string; met: boolean | undefined }>();
  for (const wharf of WHARF_VARIANTS) {
    const ratios = results.pairedRatios(wharf, peer, metric);
    if (ratios.length === 0) {
      const why = results.median(peer, metric) === undefined ? (results.unavailable.get(peer) ? `${peer} unavailable` : `no ${peer} figure`) : 'no Wharf figure';
      cells.set(wharf, { text: `cannot be judged (${why})`, met: undefined });
      continue;
    }
    const r = median(ratios);
    const met = r >= min;
    const rounds = `${ratios.filter((x) => x >= min).length} of ${ratios.length} rounds at or above ${min.toFixed(1)}×`;
    cells.set(wharf, { text: `${r.toFixed(2)}× — ${met ? 'met' : 'not met'} (${[rounds, note?.(wharf)].filter(Boolean).join('; ')})`, met });
  }
  return { goal, cells };
}

/** The targets, judged on the medians of this run. */
export function judgeTargets(results: Results): TargetVerdict[] {
  const p99 = (target: string) => {
    const v = results.median(target, 'manifestP99');
    return v === undefined ? '—' : `${v.toFixed(1)} ms`;
  };
  const memory: TargetVerdict = { goal: 'Memory: peak RSS ≤ 150 MB through all workloads', cells: new Map() };
  for (const wharf of WHARF_VARIANTS) {
    const peak = results.peakMemory(wharf);
    memory.cells.set(
      wharf,
      peak === undefined ? { text: 'cannot be judged (not measured)', met: undefined } : { text: `${(peak / 1e6).toFixed(1)} MB — ${peak <= RSS_LIMIT_BYTES ? 'met' : 'not met'}`, met: peak <= RSS_LIMIT_BYTES },
    );
  }
  return [
    ratioGoal(results, 'Blob pull ≥ 1.0× distribution', 'blobPull', 'distribution', 1.0),
    ratioGoal(results, 'Blob pull ≥ 0.8× nginx (sendfile)', 'blobPull', 'nginx', 0.8),
    ratioGoal(results, 'Monolithic push ≥ 1.0× distribution', 'monolithicPush', 'distribution', 1.0),
    ratioGoal(results, 'Small push ≥ 1.0× zot (both fsync each blob)', 'smallPush', 'zot', 1.0),
    ratioGoal(results, 'Reference, not judged by the issue: small push ≥ 1.0× zot with its default (no fsync)', 'smallPush', 'zot-nosync', 1.0),
    ratioGoal(results, 'Manifest GET ≥ 1.5× distribution', 'manifestRps', 'distribution', 1.5, (w) => `p99 ${p99(w)} vs ${p99('distribution')}`),
    memory,
  ];
}
