import { describe, expect, it } from 'vitest';
import { parseJunit } from '../support/conformance.js';

const report = (totals: string, cases: string) => `<?xml version="1.0"?><testsuites ${totals}><testsuite name="s">${cases}</testsuite></testsuites>`;

describe('conformance junit reports', () => {
  it('counts passes, skips and failures (zero counts are left out of the report)', () => {
    expect(parseJunit(report('tests="3" skipped="1"', '<testcase name="a" status="passed"></testcase><testcase name="b" status="skipped"></testcase><testcase name="c" status="passed"></testcase>'))).toMatchObject({ tests: 3, passed: 2, failed: [] });
    expect(parseJunit(report('tests="2" failures="1"', '<testcase name="a" status="failure"><failure message="x"></failure></testcase><testcase name="b" status="passed"></testcase>')).failed).toEqual(['a']);
  });

  it("names the failures of ginkgo's reports (the suite of the v1.1.0 era) too", () => {
    expect(parseJunit(report('tests="2" failures="1"', '<testcase name="a" classname="c" status="failed" time="1"></testcase><testcase name="b" status="passed"></testcase>')).failed).toEqual(['a']);
  });

  it('fails on a report whose totals and test cases disagree, instead of reading it as "nothing failed"', () => {
    expect(() => parseJunit(report('tests="2" failures="1"', '<testcase name="a" status="broken"></testcase><testcase name="b" status="passed"></testcase>'))).toThrow(/does not add up/);
    expect(() => parseJunit(report('tests="1"', '<testcase name="a"></testcase>'))).toThrow(/does not add up/);
    expect(() => parseJunit(report('', ''))).toThrow(/does not add up/);
  });
});
