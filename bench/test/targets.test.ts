import { describe, expect, it } from 'vitest';
import { Results } from '../src/report/results.js';
import { judgeTargets } from '../src/report/targets.js';

describe('target verdicts', () => {
  const results = new Results();
  const pushes = { distribution: [25, 30, 20, 28, 24], 'wharf-pglite': [30, 33, 19, 25, 29], 'wharf-postgres': [22, 31, 21, 26, 23] };
  for (const [target, values] of Object.entries(pushes)) values.forEach((v, i) => results.record(target, 'monolithicPush', i + 1, v));
  const verdict = judgeTargets(results).find((v) => v.goal.startsWith('Monolithic push'))!;

  it('judges the median of the per-round ratios, and says how many rounds reached the goal', () => {
    // PGlite ratios 1.20, 1.10, 0.95, 0.89, 1.21: median 1.10.
    expect(verdict.cells.get('wharf-pglite')).toEqual({ text: '1.10× — met (3 of 5 rounds at or above 1.0×)', met: true });
    // PostgreSQL ratios 0.88, 1.03, 1.05, 0.93, 0.96: median 0.96.
    expect(verdict.cells.get('wharf-postgres')).toEqual({ text: '0.96× — not met (2 of 5 rounds at or above 1.0×)', met: false });
  });

  it('counts only the rounds both sides measured', () => {
    const partial = new Results();
    partial.record('distribution', 'blobPull', 1, 100);
    partial.record('distribution', 'blobPull', 2, 100);
    partial.record('wharf-pglite', 'blobPull', 2, 120);
    partial.record('wharf-pglite', 'blobPull', 3, 90);
    const pull = judgeTargets(partial).find((v) => v.goal.startsWith('Blob pull ≥ 1.0×'))!;
    expect(pull.cells.get('wharf-pglite')?.text).toBe('1.20× — met (1 of 1 rounds at or above 1.0×)');
    expect(pull.cells.get('wharf-postgres')).toEqual({ text: 'cannot be judged (no Wharf figure)', met: undefined });
  });
});
