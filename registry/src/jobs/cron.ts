/**
 * Cron schedules in UTC: five fields (minute hour day-of-month month day-of-week) or
 * six with a leading seconds field; `*`, lists, ranges, steps, month and weekday
 * names, and the aliases @hourly, @daily, @weekly, @monthly, @yearly. As in Vixie
 * cron, when both day fields are restricted a day matching either one fires.
 */
export interface CronSchedule {
  readonly expression: string;
  /** The first firing time strictly after `after`. */
  next(after: Date): Date;
}

export class CronError extends Error {
  constructor(expression: string, reason: string) {
    super(`invalid cron schedule ${JSON.stringify(expression)}: ${reason}`);
    this.name = 'CronError';
  }
}

const ALIASES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  namesFrom?: number;
}

const FIELDS: Record<'second' | 'minute' | 'hour' | 'day' | 'month' | 'weekday', FieldSpec> = {
  second: { name: 'second', min: 0, max: 59 },
  minute: { name: 'minute', min: 0, max: 59 },
  hour: { name: 'hour', min: 0, max: 23 },
  day: { name: 'day of month', min: 1, max: 31 },
  month: { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  // 7 is Sunday too.
  weekday: { name: 'day of week', min: 0, max: 7, names: DAYS, namesFrom: 0 },
};

function parseField(expression: string, text: string, spec: FieldSpec): { values: Set<number>; any: boolean } {
  const values = new Set<number>();
  const value = (token: string): number => {
    const named = spec.names?.indexOf(token.toLowerCase()) ?? -1;
    const n = named >= 0 ? named + spec.namesFrom! : /^\d+$/.test(token) ? Number(token) : NaN;
    if (!(n >= spec.min && n <= spec.max)) throw new CronError(expression, `${spec.name} ${JSON.stringify(token)} is not in ${spec.min}-${spec.max}`);
    return n;
  };
  for (const part of text.split(',')) {
    const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
    if (!m) throw new CronError(expression, `cannot read ${spec.name} ${JSON.stringify(part)}`);
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) throw new CronError(expression, `${spec.name} step must be at least 1`);
    let low: number;
    let high: number;
    if (m[1] === '*') {
      [low, high] = [spec.min, spec.max];
    } else if (m[1]!.includes('-')) {
      const [a, b] = m[1]!.split('-') as [string, string];
      [low, high] = [value(a), value(b)];
      if (low > high) throw new CronError(expression, `${spec.name} range ${m[1]} is backwards`);
    } else {
      low = value(m[1]!);
      high = m[2] === undefined ? low : spec.max;
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return { values, any: text === '*' };
}

const MAX_SEARCH_YEARS = 5;

export function parseCron(expression: string): CronSchedule {
  const trimmed = expression.trim();
  const fields = (ALIASES[trimmed.toLowerCase()] ?? trimmed).split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) throw new CronError(expression, `expected 5 or 6 fields, found ${fields.length}`);
  const [sec, min, hour, day, month, weekday] = fields.length === 6 ? fields : ['0', ...fields];
  const seconds = parseField(expression, sec!, FIELDS.second).values;
  const minutes = parseField(expression, min!, FIELDS.minute).values;
  const hours = parseField(expression, hour!, FIELDS.hour).values;
  const days = parseField(expression, day!, FIELDS.day);
  const months = parseField(expression, month!, FIELDS.month).values;
  const weekdays = parseField(expression, weekday!, FIELDS.weekday);
  if (weekdays.values.has(7)) weekdays.values.add(0);

  const dayMatches = (d: Date): boolean => {
    const byDay = days.values.has(d.getUTCDate());
    const byWeekday = weekdays.values.has(d.getUTCDay());
    if (days.any && weekdays.any) return true;
    if (days.any) return byWeekday;
    if (weekdays.any) return byDay;
    return byDay || byWeekday;
  };

  return {
    expression,
    next(after: Date): Date {
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      const limit = after.getTime() + MAX_SEARCH_YEARS * 366 * 24 * 3600 * 1000;
      while (t.getTime() <= limit) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
        } else if (!dayMatches(t)) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
        } else if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
        } else if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
        } else if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
        } else {
          return t;
        }
      }
      throw new CronError(expression, `never fires within ${MAX_SEARCH_YEARS} years`);
    },
  };
}
