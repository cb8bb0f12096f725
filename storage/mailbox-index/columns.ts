/**
 * The per-message columns of a mailbox index, in UID order: typed arrays that grow by doubling, searched by binary
 * search on the UID column, compacted in one pass when messages leave. About 36 bytes per message.
 *
 * Columns adopted from a snapshot (`adoptDeferred`) are read when first used, in two parts: UIDs and flags, then
 * modseqs, sizes and dates. Until then the count and the first and last UID are known, which is what a SELECT of a
 * mailbox nobody changed since its snapshot asks (EXISTS, UIDNEXT, \Recent counted over every message), so opening a
 * large mailbox costs the same as a small one.
 */
import type { Flag, IndexColumns, MessageIndexEntry } from '../ports.ts';
import { lowerBound } from '../search/ranges.ts';
import type { RestColumns } from './snapshot.ts';

/** Columns read later: the count and the first and last UID now, the arrays from `head` and `rest` (each once). */
export interface DeferredColumns {
  count: number;
  firstUid: number;
  lastUid: number;
  /** UIDs and interned flag list numbers. */
  head(): { uids: Uint32Array; flags: Uint32Array };
  rest(): RestColumns;
}

export class Columns {
  count = 0;
  #uids: Uint32Array = new Uint32Array(0);
  /** Interned flag list number (flag-sets.ts). */
  #flags: Uint32Array = new Uint32Array(0);
  #modseqs: Float64Array = new Float64Array(0);
  #sizes: Float64Array = new Float64Array(0);
  #dates: Float64Array = new Float64Array(0);
  /** The index's change stamp of the last flag change (0: none since loaded). */
  stamps: Uint32Array = new Uint32Array(0);
  /** What is still to be read (adoptDeferred). */
  #deferred: DeferredColumns | null = null;
  #headRead = true;

  get uids(): Uint32Array {
    if (!this.#headRead) this.#readHead();
    return this.#uids;
  }

  get flags(): Uint32Array {
    if (!this.#headRead) this.#readHead();
    return this.#flags;
  }

  get modseqs(): Float64Array {
    if (this.#deferred) this.materialize();
    return this.#modseqs;
  }

  get sizes(): Float64Array {
    if (this.#deferred) this.materialize();
    return this.#sizes;
  }

  get dates(): Float64Array {
    if (this.#deferred) this.materialize();
    return this.#dates;
  }

  /** Some columns are still to be read (adoptDeferred). */
  get deferred(): boolean {
    return this.#deferred !== null;
  }

  #readHead(): void {
    const head = this.#deferred!.head();
    this.#uids = head.uids;
    this.#flags = head.flags;
    this.#headRead = true;
  }

  /**
   * Reads the deferred columns now, if any: UIDs and flags first, the rest with `all` (throws when they cannot be
   * read; the next use tries again).
   */
  materialize(all = true): void {
    const deferred = this.#deferred;
    if (!deferred) return;
    if (!this.#headRead) this.#readHead();
    if (!all) return;
    const rest = deferred.rest();
    this.#deferred = null;
    this.#modseqs = rest.modseqs;
    this.#sizes = rest.sizes;
    this.#dates = rest.internalDates;
  }

  /** Reads the next deferred part (UIDs and flags, then the rest); true when a part remains after it. */
  readNext(): boolean {
    if (!this.#deferred) return false;
    const head = !this.#headRead;
    this.materialize(!head);
    return head;
  }

  #reserve(extra: number): void {
    const need = this.count + extra;
    if (need <= this.#uids.length) return;
    const size = Math.max(need, this.#uids.length * 2, 16);
    const grow = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old.subarray(0, this.count));
      return next;
    };
    this.#uids = grow(this.#uids, (n) => new Uint32Array(n));
    this.#modseqs = grow(this.#modseqs, (n) => new Float64Array(n));
    this.#sizes = grow(this.#sizes, (n) => new Float64Array(n));
    this.#dates = grow(this.#dates, (n) => new Float64Array(n));
    this.#flags = grow(this.#flags, (n) => new Uint32Array(n));
    this.stamps = grow(this.stamps, (n) => new Uint32Array(n));
  }

  /** Appends loaded rows (UIDs above every held one); `flagIds[k]` is row k's interned flag list. */
  append(rows: IndexColumns, flagIds: Uint32Array): void {
    this.materialize();
    this.#reserve(rows.count);
    const at = this.count;
    this.#uids.set(rows.uids.subarray(0, rows.count), at);
    this.#modseqs.set(rows.modseqs.subarray(0, rows.count), at);
    this.#sizes.set(rows.sizes.subarray(0, rows.count), at);
    this.#dates.set(rows.internalDates.subarray(0, rows.count), at);
    this.#flags.set(flagIds.subarray(0, rows.count), at);
    this.stamps.fill(0, at, at + rows.count);
    this.count += rows.count;
  }

  /**
   * Takes a snapshot's columns as they are, read when first used (an empty index loading its snapshot); the arrays
   * are owned from then on.
   */
  adoptDeferred(deferred: DeferredColumns): void {
    this.count = deferred.count;
    this.stamps = new Uint32Array(deferred.count);
    this.#deferred = deferred;
    this.#headRead = false;
  }

  /** The UID at index i (the first and the last without reading the UIDs). */
  uidAt(i: number): number {
    if (!this.#headRead) {
      if (i === 0) return this.#deferred!.firstUid;
      if (i === this.count - 1) return this.#deferred!.lastUid;
    }
    return this.uids[i]!;
  }

  /** Highest UID held (0 when empty). */
  get maxUid(): number {
    return this.count > 0 ? this.uidAt(this.count - 1) : 0;
  }

  /** Index of the first UID >= uid. */
  lowerBound(uid: number): number {
    if (!this.#headRead) {
      // at or below the first UID, above the last one: known without reading the UIDs
      if (this.count === 0 || uid <= this.#deferred!.firstUid) return 0;
      if (uid > this.#deferred!.lastUid) return this.count;
    }
    return lowerBound(this.uids, uid, this.count);
  }

  /** Index of `uid`, or -1. */
  indexOf(uid: number): number {
    const i = this.lowerBound(uid);
    return i < this.count && this.uidAt(i) === uid ? i : -1;
  }

  /** Removes the rows at these indexes (ascending, distinct) in one pass. */
  remove(indexes: readonly number[]): void {
    if (indexes.length === 0) return;
    this.materialize();
    const columns = [this.#uids, this.#modseqs, this.#sizes, this.#dates, this.#flags, this.stamps];
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
