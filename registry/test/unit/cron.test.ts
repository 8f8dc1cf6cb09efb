import { describe, expect, it } from 'vitest';
import { CronError, parseCron } from '../../src/jobs/cron.js';

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => parseCron(expr).next(at(after)).toISOString();

describe('cron schedules (UTC)', () => {
  it('fires at the next matching minute, strictly after the given time', () => {
    expect(next('0 3 * * *', '2025-01-01T02:59:59Z')).toBe('2025-01-01T03:00:00.000Z');
    expect(next('0 3 * * *', '2025-01-01T03:00:00Z')).toBe('2025-01-02T03:00:00.000Z');
    expect(next('*/15 * * * *', '2025-01-01T10:07:30Z')).toBe('2025-01-01T10:15:00.000Z');
    expect(next('5-10/5 8 * * *', '2025-01-01T08:06:00Z')).toBe('2025-01-01T08:10:00.000Z');
  });

  it('accepts a seconds field, names and aliases', () => {
    expect(next('*/2 * * * * *', '2025-01-01T00:00:01.500Z')).toBe('2025-01-01T00:00:02.000Z');
    expect(next('0 0 * JAN,feb MON', '2025-01-01T00:00:00Z')).toBe('2025-01-06T00:00:00.000Z');
    expect(next('@hourly', '2025-01-01T10:59:59Z')).toBe('2025-01-01T11:00:00.000Z');
    expect(next('@weekly', '2025-01-01T00:00:00Z')).toBe('2025-01-05T00:00:00.000Z');
    expect(next('0 0 * * 7', '2025-01-01T00:00:00Z')).toBe('2025-01-05T00:00:00.000Z');
  });

  it('crosses month and year ends, and fires on either restricted day field (Vixie cron)', () => {
    expect(next('0 0 1 * *', '2025-12-15T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2025-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    // The 13th, or any Friday: 2025-06-06 is a Friday before the 13th.
    expect(next('0 0 13 * 5', '2025-06-01T00:00:00Z')).toBe('2025-06-06T00:00:00.000Z');
  });

  it('rejects malformed expressions with the reason', () => {
    expect(() => parseCron('* * *')).toThrow(CronError);
    expect(() => parseCron('60 * * * *')).toThrow(/minute "60"/);
    expect(() => parseCron('* * * * 8')).toThrow(/day of week/);
    expect(() => parseCron('10-5 * * * *')).toThrow(/backwards/);
    expect(() => parseCron('*/0 * * * *')).toThrow(/step/);
    expect(() => parseCron('0 0 31 2 *').next(new Date())).toThrow(/never fires/);
  });
});
