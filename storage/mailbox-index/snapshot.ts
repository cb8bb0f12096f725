/**
 * A mailbox index as one byte string, so a large mailbox opens without reading every message row: the registry
 * saves it (messages.saveIndexSnapshot) when an index leaves memory, and the next load reads it back and catches up
 * on the change log from the cursor it was taken at (mailbox-index.ts).
 *
 *   header   48 bytes: version u32, count u32, flag JSON length u32, flag number width u32 (1, 2 or 4 bytes),
 *            loadedThrough f64, highestModseq f64, first UID u32, last UID u32, first unseen f64 (an index, -1: none)
 *   flags    the distinct flag lists as JSON (a list of lists), indexed by the flag numbers; padded to 8 bytes
 *   head     uids (u32 each), flag numbers (of that width each); padded to 8 bytes
 *   rest     modseqs, sizes, dates (f64 each)
 *
 * The header and the flag lists are what a SELECT of a mailbox unchanged since the snapshot needs (EXISTS, UIDNEXT,
 * UNSEEN, FLAGS): a load reads only them, whatever the size of the mailbox; the head (about 5 bytes per message) when
 * a command first needs a UID or flags in the middle, the rest (24 bytes per message) when it first needs a modseq,
 * size or date (Columns), or shortly after. Little-endian, as typed arrays are on every platform this server runs on.
 */
import type { Flag, IndexColumns, IndexSnapshotSource } from '../ports.ts';

const VERSION = 2;
const HEADER = 48;

export interface SnapshotState {
  columns: IndexColumns;
  /** Highest UID ever loaded (may be above the highest held one). */
  loadedThrough: number;
  highestModseq: number;
  /** Index of the first message without \Seen, -1 when none. */
  firstUnseen: number;
}

/** The columns a snapshot's head leaves for later. */
export interface RestColumns {
  modseqs: Float64Array;
  sizes: Float64Array;
  internalDates: Float64Array;
}

/** A snapshot with its header read: the columns are read by `head()` (UIDs, flag numbers) and `rest()`, once each. */
export interface SnapshotHead {
  count: number;
  /** The first and the last UID (0 when empty). */
  firstUid: number;
  lastUid: number;
  firstUnseen: number;
  flagSets: Flag[][];
  loadedThrough: number;
  highestModseq: number;
  /** Reads the UIDs and flag numbers (throws when they cannot be read, or do not match the header: closed then). */
  head(): { uids: Uint32Array; flags: Uint32Array };
  /** Reads the modseqs, sizes and dates; the source is closed once both parts are read. */
  rest(): RestColumns;
  /** Closes the source (what is not read yet can no longer be). */
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
  view.setUint32(32, n > 0 ? c.uids[0]! : 0, true);
  view.setUint32(36, n > 0 ? c.uids[n - 1]! : 0, true);
  view.setFloat64(40, state.firstUnseen, true);
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
 * Reads a snapshot's header and flag lists, or null when it is not one this version wrote (then the index is read in
 * full; the source is closed then, else it belongs to the returned head). Nothing here visits each message: the
 * layout and the bounds are checked, the columns are views over the bytes read later, and a flag list number out of
 * range reads as no flags (flag-sets.ts).
 */
export function openIndexSnapshot(source: IndexSnapshotSource): SnapshotHead | null {
  try {
    const head = readHeader(source);
    if (!head) source.close();
    return head;
  } catch (err) {
    source.close();
    throw err;
  }
}

function uidAt(source: IndexSnapshotSource, offset: number): number {
  const b = source.read(offset, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function readHeader(source: IndexSnapshotSource): SnapshotHead | null {
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
  let flagSets: Flag[][];
  try {
    flagSets = JSON.parse(new TextDecoder().decode(source.read(HEADER, jsonLength))) as Flag[][];
  } catch {
    return null;
  }
  if (!Array.isArray(flagSets) || !flagSets.every((list) => Array.isArray(list))) return null;
  const loadedThrough = header.getFloat64(16, true);
  const firstUid = header.getUint32(32, true);
  const lastUid = header.getUint32(36, true);
  const firstUnseen = header.getFloat64(40, true);
  // UIDs ascend (the encoder writes the index's sorted column): the first and the last are within bounds
  if (n > 0 && (firstUid < 1 || lastUid < firstUid || lastUid > loadedThrough)) return null;
  if (!Number.isInteger(firstUnseen) || firstUnseen < -1 || firstUnseen >= n) return null;
  // the first and the last stored UID agree with the header (two 4-byte reads): a snapshot damaged there is read in
  // full now instead of failing the first command that needs its UIDs
  if (n > 0 && (uidAt(source, at.uids) !== firstUid || uidAt(source, at.uids + (n - 1) * 4) !== lastUid)) return null;
  let parts = 2;
  const done = () => {
    if (--parts === 0) source.close();
  };
  return {
    count: n,
    firstUid: n > 0 ? firstUid : 0,
    lastUid: n > 0 ? lastUid : 0,
    firstUnseen,
    flagSets,
    loadedThrough,
    highestModseq: header.getFloat64(24, true),
    head() {
      const bytes = aligned(source.read(at.uids, at.rest - at.uids));
      const uids = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
      if (n > 0 && (uids[0] !== firstUid || uids[n - 1] !== lastUid)) {
        source.close();
        throw new Error('index snapshot damaged: its UIDs do not match its header');
      }
      const numbersAt = bytes.byteOffset + n * 4;
      let flags: Uint32Array;
      if (width === 4) flags = new Uint32Array(bytes.buffer, numbersAt, n);
      else {
        flags = new Uint32Array(n);
        flags.set(width === 1 ? new Uint8Array(bytes.buffer, numbersAt, n) : new Uint16Array(bytes.buffer, numbersAt, n));
      }
      done();
      return { uids, flags };
    },
    rest() {
      const bytes = aligned(source.read(at.rest, n * 24));
      done();
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
  const snapshot = openIndexSnapshot(snapshotSource({ uidValidity: 0, cursor: 0, bytes }));
  if (!snapshot) return null;
  const { count, flagSets, loadedThrough, highestModseq, firstUnseen } = snapshot;
  return { columns: { count, flagSets, ...snapshot.head(), ...snapshot.rest() }, loadedThrough, highestModseq, firstUnseen };
}
