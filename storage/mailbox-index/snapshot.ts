/**
 * A mailbox index as one byte string, so a large mailbox opens without reading every message row: the registry
 * saves it (messages.saveIndexSnapshot) when an index leaves memory, and the next load reads it back and catches up
 * on the change log from the cursor it was taken at (mailbox-index.ts).
 *
 *   header   32 bytes: version u32, count u32, flag JSON length u32, flag number width u32 (1, 2 or 4 bytes),
 *            loadedThrough f64, highestModseq f64
 *   flags    the distinct flag lists as JSON (a list of lists), indexed by the flag numbers; padded to 8 bytes
 *   head     uids (u32 each), flag numbers (of that width each); padded to 8 bytes
 *   rest     modseqs, sizes, dates (f64 each)
 *
 * The header, flag lists and head are what SELECT needs (UIDs for EXISTS and sequence numbers, flags for UNSEEN and
 * FLAGS): a load reads only them, about 5 bytes per message, and the rest (24 bytes per message) when a command first
 * needs a modseq, size or date (Columns), or shortly after. Little-endian, as typed arrays are on every platform this
 * server runs on.
 */
import type { Flag, IndexColumns, IndexSnapshotSource } from '../ports.ts';

const VERSION = 2;
const HEADER = 32;

export interface SnapshotState {
  columns: IndexColumns;
  /** Highest UID ever loaded (may be above the highest held one). */
  loadedThrough: number;
  highestModseq: number;
}

/** The columns a snapshot's head leaves for later. */
export interface RestColumns {
  modseqs: Float64Array;
  sizes: Float64Array;
  internalDates: Float64Array;
}

/** A snapshot with its head read: everything but modseqs, sizes and dates, which `rest()` reads (once). */
export interface SnapshotHead {
  count: number;
  uids: Uint32Array;
  flags: Uint32Array;
  flagSets: Flag[][];
  loadedThrough: number;
  highestModseq: number;
  /** Reads the rest and closes the source; throws when it cannot be read (then the source stays open for a retry). */
  rest(): RestColumns;
  /** Closes the source without reading the rest. */
  close(): void;
}

const align8 = (n: number) => (n + 7) & ~7;
/** Bytes typed arrays can view: a source's copy, copied again when it starts off an 8-byte boundary (a pooled buffer). */
const aligned = (bytes: Uint8Array) => (bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes));
const widthFor = (lists: number) => (lists <= 0x100 ? 1 : lists <= 0x10000 ? 2 : 4);

interface Layout {
  /** Offset of the uids, after the flag lists. */
  uids: number;
  /** Offset of the rest (modseqs, sizes, dates), end of the head. */
  rest: number;
  length: number;
}

function layout(n: number, jsonLength: number, width: number): Layout {
  const uids = align8(HEADER + jsonLength);
  const rest = align8(uids + n * 4 + n * width);
  return { uids, rest, length: rest + n * 24 };
}

export function encodeIndexSnapshot(state: SnapshotState): Uint8Array {
  const { columns: c } = state;
  const n = c.count;
  const json = new TextEncoder().encode(JSON.stringify(c.flagSets));
  const width = widthFor(c.flagSets.length);
  const at = layout(n, json.length, width);
  const out = new Uint8Array(at.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, VERSION, true);
  view.setUint32(4, n, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, width, true);
  view.setFloat64(16, state.loadedThrough, true);
  view.setFloat64(24, state.highestModseq, true);
  out.set(json, HEADER);
  new Uint32Array(out.buffer, at.uids, n).set(c.uids.subarray(0, n));
  const Numbers = width === 1 ? Uint8Array : width === 2 ? Uint16Array : Uint32Array;
  new Numbers(out.buffer, at.uids + n * 4, n).set(c.flags.subarray(0, n));
  let offset = at.rest;
  for (const column of [c.modseqs, c.sizes, c.internalDates]) {
    new Float64Array(out.buffer, offset, n).set(column.subarray(0, n));
    offset += n * 8;
  }
  return out;
}

