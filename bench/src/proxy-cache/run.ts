import { exec } from '../util/exec.js';
import { makeImage, pushImage, type ImageShape } from './images.js';
import { pullImage } from './pull.js';
import type { Server, Upstream, WharfServer } from './servers.js';

/** One column: the upstream itself (direct pulls), a Wharf, or a peer in proxy mode. */
export type Subject = { kind: 'direct'; label: string; server: Upstream } | { kind: 'wharf'; label: string; server: WharfServer } | { kind: 'peer'; label: string; server: Server };

export interface Measurement {
  round: number;
  shape: string;
  subject: string;
  phase: 'cold' | 'warm' | 'local';
  mibPerS: number;
  /** Requests the upstream logged during the pull (warm pulls of proxies). */
  upstreamRequests?: number;
}

export interface ProxyRunOptions {
  rounds: number;
  shapes: ImageShape[];
  log: (line: string) => void;
}

/** Where `subject` serves the upstream's `repository`. */
function nameAt(subject: Subject, repository: string): string {
  return subject.kind === 'wharf' ? `${subject.server.proxyProject}/${repository}` : repository;
}

/** Round r's order: rotated by r, reversed every other round, so that no subject always follows the same one. */
export function orderFor<T>(items: readonly T[], round: number): T[] {
  const rotated = items.map((_, i) => items[(i + round) % items.length]!);
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

/** `sync`, untimed: the writeback one fill leaves behind is not paid during the next pull. */
async function flush(): Promise<void> {
  await exec('sync', []);
}

/**
 * Every round pushes new images to the upstream (untimed), then pulls each cold through
 * every subject (and directly), then pushes the same image into each Wharf's ordinary
 * project and pulls it warm through every proxy and from that project.
 */
export async function runProxyRounds(upstream: Upstream, subjects: Subject[], options: ProxyRunOptions): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const [s, shape] of options.shapes.entries()) {
      const image = makeImage(shape);
      const repository = `library/shape${s}-r${round}`;
      await pushImage(upstream.origin, repository, '1', image);
      await flush();
      const order = orderFor(subjects, round);
      options.log(`round ${round}, ${shape.kind}: ${order.map((x) => x.label).join(', ')}`);
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
        const local = async () => {
          if (subject.kind !== 'wharf') return;
          const pull = await pullImage(subject.server.origin, `${subject.server.localProject}/${repository}`, '1');
          out.push({ round, shape: shape.kind, subject: subject.label, phase: 'local', mibPerS: pull.mibPerS });
          options.log(`  non-proxy ${subject.label}: ${pull.mibPerS.toFixed(0)} MiB/s`);
        };
        if (round % 2 === 0) await local();
        const before = await upstream.requestCount();
        const pull = await pullImage(subject.server.origin, nameAt(subject, repository), '1');
        const upstreamRequests = (await upstream.requestCount()) - before;
        out.push({ round, shape: shape.kind, subject: subject.label, phase: 'warm', mibPerS: pull.mibPerS, upstreamRequests });
        options.log(`  warm ${subject.label}: ${pull.mibPerS.toFixed(0)} MiB/s, ${upstreamRequests} upstream requests`);
        if (round % 2 === 1) await local();
      }
    }
  }
  return out;
}
