/**
 * A mailbox index as one byte string, so a large mailbox opens without reading every message row: the registry
 * saves it (messages.saveIndexSnapshot) when an index leaves memory, and the next load reads it back and catches up
 * on the change log from the cursor it was taken at (mailbox-index.ts).
 *
 *   header   32 bytes: version u32, count u32, flag JSON length u32, 0 u32, loadedThrough f64, highestModseq f64
 *   columns  modseqs, sizes, dates (f64 each), uids, flag list numbers (u32 each), count values per column
 *   flags    the distinct flag lists as JSON (a list of lists), indexed by the flag list numbers
 *
 * About 36 bytes per message; little-endian, as typed arrays are on every platform this server runs on.
 */
import type { Flag, IndexColumns } from '../ports.ts';

const VERSION = 1;
const HEADER = 32;

export interface SnapshotState {
  columns: IndexColumns;
  /** Highest UID ever loaded (may be above the highest held one). */
  loadedThrough: number;
  highestModseq: number;
}

export function encodeIndexSnapshot(state: SnapshotState): Uint8Array {
  const { columns: c } = state;
  const n = c.count;
  const json = new TextEncoder().encode(JSON.stringify(c.flagSets));
  const out = new Uint8Array(HEADER + n * 32 + json.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, VERSION, true);
  view.setUint32(4, n, true);
  view.setUint32(8, json.length, true);
  view.setFloat64(16, state.loadedThrough, true);
  view.setFloat64(24, state.highestModseq, true);
  let at = HEADER;
  for (const column of [c.modseqs, c.sizes, c.internalDates]) {
    new Float64Array(out.buffer, at, n).set(column.subarray(0, n));
    at += n * 8;
  }
  for (const column of [c.uids, c.flags]) {
    new Uint32Array(out.buffer, at, n).set(column.subarray(0, n));
    at += n * 4;
  }
  out.set(json, at);
  return out;
}

/**
 * The state in a snapshot, or null when it is not one this version wrote (then the index is read in full). The
 * columns are views over the snapshot's own bytes when they are 8-byte aligned (a copy otherwise): the caller owns
 * `bytes` from here on. Nothing here visits each message, so decoding costs the same at any size: the layout and
 * the bounds are checked, and a flag list number out of range reads as no flags (flag-sets.ts).
 */
export function decodeIndexSnapshot(bytes: Uint8Array): SnapshotState | null {
  if (bytes.length < HEADER) return null;
  const own = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const view = new DataView(own.buffer, own.byteOffset, own.length);
  if (view.getUint32(0, true) !== VERSION) return null;
  const n = view.getUint32(4, true);
  const jsonLength = view.getUint32(8, true);
  if (own.length !== HEADER + n * 32 + jsonLength) return null;
  let at = own.byteOffset + HEADER;
  const f64 = () => ((at += n * 8), new Float64Array(own.buffer, at - n * 8, n));
  const u32 = () => ((at += n * 4), new Uint32Array(own.buffer, at - n * 4, n));
  const modseqs = f64();
  const sizes = f64();
  const internalDates = f64();
  const uids = u32();
  const flags = u32();
  let flagSets: Flag[][];
  try {
    flagSets = JSON.parse(new TextDecoder().decode(own.subarray(HEADER + n * 32))) as Flag[][];
  } catch {
    return null;
  }
  if (!Array.isArray(flagSets) || !flagSets.every((list) => Array.isArray(list))) return null;
  const loadedThrough = view.getFloat64(16, true);
  // UIDs ascend (the encoder writes the index's sorted column): the first and the last are within bounds
  if (n > 0 && (uids[0]! < 1 || uids[n - 1]! < uids[0]! || uids[n - 1]! > loadedThrough)) return null;
  return { columns: { count: n, uids, modseqs, sizes, internalDates, flags, flagSets }, loadedThrough, highestModseq: view.getFloat64(24, true) };
}
