/**
 * The sent date of SENTBEFORE / SENTON / SENTSINCE (RFC 3501): the calendar date written in the Date header,
 * ignoring time and zone. Computed when the search row is written (storage/sqlite/search-schema.ts) and by the
 * evaluator when it loads headers itself.
 */
import { fold } from './fold.ts';

import type { DateOp } from './criteria.ts';

const DAY = 86_400_000;

/** A day compared as BEFORE / ON / SINCE (and their SENT forms) compare it with the target day. */
export function compareDay(op: DateOp, day: number, target: number): boolean {
  if (op === 'before') return day < target;
  if (op === 'on') return day === target;
  return day >= target;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** The calendar date written in a Date header (00:00 UTC of it), ignoring time and zone; null when unreadable. */
export function sentDay(value: string): number | null {
  const match = /(\d{1,2})\s+([a-z]{3})[a-z]*\s+(\d{2,4})/i.exec(value);
  if (match) {
    const month = MONTHS.indexOf(match[2]!.toLowerCase());
    let year = Number(match[3]);
    if (match[3]!.length === 2) year += year < 50 ? 2000 : 1900; // RFC 5322 obs-year
    else if (match[3]!.length === 3) year += 1900;
    if (month >= 0) {
      const time = Date.UTC(year, month, Number(match[1]));
      if (Number.isFinite(time)) return time;
    }
  }
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? Math.floor(parsed / DAY) * DAY : null;
}

/** The sent day of a message from its search header text (`name: value` lines, SearchHeaders.headers): the first Date field. */
export function sentDayOfHeaders(headers: string): number | null {
  const match = /^date: ?(.*)$/m.exec(headers);
  return match ? sentDay(fold(match[1]!)) : null;
}
