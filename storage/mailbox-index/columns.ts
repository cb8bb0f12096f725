/**
 * The per-message columns of a mailbox index, in UID order: typed arrays that grow by doubling, searched by binary
 * search on the UID column, compacted in one pass when messages leave. About 36 bytes per message.
 *
 * Columns adopted from a snapshot's head (`adoptHead`) have UIDs and flags at once and their modseqs, sizes and dates
 * deferred: the first use of any of these three (or `materialize`) reads them, so a SELECT that needs only UIDs and
 * flags does not wait for them.
 */
import type { Flag, IndexColumns, MessageIndexEntry } from '../ports.ts';
import { lowerBound } from '../search/ranges.ts';
import type { RestColumns } from './snapshot.ts';

export class Columns {
  count = 0;
  uids: Uint32Array = new Uint32Array(0);
  #modseqs: Float64Array = new Float64Array(0);
  #sizes: Float64Array = new Float64Array(0);
  #dates: Float64Array = new Float64Array(0);
  /** Reads the deferred columns (adoptHead), until they are read. */
  #rest: (() => RestColumns) | null = null;
  /** Interned flag list number (flag-sets.ts). */
  flags: Uint32Array = new Uint32Array(0);
  /** The index's change stamp of the last flag change (0: none since loaded). */
  stamps: Uint32Array = new Uint32Array(0);

  get modseqs(): Float64Array {
    if (this.#rest) this.materialize();
    return this.#modseqs;
  }

  get sizes(): Float64Array {
    if (this.#rest) this.materialize();
    return this.#sizes;
  }

  get dates(): Float64Array {
    if (this.#rest) this.materialize();
    return this.#dates;
  }

  /** Some columns are still to be read (adoptHead). */
  get deferred(): boolean {
    return this.#rest !== null;
  }

  /** Reads the deferred columns now, if any (throws when they cannot be read; the next use tries again). */
  materialize(): void {
    const read = this.#rest;
    if (!read) return;
    const rest = read();
    this.#rest = null;
    this.#modseqs = rest.modseqs;
    this.#sizes = rest.sizes;
    this.#dates = rest.internalDates;
  }

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
    this.#modseqs = grow(this.modseqs, (n) => new Float64Array(n));
    this.#sizes = grow(this.#sizes, (n) => new Float64Array(n));
    this.#dates = grow(this.#dates, (n) => new Float64Array(n));
    this.flags = grow(this.flags, (n) => new Uint32Array(n));
    this.stamps = grow(this.stamps, (n) => new Uint32Array(n));
  }

  /** Appends loaded rows (UIDs above every held one); `flagIds[k]` is row k's interned flag list. */
  append(rows: IndexColumns, flagIds: Uint32Array): void {
    this.materialize();
    this.#reserve(rows.count);
    const at = this.count;
    this.uids.set(rows.uids.subarray(0, rows.count), at);
    this.#modseqs.set(rows.modseqs.subarray(0, rows.count), at);
    this.#sizes.set(rows.sizes.subarray(0, rows.count), at);
    this.#dates.set(rows.internalDates.subarray(0, rows.count), at);
    this.flags.set(flagIds.subarray(0, rows.count), at);
    this.stamps.fill(0, at, at + rows.count);
    this.count += rows.count;
  }

  /**
   * Takes a snapshot's head as the columns themselves, without copying (an empty index reading its snapshot):
   * `uids` and the interned flag list numbers now, the other columns from `rest` when first used. The arrays are
   * owned from here on.
   */
  adoptHead(count: number, uids: Uint32Array, flagIds: Uint32Array, rest: () => RestColumns): void {
    this.count = count;
    this.uids = uids;
    this.flags = flagIds;
    this.stamps = new Uint32Array(count);
    this.#rest = rest;
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
    const columns = [this.uids, this.modseqs, this.#sizes, this.#dates, this.flags, this.stamps];
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

/** Columns for `count` messages, zeroed, with no flag lists yet. */
function emptyIndexColumns(count: number): IndexColumns {
  return {
    count,
    uids: new Uint32Array(count),
    modseqs: new Float64Array(count),
    sizes: new Float64Array(count),
    internalDates: new Float64Array(count),
    flags: new Uint32Array(count),
    flagSets: [],
  };
}

/** IndexColumns from rows in UID order, each distinct flag list parsed and kept once: for any backend. */
export function collectIndexColumns<T>(rows: readonly T[], read: IndexRowReader<T>): IndexColumns {
  const count = rows.length;
  const out = emptyIndexColumns(count);
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

/**
 * One page of the index as text columns, as a database can aggregate them in one row: decimal numbers separated by
 * commas (`uids`, `modseqs`, `sizes`, `dates`) and each message's flag list key separated by newlines (`flags`).
 */
export interface PackedIndexPage {
  count: number;
  uids: string;
  modseqs: string;
  sizes: string;
  dates: string;
  flags: string;
}

/** Integers from a comma-separated decimal list into `out`; the count, or -1 when the text is not such a list. */
function parseNumbers(text: string, out: Uint32Array | Float64Array): number {
  let n = 0;
  let value = 0;
  let sign = 1;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 44;
    if (c === 44) {
      if (digits === 0 || n >= out.length) return -1;
      out[n++] = sign * value;
      value = 0;
      sign = 1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      digits++;
    } else if (c === 45 && digits === 0 && sign === 1) sign = -1;
    else return -1;
  }
  return n;
}

/**
 * IndexColumns from packed pages (one aggregate row per page instead of an object per message): null when a page
 * does not parse or its UIDs are not ascending, so the caller can read rows instead. `parseFlags` turns a flag list
 * key into its flags, asked once per distinct key.
 */
export function packedIndexColumns(pages: readonly PackedIndexPage[], parseFlags: (key: string) => Flag[]): IndexColumns | null {
  const count = pages.reduce((sum, page) => sum + page.count, 0);
  const out = emptyIndexColumns(count);
  const sets = new Map<string, number>();
  let at = 0;
  for (const page of pages) {
    if (page.count === 0) continue;
    const n = parseNumbers(page.uids, out.uids.subarray(at, at + page.count));
    if (n !== page.count) return null;
    if (parseNumbers(page.modseqs, out.modseqs.subarray(at)) !== n) return null;
    if (parseNumbers(page.sizes, out.sizes.subarray(at)) !== n) return null;
    if (parseNumbers(page.dates, out.internalDates.subarray(at)) !== n) return null;
    const keys = page.flags.split('\n');
    if (keys.length !== n) return null;
    for (let k = 0; k < n; k++) {
      if (at + k > 0 && out.uids[at + k]! <= out.uids[at + k - 1]!) return null;
      const key = keys[k]!;
      let set = sets.get(key);
      if (set === undefined) sets.set(key, (set = out.flagSets.push(parseFlags(key)) - 1));
      out.flags[at + k] = set;
    }
    at += n;
  }
  return out;
}

/** IndexColumns from index entries in UID order. */
export function indexColumnsFrom(entries: readonly MessageIndexEntry[]): IndexColumns {
  return collectIndexColumns(entries, ENTRY_READER);
}
