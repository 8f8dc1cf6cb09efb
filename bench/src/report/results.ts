import type { UploadShape } from '../oci/registry-client.js';
import { median } from '../util/stats.js';
import type { ZbTest } from '../workloads/zb.js';

export type WorkloadId = 'blobPull' | 'monolithicPush' | 'smallPush' | 'manifestGet';
export type MetricId = 'blobPull' | 'monolithicPush' | 'smallPush' | 'manifestRps' | 'manifestP99';

export type ZbOutcome = { tests: ZbTest[]; exitCode: number } | { error: string } | { skipped: string };

/** Everything measured in one run, per target. */
export class Results {
  /** `target|metric` → round (1-based) → value. */
  private readonly values = new Map<string, Map<number, number>>();
  private readonly failures = new Map<string, string>();
  private readonly peaks = new Map<string, number>();
  private readonly companions = new Map<string, { label: string; peak: number }>();
  /** VmHWM read after the last workload, reset when the workloads began: the exact peak RSS. */
  readonly hwm = new Map<string, number>();
  readonly uploadShapes = new Map<string, UploadShape>();
  readonly zb = new Map<string, ZbOutcome>();
  /** Targets that could not be started, with the reason. */
  readonly unavailable = new Map<string, string>();

  record(target: string, metric: MetricId, round: number, value: number): void {
    const key = `${target}|${metric}`;
    if (!this.values.has(key)) this.values.set(key, new Map());
    this.values.get(key)!.set(round, value);
  }

  /** The value of one round (1-based), if measured. */
  value(target: string, metric: MetricId, round: number): number | undefined {
    return this.values.get(`${target}|${metric}`)?.get(round);
  }

  /** Every measured round's value. */
  roundValues(target: string, metric: MetricId): number[] {
    return [...(this.values.get(`${target}|${metric}`)?.values() ?? [])];
  }

  median(target: string, metric: MetricId): number | undefined {
    const values = this.roundValues(target, metric);
    return values.length > 0 ? median(values) : undefined;
  }

  /**
   * The median over rounds of `a ÷ b` within the same round. Both figures of a pair
   * were measured minutes apart at most, so a machine that gets busier or calmer
   * during the run moves both; this is the ratio the targets are judged on.
   */
  pairedRatio(a: string, b: string, metric: MetricId): number | undefined {
    const ratios = this.pairedRatios(a, b, metric);
    return ratios.length > 0 ? median(ratios) : undefined;
  }

  /** `a ÷ b` of every round that measured both. */
  pairedRatios(a: string, b: string, metric: MetricId): number[] {
    const ratios: number[] = [];
    for (const [round, va] of this.values.get(`${a}|${metric}`) ?? []) {
      const vb = this.value(b, metric, round);
      if (vb !== undefined && vb > 0) ratios.push(va / vb);
    }
    return ratios;
  }

  /** Keeps the first failure of a workload on a target. */
  fail(target: string, workload: WorkloadId, message: string): void {
    const key = `${target}|${workload}`;
    if (!this.failures.has(key)) this.failures.set(key, message);
  }

  failure(target: string, workload: WorkloadId): string | undefined {
    return this.failures.get(`${target}|${workload}`);
  }

  allFailures(): Array<{ target: string; workload: string; message: string }> {
    return [...this.failures].map(([key, message]) => {
      const [target, workload] = key.split('|') as [string, string];
      return { target, workload, message };
    });
  }

  /** Records a sampled VmRSS peak during one run of a workload (keeps the maximum). */
  peakRss(target: string, workload: WorkloadId, bytes: number): void {
    const key = `${target}|${workload}`;
    this.peaks.set(key, Math.max(bytes, this.peaks.get(key) ?? 0));
  }

  sampledPeak(target: string, workload?: WorkloadId): number | undefined {
    const matching = [...this.peaks].filter(([key]) => key.startsWith(`${target}|`) && (!workload || key.endsWith(`|${workload}`)));
    return matching.length > 0 ? Math.max(...matching.map(([, v]) => v)) : undefined;
  }

  /** Records a reading of the memory of a target's companion server (keeps the highest). */
  companionPeak(target: string, label: string, bytes: number): void {
    this.companions.set(target, { label, peak: Math.max(bytes, this.companions.get(target)?.peak ?? 0) });
  }

  /** A target's companion server: its label and highest reading. */
  companion(target: string): { label: string; peak: number } | undefined {
    return this.companions.get(target);
  }

  /** Peak RSS through all workloads: the larger of the sampled peak and VmHWM. */
  peakMemory(target: string): number | undefined {
    const candidates = [this.sampledPeak(target), this.hwm.get(target)].filter((v): v is number => v !== undefined);
    return candidates.length > 0 ? Math.max(...candidates) : undefined;
  }
}