/**
 * Reads a snapshot's header and head, or null when it is not one this version wrote (then the index is read in
 * full; the source is closed then, else it belongs to the returned head). The head's columns are views over the
 * bytes read, nothing here visits each message (but widening flag numbers stored in 1 or 2 bytes, one native copy):
 * the layout and the bounds are checked, and a flag list number out of range reads as no flags (flag-sets.ts).
 */
export function openIndexSnapshot(source: IndexSnapshotSource): SnapshotHead | null {
  try {
    const head = readHead(source);
    if (!head) source.close();
    return head;
  } catch (err) {
    source.close();
    throw err;
  }
}

function readHead(source: IndexSnapshotSource): SnapshotHead | null {
  if (source.length < HEADER) return null;
  const first = source.read(0, HEADER);
  const header = new DataView(first.buffer, first.byteOffset, HEADER);
  if (header.getUint32(0, true) !== VERSION) return null;
  const n = header.getUint32(4, true);
  const jsonLength = header.getUint32(8, true);
  const width = header.getUint32(12, true);
  if (width !== 1 && width !== 2 && width !== 4) return null;
  const at = layout(n, jsonLength, width);
  if (source.length !== at.length) return null;
  // the flag lists and the head in one read: offsets below are relative to HEADER (a multiple of 8)
  const bytes = aligned(source.read(HEADER, at.rest - HEADER));
  let flagSets: Flag[][];
  try {
    flagSets = JSON.parse(new TextDecoder().decode(bytes.subarray(0, jsonLength))) as Flag[][];
  } catch {
    return null;
  }
  if (!Array.isArray(flagSets) || !flagSets.every((list) => Array.isArray(list))) return null;
  const uids = new Uint32Array(bytes.buffer, bytes.byteOffset + at.uids - HEADER, n);
  const numbersAt = bytes.byteOffset + at.uids - HEADER + n * 4;
  let flags: Uint32Array;
  if (width === 4) flags = new Uint32Array(bytes.buffer, numbersAt, n);
  else {
    flags = new Uint32Array(n);
    flags.set(width === 1 ? new Uint8Array(bytes.buffer, numbersAt, n) : new Uint16Array(bytes.buffer, numbersAt, n));
  }
  const loadedThrough = header.getFloat64(16, true);
  // UIDs ascend (the encoder writes the index's sorted column): the first and the last are within bounds
  if (n > 0 && (uids[0]! < 1 || uids[n - 1]! < uids[0]! || uids[n - 1]! > loadedThrough)) return null;
  return {
    count: n,
    uids,
    flags,
    flagSets,
    loadedThrough,
    highestModseq: header.getFloat64(24, true),
    rest() {
      const bytes = aligned(source.read(at.rest, n * 24));
      source.close();
      const f64 = (k: number) => new Float64Array(bytes.buffer, bytes.byteOffset + k * n * 8, n);
      return { modseqs: f64(0), sizes: f64(1), internalDates: f64(2) };
    },
    close: () => source.close(),
  };
}

/** A snapshot's bytes as a source (a backend that holds them in memory; tests). */
export function snapshotSource(snapshot: { uidValidity: number; cursor: number; bytes: Uint8Array }): IndexSnapshotSource {
  const { bytes } = snapshot;
  let open = true;
  return {
    uidValidity: snapshot.uidValidity,
    cursor: snapshot.cursor,
    length: bytes.length,
    read(offset, length) {
      if (!open) throw new Error('index snapshot closed');
      if (offset < 0 || offset + length > bytes.length) throw new Error('index snapshot read past its end');
      return bytes.slice(offset, offset + length);
    },
    close() {
      open = false;
    },
  };
}

/** The whole state in a snapshot's bytes, or null when they are not a snapshot this version wrote (tests, tools). */
export function decodeIndexSnapshot(bytes: Uint8Array): SnapshotState | null {
  const head = openIndexSnapshot(snapshotSource({ uidValidity: 0, cursor: 0, bytes }));
  if (!head) return null;
  const rest = head.rest();
  const { count, uids, flags, flagSets, loadedThrough, highestModseq } = head;
  return { columns: { count, uids, flags, flagSets, ...rest }, loadedThrough, highestModseq };
}
