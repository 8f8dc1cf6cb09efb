import fc from 'fast-check';
import { routeLabel } from './case.js';
import { Invariant, surfaceOf } from './invariants.js';
import { type Finding, ProcessDied } from './runner.js';

export interface ExploreOptions {
  seed: number;
  numRuns: number;
  /** Stops generating new runs after this long (the counterexamples found so far are kept). */
  timeLimitMs: number;
  /** At most this many classes are shrunk, each for at most `shrinkMs`. */
  maxShrunk: number;
  shrinkMs: number;
  /** Puts back what the generated requests rely on, before each class is shrunk. */
  reset?: () => Promise<void>;
}

export interface FailureClass {
  key: string;
  /** The first run that showed it (fast-check's path for this seed). */
  runIndex: number;
  occurrences: number;
  first: Finding;
  /** The smallest run fast-check shrank it to, when it could replay the class. */
  shrunk?: Finding;
  shrinkSteps?: string;
}

export interface Exploration {
  classes: FailureClass[];
  runs: number;
  interrupted: boolean;
  processDied: boolean;
}

/**
 * A failure class: which invariant broke, where, and why. A 5xx is classed by its API
 * surface and the cause the server logged (the same defect reached through twenty
 * routes is one class); a malformed challenge or error body by surface and status;
 * accepted credentials or changes by route, since which route let them through matters.
 */
export function classKey(f: Finding): string {
  const surface = surfaceOf(f.case);
  switch (f.invariant) {
    case Invariant.processDied:
      return f.invariant;
    case Invariant.noResponse:
      // A connection that breaks does so before any route is involved.
      return `${f.invariant} · ${f.exchange.error?.split(':')[0]}`;
    case Invariant.stateChanged:
      return `${f.invariant} · ${f.detail.split('\n', 1)[0]}`;
    case Invariant.serverError:
      return `${f.invariant} · ${surface} · ${f.cause}`;
    case Invariant.errorShape:
    case Invariant.errorCode:
    case Invariant.challenge:
      return `${f.invariant} · ${surface} · ${f.exchange.status}`;
    default:
      return `${f.invariant} · ${routeLabel(f.case)} · ${f.exchange.status}`;
  }
}

/**
 * Runs the property over `numRuns` generated values, recording every distinct failure
 * class instead of stopping at the first, then lets fast-check shrink each class from
 * the run that first showed it (the same seed and that run's path), keeping only
 * candidates that fail the same way. A registry with several defects thus reports all
 * of them at once, each with a small reproduction.
 */
export async function explore<T>(arbitrary: fc.Arbitrary<T>, run: (value: T) => Promise<Finding[]>, options: ExploreOptions): Promise<Exploration> {
  const classes = new Map<string, FailureClass>();
  let index = 0;
  let processDied = false;
  const record = (findings: Finding[], runIndex: number) => {
    for (const f of findings) {
      const key = classKey(f);
      const known = classes.get(key);
      if (known) known.occurrences++;
      else classes.set(key, { key, runIndex, occurrences: 1, first: f });
    }
  };
  const survey = await fc.check(
    fc.asyncProperty(arbitrary, async (value) => {
      const runIndex = index++;
      if (processDied) return true;
      try {
        record(await run(value), runIndex);
      } catch (err) {
        if (!(err instanceof ProcessDied)) throw err;
        record(err.findings, runIndex);
        processDied = true;
      }
      return true;
    }),
    { seed: options.seed, numRuns: options.numRuns, interruptAfterTimeLimit: options.timeLimitMs, markInterruptAsFailure: false },
  );
  if (survey.failed) throw survey.errorInstance instanceof Error ? survey.errorInstance : new Error(`the fuzz harness failed: ${String(survey.errorInstance)}`);

  if (!processDied) {
    for (const cls of [...classes.values()].slice(0, options.maxShrunk)) {
      await options.reset?.();
      let smallest: Finding | undefined;
      const result = await fc.check(
        fc.asyncProperty(arbitrary, async (value) => {
          const hit = (await run(value).catch((err) => (err instanceof ProcessDied ? err.findings : Promise.reject(err)))).find((f) => classKey(f) === cls.key);
          if (hit) smallest = hit;
          return hit === undefined;
        }),
        { seed: options.seed, path: String(cls.runIndex), interruptAfterTimeLimit: options.shrinkMs, markInterruptAsFailure: false },
      );
      if (result.failed && smallest) {
        cls.shrunk = smallest;
        if (result.counterexamplePath) cls.shrinkSteps = result.counterexamplePath;
      }
    }
  }
  return { classes: [...classes.values()], runs: index, interrupted: survey.interrupted, processDied };
}
