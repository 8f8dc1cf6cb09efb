import { roundOrder } from '../run.js';
import { median } from '../util/stats.js';
import { exec } from '../util/exec.js';
import { makeImage, pushImage, type ImageShape } from './images.js';
import { pullImage } from './pull.js';
import type { Server, Upstream, WharfServer } from './servers.js';

/** One column: the upstream itself (direct pulls), a Wharf, or a peer in proxy mode. */
export type Subject = { kind: 'direct'; label: string; server: Upstream } | { kind: 'wharf'; label: string; server: WharfServer } | { kind: 'peer'; label: string; server: Server };

export interface Measurement {
  /** 1 and up; 0 and below for warm-up rounds, which no median or ratio uses. */
  round: number;
  shape: string;
  subject: string;
  phase: 'cold' | 'warm' | 'local';
  mibPerS: number;
  /** The round's pulls of this phase, in order, when it took several (warm and non-proxy); mibPerS is their median. */
  samples?: number[];
  /** Requests the upstream logged during a warm pull of a proxy (the most of the round's). */
  upstreamRequests?: number;
}

export interface ProxyRunOptions {
  rounds: number;
  /** Untimed-for-the-figures rounds first, so that every subject's code paths are warm (Wharf's JIT above all). */
  warmupRounds: number;
  shapes: ImageShape[];
  log: (line: string) => void;
}

/** Where `subject` serves the upstream's `repository`. */
function nameAt(subject: Subject, repository: string): string {
  return subject.kind === 'wharf' ? `${subject.server.proxyProject}/${repository}` : repository;
}

/**
 * Warm pulls (and Wharf's non-proxy pulls) per round, alternating; the round's figure is their
 * median. A warm pull of the small image takes about 100 ms, short enough that one collection
 * or one busy moment of the machine moves it by a fifth.
 */
const WARM_PULLS = 5;

/** `sync`, untimed: the writeback one fill leaves behind is not paid during the next pull. */
async function flush(): Promise<void> {
  await exec('sync', []);
}

/**
 * Every round pushes new images to the upstream (untimed), then pulls each cold through
 * every subject (and directly), then pushes the same image into each Wharf's ordinary
 * project and pulls it warm through every proxy and from that project, WARM_PULLS times each.
 */
export async function runProxyRounds(upstream: Upstream, subjects: Subject[], options: ProxyRunOptions): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (let round = 1 - options.warmupRounds; round <= options.rounds; round++) {
    for (const [s, shape] of options.shapes.entries()) {
      const image = makeImage(shape);
      const repository = `library/shape${s}-${round < 1 ? `w${round + options.warmupRounds}` : `r${round}`}`;
      await pushImage(upstream.origin, repository, '1', image);
      await flush();
      const order = roundOrder(subjects, round);
      options.log(`${round < 1 ? `warm-up round ${round + options.warmupRounds}` : `round ${round}`}, ${shape.kind}: ${order.map((x) => x.label).join(', ')}`);
      for (const subject of order) {
        const pull = await pullImage(subject.server.origin, nameAt(subject, repository), '1');
        out.push({ round, shape: shape.kind, subject: subject.label, phase: 'cold', mibPerS: pull.mibPerS });
        options.log(`  cold ${subject.label}: ${pull.mibPerS.toFixed(0)} MiB/s`);
        await flush();
      }
      const wharfs = subjects.filter((x): x is Extract<Subject, { kind: 'wharf' }> => x.kind === 'wharf');
      for (const wharf of wharfs) await pushImage(wharf.server.origin, `${wharf.server.localProject}/${repository}`, '1', image);
      await flush();
      for (const subject of order) {
        if (subject.kind === 'direct') continue;
        const warm: number[] = [];
        const local: number[] = [];
        let upstreamRequests = 0;
        const pullLocal = async () => {
          if (subject.kind !== 'wharf') return;
          local.push((await pullImage(subject.server.origin, `${subject.server.localProject}/${repository}`, '1')).mibPerS);
        };
        for (let k = 0; k < WARM_PULLS; k++) {
          const localFirst = Math.abs((round + k) % 2) === 0;
          if (localFirst) await pullLocal();
          const before = await upstream.requestCount();
          warm.push((await pullImage(subject.server.origin, nameAt(subject, repository), '1')).mibPerS);
          upstreamRequests = Math.max(upstreamRequests, (await upstream.requestCount()) - before);
          if (!localFirst) await pullLocal();
        }
        out.push({ round, shape: shape.kind, subject: subject.label, phase: 'warm', mibPerS: median(warm), samples: warm, upstreamRequests });
        options.log(`  warm ${subject.label}: ${warm.map((v) => v.toFixed(0)).join(', ')} MiB/s, at most ${upstreamRequests} upstream requests`);
        if (local.length > 0) {
          out.push({ round, shape: shape.kind, subject: subject.label, phase: 'local', mibPerS: median(local), samples: local });
          options.log(`  non-proxy ${subject.label}: ${local.map((v) => v.toFixed(0)).join(', ')} MiB/s`);
        }
      }
    }
  }
  return out;
}
