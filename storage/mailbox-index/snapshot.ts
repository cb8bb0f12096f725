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

/** The state in a snapshot, or null when it is not one this version wrote (then the index is read in full). */
export function decodeIndexSnapshot(bytes: Uint8Array): SnapshotState | null {
  if (bytes.length < HEADER) return null;
  const copy = bytes.slice(); // own, aligned buffer: the typed arrays below are views over it
  const view = new DataView(copy.buffer);
  if (view.getUint32(0, true) !== VERSION) return null;
  const n = view.getUint32(4, true);
  const jsonLength = view.getUint32(8, true);
  if (copy.length !== HEADER + n * 32 + jsonLength) return null;
  let at = HEADER;
  const f64 = () => ((at += n * 8), new Float64Array(copy.buffer, at - n * 8, n));
  const u32 = () => ((at += n * 4), new Uint32Array(copy.buffer, at - n * 4, n));
  const modseqs = f64();
  const sizes = f64();
  const internalDates = f64();
  const uids = u32();
  const flags = u32();
  let flagSets: Flag[][];
  try {
    flagSets = JSON.parse(new TextDecoder().decode(copy.subarray(at))) as Flag[][];
  } catch {
    return null;
  }
  if (!Array.isArray(flagSets)) return null;
  for (let i = 0; i < n; i++) if (flags[i]! >= flagSets.length || (i > 0 && uids[i]! <= uids[i - 1]!)) return null;
  return {
    columns: { count: n, uids, modseqs, sizes, internalDates, flags, flagSets },
    loadedThrough: view.getFloat64(16, true),
    highestModseq: view.getFloat64(24, true),
  };
}
