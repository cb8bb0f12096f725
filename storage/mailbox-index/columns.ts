/**
 * The per-message columns of a mailbox index, in UID order: typed arrays that grow by doubling, searched by binary
 * search on the UID column, compacted in one pass when messages leave. About 36 bytes per message.
 */
import type { Flag, IndexColumns, MessageIndexEntry } from '../ports.ts';
import { lowerBound } from '../search/ranges.ts';

export class Columns {
  count = 0;
  uids = new Uint32Array(0);
  modseqs = new Float64Array(0);
  sizes = new Float64Array(0);
  dates = new Float64Array(0);
  /** Interned flag list number (flag-sets.ts). */
  flags = new Uint32Array(0);
  /** The index's change stamp of the last flag change (0: none since loaded). */
  stamps = new Uint32Array(0);

  #reserve(extra: number): void {
    const need = this.count + extra;
    if (need <= this.uids.length) return;
    const size = Math.max(need, this.uids.length * 2, 16);
    const grow = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old.subarray(0, this.count));
      return next;
    };
    this.uids = grow(this.uids, (n) => new Uint32Array(n));
    this.modseqs = grow(this.modseqs, (n) => new Float64Array(n));
    this.sizes = grow(this.sizes, (n) => new Float64Array(n));
    this.dates = grow(this.dates, (n) => new Float64Array(n));
    this.flags = grow(this.flags, (n) => new Uint32Array(n));
    this.stamps = grow(this.stamps, (n) => new Uint32Array(n));
  }

  /** Appends loaded rows (UIDs above every held one); `flagIds[k]` is row k's interned flag list. */
  append(rows: IndexColumns, flagIds: Uint32Array): void {
    this.#reserve(rows.count);
    const at = this.count;
    this.uids.set(rows.uids.subarray(0, rows.count), at);
    this.modseqs.set(rows.modseqs.subarray(0, rows.count), at);
    this.sizes.set(rows.sizes.subarray(0, rows.count), at);
    this.dates.set(rows.internalDates.subarray(0, rows.count), at);
    this.flags.set(flagIds.subarray(0, rows.count), at);
    this.stamps.fill(0, at, at + rows.count);
    this.count += rows.count;
  }

  /** Index of the first UID >= uid. */
  lowerBound(uid: number): number {
    return lowerBound(this.uids, uid, this.count);
  }

  /** Index of `uid`, or -1. */
  indexOf(uid: number): number {
    const i = this.lowerBound(uid);
    return i < this.count && this.uids[i] === uid ? i : -1;
  }

  /** Removes the rows at these indexes (ascending, distinct) in one pass. */
  remove(indexes: readonly number[]): void {
    if (indexes.length === 0) return;
    const columns = [this.uids, this.modseqs, this.sizes, this.dates, this.flags, this.stamps];
    let write = indexes[0]!;
    for (let k = 0; k < indexes.length; k++) {
      const from = indexes[k]! + 1;
      const to = k + 1 < indexes.length ? indexes[k + 1]! : this.count;
      if (to > from) for (const column of columns) column.copyWithin(write, from, to);
      write += to - from;
    }
    this.count = write;
  }
}

/** How to read one row of a backend's index query (no object allocated per row). */
export interface IndexRowReader<T> {
  uid(row: T): number;
  modseq(row: T): number;
  size(row: T): number;
  internalDate(row: T): number;
  /** A text equal for equal flag lists (the stored JSON, the joined list). */
  flagsKey(row: T): string;
  /** The row's flags, asked once per distinct key. */
  flags(row: T): Flag[];
}

/** IndexColumns from rows in UID order, each distinct flag list parsed and kept once: for any backend. */
export function collectIndexColumns<T>(rows: readonly T[], read: IndexRowReader<T>): IndexColumns {
  const count = rows.length;
  const out: IndexColumns = {
    count,
    uids: new Uint32Array(count),
    modseqs: new Float64Array(count),
    sizes: new Float64Array(count),
    internalDates: new Float64Array(count),
    flags: new Uint32Array(count),
    flagSets: [],
  };
  const sets = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const row = rows[i]!;
    out.uids[i] = read.uid(row);
    out.modseqs[i] = read.modseq(row);
    out.sizes[i] = read.size(row);
    out.internalDates[i] = read.internalDate(row);
    const key = read.flagsKey(row);
    let set = sets.get(key);
    if (set === undefined) sets.set(key, (set = out.flagSets.push(read.flags(row)) - 1));
    out.flags[i] = set;
  }
  return out;
}

const ENTRY_READER: IndexRowReader<MessageIndexEntry> = {
  uid: (e) => e.uid,
  modseq: (e) => e.modseq,
  size: (e) => e.size,
  internalDate: (e) => e.internalDate,
  flagsKey: (e) => e.flags.join(' '),
  flags: (e) => [...e.flags],
};

/** IndexColumns from index entries in UID order. */
export function indexColumnsFrom(entries: readonly MessageIndexEntry[]): IndexColumns {
  return collectIndexColumns(entries, ENTRY_READER);
}
