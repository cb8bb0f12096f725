/**
 * Sequence sets (RFC 3501 §9 `sequence-set`): `1,3:5,7:*`, `*`.
 *
 * A set is parsed once into ranges whose ends may be `*`, then resolved against a mailbox:
 * - message sequence numbers: `*` is the number of messages; numbers above it select nothing;
 * - UIDs: `*` is the highest UID present, and `n:*` with n above it still selects that UID (RFC 3501 §6.4.8).
 * `n:m` may be written in either order; 0 is a syntax error. Nothing here expands a range into an array of
 * numbers it names: UID ranges are cut out of the sorted list of UIDs that exist, so `1:4294967295` costs
 * two binary searches.
 */
import { ImapSyntaxError } from './types.ts';
import { lowerBound, rangePredicate, resolveRanges } from '../../storage/search/ranges.ts';
import type { NumberRange, SequenceRangeSpec, SequenceSet } from '../../storage/search/ranges.ts';

export type { NumberRange, SequenceRangeSpec, SequenceSet } from '../../storage/search/ranges.ts';

/** Largest value a `nz-number` may have (RFC 3501: 32-bit unsigned). */
export const MAX_NUMBER = 4294967295;

const SET_SYNTAX = /^(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?(?:,(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?)*$/;

/** True when `text` is syntactically a sequence set (the SEARCH key grammar needs this test). */
export function isSequenceSet(text: string): boolean {
  return SET_SYNTAX.test(text) && parseNumbersFit(text);
}

function parseNumbersFit(text: string): boolean {
  for (const token of text.split(/[,:]/)) if (token !== '*' && Number(token) > MAX_NUMBER) return false;
  return true;
}

function parseEnd(token: string, text: string): number | '*' {
  if (token === '*') return '*';
  if (!/^[0-9]+$/.test(token)) throw new ImapSyntaxError(`Invalid sequence set: ${text}`);
  const value = Number(token);
  if (value === 0) throw new ImapSyntaxError(`Invalid sequence set (0 is not a valid number): ${text}`);
  if (!/^[1-9]/.test(token) || value > MAX_NUMBER) throw new ImapSyntaxError(`Invalid sequence set: ${text}`);
  return value;
}

/** Parses `1,3:5,7:*`. Throws ImapSyntaxError on anything else (empty parts, 0, leading zeros, > 2^32-1). */
export function parseSequenceSet(text: string): SequenceSet {
  if (typeof text !== 'string' || text.length === 0) throw new ImapSyntaxError('Empty sequence set');
  const ranges: SequenceRangeSpec[] = [];
  for (const item of text.split(',')) {
    const ends = item.split(':');
    if (ends.length > 2 || ends.some((end) => end.length === 0)) throw new ImapSyntaxError(`Invalid sequence set: ${text}`);
    const start = parseEnd(ends[0]!, text);
    const end = ends.length === 2 ? parseEnd(ends[1]!, text) : start;
    ranges.push({ start, end });
  }
  return ranges;
}

function toSet(set: SequenceSet | string): SequenceSet {
  return typeof set === 'string' ? parseSequenceSet(set) : set;
}

/**
 * Resolves `*` to `max` and returns the ranges sorted and merged. Ranges are not clipped: `5:*` with max 3
 * gives 3:5. With max 0 (empty mailbox) `*` is 0, so a range ending in `*` starts at 0 and selects nothing real.
 */
export function resolveSequenceSet(set: SequenceSet | string, max: number): NumberRange[] {
  return resolveRanges(toSet(set), max);
}

/** The largest explicit number in the set (ignoring `*`), 0 when there is none. For "is this beyond EXISTS?" checks. */
export function highestNumber(set: SequenceSet | string): number {
  let highest = 0;
  for (const spec of toSet(set)) {
    if (spec.start !== '*') highest = Math.max(highest, spec.start);
    if (spec.end !== '*') highest = Math.max(highest, spec.end);
  }
  return highest;
}

/**
 * Message sequence numbers selected from a mailbox of `count` messages, ascending and unique. Numbers above
 * `count` are dropped (the caller may answer BAD first, using `highestNumber`); the result never has more
 * than `count` entries.
 */
export function sequenceNumbers(set: SequenceSet | string, count: number): number[] {
  const out: number[] = [];
  for (const range of resolveSequenceSet(set, count)) {
    const from = Math.max(1, range.from);
    const to = Math.min(count, range.to);
    for (let n = from; n <= to; n++) out.push(n);
  }
  return out;
}


/**
 * Positions (0-based indexes into `uids`) of the UIDs the set selects, ascending. `uids` must be sorted ascending
 * (the mailbox index order); `*` is its last element. Index i is also message sequence number i + 1.
 */
export function selectUidIndexes(set: SequenceSet | string, uids: readonly number[]): number[] {
  if (uids.length === 0) return [];
  const out: number[] = [];
  for (const range of resolveSequenceSet(set, uids[uids.length - 1]!)) {
    const first = lowerBound(uids, range.from);
    const last = lowerBound(uids, range.to + 1);
    for (let index = first; index < last; index++) out.push(index);
  }
  return out;
}

/** UIDs of `uids` (sorted ascending) that the set selects, ascending and unique. */
export function selectUids(set: SequenceSet | string, uids: readonly number[]): number[] {
  return selectUidIndexes(set, uids).map((index) => uids[index]!);
}

/**
 * Membership test without expanding anything: `*` resolves to `max` (the message count for sequence numbers,
 * the highest UID for UIDs). Ranges are merged once, then each test is a binary search.
 */
export function sequencePredicate(set: SequenceSet | string, max: number): (value: number) => boolean {
  return rangePredicate(toSet(set), max);
}

/**
 * `[1, 2, 3, 7]` → `"1:3,7"`. By default the numbers are sorted and deduplicated first; with `{ sort: false }`
 * the given order is kept and only ascending runs are joined (COPYUID source and destination sets must list
 * UIDs in corresponding order). Empty input gives "".
 */
export function formatSequenceSet(numbers: readonly number[], options: { sort?: boolean } = {}): string {
  let list = numbers;
  if (options.sort !== false) list = [...new Set(numbers)].sort((a, b) => a - b);
  const parts: string[] = [];
  let index = 0;
  while (index < list.length) {
    const start = list[index]!;
    let end = start;
    while (index + 1 < list.length && list[index + 1] === end + 1) {
      end++;
      index++;
    }
    parts.push(start === end ? String(start) : `${start}:${end}`);
    index++;
  }
  return parts.join(',');
}
