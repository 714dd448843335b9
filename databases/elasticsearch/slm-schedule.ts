/**
 * The stack's backup schedules are 5-field cron expressions in UTC (`30 1 * * *`), as Kubernetes
 * CronJobs read them. Elasticsearch's snapshot lifecycle (SLM) reads its own cron syntax, Quartz's
 * (https://www.elastic.co/docs/reference/elasticsearch/rest-apis/api-conventions#api-cron-expressions):
 * seconds first, then minutes, hours, day of month, month, day of week (1-7 or SUN-SAT, 1 being
 * Sunday), and exactly one of the two day fields `?` (no specific value). SLM evaluates it in UTC.
 *
 * {@link slmSchedule} converts one into the other and refuses, with the reason, what has no
 * equivalent: both day fields restricted (cron runs when either matches, Quartz cannot say "or"),
 * `@reboot`, anything but the standard fields' syntax.
 */

interface FieldRule {
  name: string;
  min: number;
  max: number;
  /** Names accepted for values (JAN or SUN is its index + `nameBase`). */
  names?: readonly string[];
  nameBase?: number;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

const FIELDS: readonly FieldRule[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  // 0 and 7 are both Sunday in cron.
  { name: 'day of week', min: 0, max: 7, names: DAYS, nameBase: 0 },
];

/** The macros cron implementations (and Kubernetes) accept, as the five fields they stand for. */
const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export class CronConversionError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`cannot convert the cron expression ${JSON.stringify(expression)} to Elasticsearch's cron syntax: ${reason}`);
    this.name = 'CronConversionError';
  }
}

/** One parsed field: its items as Quartz writes them, and the values it matches. */
interface ParsedField {
  /** Every value of the field's range matches (`*`, `*\/1`, `0-59`): the field does not restrict. */
  full: boolean;
  values: number[];
  /** The field in Quartz's syntax (day of week aside, which is written from `values`). */
  quartz: string;
}

function parseValue(text: string, rule: FieldRule, expression: string): number {
  const upper = text.toUpperCase();
  const named = rule.names?.indexOf(upper as never) ?? -1;
  if (named >= 0) return named + rule.nameBase!;
  if (!/^\d+$/.test(text)) {
    const names = rule.names ? ` or one of ${rule.names.join(', ')}` : '';
    throw new CronConversionError(expression, `the ${rule.name} field has "${text}", expected a number from ${rule.min} to ${rule.max}${names}`);
  }
  const value = Number(text);
  if (value < rule.min || value > rule.max) throw new CronConversionError(expression, `the ${rule.name} field has ${value}, outside ${rule.min}-${rule.max}`);
  return value;
}

function parseField(text: string, rule: FieldRule, expression: string): ParsedField {
  const values = new Set<number>();
  const quartz: string[] = [];
  for (const item of text.split(',')) {
    const match = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
    if (!match) {
      throw new CronConversionError(expression, `the ${rule.name} field has "${item}", expected *, a value, a range a-b, a step (*/n, a-b/n, a/n) or a list of them`);
    }
    const [, base, stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new CronConversionError(expression, `the ${rule.name} field has the step /${stepText}, expected 1 or more`);
    let from: number;
    let to: number;
    if (base === '*') {
      [from, to] = [rule.min, rule.max];
    } else if (base!.includes('-')) {
      const [start, end] = base!.split('-');
      from = parseValue(start!, rule, expression);
      to = parseValue(end!, rule, expression);
      if (from > to) throw new CronConversionError(expression, `the ${rule.name} field has the range ${base}, which runs backwards`);
    } else {
      from = parseValue(base!, rule, expression);
      // `a/n`: from a to the end of the range, every n (as Kubernetes' cron reads it).
      to = stepText === undefined ? from : rule.max;
    }
    for (let value = from; value <= to; value += step) values.add(value);
    // Quartz spells a star with a step from the range's start: `0/15` for `*/15`.
    quartz.push(base === '*' ? (stepText === undefined ? '*' : `${rule.min}/${step}`) : item.toUpperCase());
  }
  const sorted = [...values].sort((a, b) => a - b);
  const span = rule.max - rule.min + 1;
  return { full: sorted.length === span, values: sorted, quartz: quartz.join(',') };
}

/** The day-of-week field from its values, as Quartz's names (cron's 0 and 7 are both Sunday). */
function dayOfWeek(values: readonly number[]): { full: boolean; quartz: string } {
  const days = [...new Set(values.map((value) => value % 7))].sort((a, b) => a - b);
  return { full: days.length === 7, quartz: days.map((day) => DAYS[day]).join(',') };
}

export interface SlmScheduleConversion {
  /** Elasticsearch's cron expression, seconds first. */
  schedule: string;
  /** How many times a day it fires at most (minutes × hours): what the retention's upper bound is sized from. */
  runsPerDay: number;
}

/** Converts a 5-field cron expression (UTC) to SLM's schedule; throws {@link CronConversionError} with the reason. */
export function convertCron(expression: string): SlmScheduleConversion {
  const trimmed = expression.trim();
  const expanded = trimmed.startsWith('@') ? MACROS[trimmed.toLowerCase()] : trimmed;
  if (expanded === undefined) {
    throw new CronConversionError(expression, `${trimmed} is not a schedule Elasticsearch can run (the macros it has equivalents for: ${Object.keys(MACROS).join(', ')})`);
  }
  const fields = expanded.split(/\s+/);
  if (fields.length !== 5) {
    throw new CronConversionError(expression, `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`);
  }
  const [minute, hour, dayOfMonth, month, weekday] = fields.map((field, index) => parseField(field, FIELDS[index]!, expression));
  const days = dayOfWeek(weekday!.values);
  if (!dayOfMonth!.full && !days.full) {
    throw new CronConversionError(
      expression,
      `both the day of month (${fields[2]}) and the day of week (${fields[4]}) are restricted; Elasticsearch's cron needs one of them to be "?" and cannot say "either", so choose one`,
    );
  }
  // The unrestricted day field becomes `?`; with both unrestricted, the day of week.
  const dayFields = days.full ? `${dayOfMonth!.quartz} ${month!.quartz} ?` : `? ${month!.quartz} ${days.quartz}`;
  return {
    schedule: `0 ${minute!.quartz} ${hour!.quartz} ${dayFields}`,
    runsPerDay: minute!.values.length * hour!.values.length,
  };
}

/** SLM's schedule for a 5-field cron expression (UTC). */
export function slmSchedule(expression: string): string {
  return convertCron(expression).schedule;
}
