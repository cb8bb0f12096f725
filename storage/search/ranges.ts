/**
 * Number ranges as a search names them (IMAP's sequence sets: `1,3:5,7:*`), kept protocol-neutral so the search
 * evaluator can test UIDs and sequence numbers without depending on a protocol module. `*` resolves to a maximum
 * given at evaluation time (the highest UID, or the message count).
 */

/** One range as written; `'*'` is resolved later. A single number is a range with equal ends. */
export interface SequenceRangeSpec {
  start: number | '*';
  end: number | '*';
}

/** A parsed set: the ranges in the order given. */
export type SequenceSet = readonly SequenceRangeSpec[];

/** A resolved inclusive range, `from <= to`. */
export interface NumberRange {
  from: number;
  to: number;
}

/**
 * Resolves `*` to `max` and returns the ranges sorted and merged. Ranges are not clipped: `5:*` with max 3
 * gives 3:5. With max 0 (empty mailbox) `*` is 0, so a range ending in `*` starts at 0 and selects nothing real.
 */
export function resolveRanges(set: SequenceSet, max: number): NumberRange[] {
  const ranges: NumberRange[] = [];
  for (const spec of set) {
    const a = spec.start === '*' ? max : spec.start;
    const b = spec.end === '*' ? max : spec.end;
    ranges.push({ from: Math.min(a, b), to: Math.max(a, b) });
  }
  ranges.sort((x, y) => x.from - y.from);
  const merged: NumberRange[] = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range.from <= last.to + 1) last.to = Math.max(last.to, range.to);
    else merged.push({ ...range });
  }
  return merged;
}

/** Membership test without expanding anything: ranges merged once, then each test is a binary search. */
export function rangePredicate(set: SequenceSet, max: number): (value: number) => boolean {
  const ranges = resolveRanges(set, max);
  return (value) => {
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const range = ranges[mid]!;
      if (value < range.from) high = mid - 1;
      else if (value > range.to) low = mid + 1;
      else return true;
    }
    return false;
  };
}

/** Index of the first of the `end` leading elements of sorted `list` that is >= value (`end` if none is). */
export function lowerBound(list: ArrayLike<number>, value: number, end = list.length): number {
  let low = 0;
  let high = end;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
