/** Small helpers shared by the SQLite port implementations: ids, flags, JSON columns, unique-constraint errors. */
import { StorageError } from '../ports.ts';
import type { Flag, Id } from '../ports.ts';

const ID_DIGITS = 24;
const ROW_ID = /^[0-9a-fA-F]{24}$/;

/**
 * Object ids at the boundary of the embedded backend: 24 hex digits, the shape of a MongoDB ObjectId.
 *
 * Inside SQLite every object is an INTEGER row id (every table is AUTOINCREMENT, so a row id is never reused);
 * only what the ports hand out changes: `toId(n)` is `n` in hexadecimal, zero-padded to 24 digits
 * (`toId(11)` = `00000000000000000000000b`). Both backends then show one format, WildDuck API clients that check
 * `hex().length(24)` accept it, and `storage copy` to MongoDB keeps each id as the same ObjectId. No column or
 * index is added: stored bytes per message do not grow. Migration 13 rewrote the ids kept inside data (filter
 * targets) from the decimal form used before.
 *
 * `rowId(id)` accepts exactly 24 hex digits (either case) whose value is a safe integer > 0 and nothing else: a
 * decimal id like "11" names nothing, nor does an ObjectId made elsewhere (its value is far above 2^53).
 */
export function rowId(id: Id): number | null {
  if (typeof id !== 'string' || !ROW_ID.test(id)) return null;
  // exact below 2^53; anything at or above rounds to 2^53 or more, which is not a safe integer
  const n = parseInt(id, 16);
  return n > 0 && Number.isSafeInteger(n) ? n : null;
}

export function toId(n: number | bigint): Id {
  return n.toString(16).padStart(ID_DIGITS, '0');
}

/** Like rowId, but throws NONEXISTENT. */
export function requireRowId(id: Id, what: string): number {
  const n = rowId(id);
  if (n === null) throw new StorageError('NONEXISTENT', `${what} ${id} does not exist`);
  return n;
}

const SYSTEM_FLAGS = new Map<string, string>([
  ['\\seen', '\\Seen'],
  ['\\answered', '\\Answered'],
  ['\\flagged', '\\Flagged'],
  ['\\deleted', '\\Deleted'],
  ['\\draft', '\\Draft'],
]);

/**
 * Canonical flag list: system flags in their canonical case, `\Recent` dropped (never stored), keywords kept as
 * first given, duplicates removed case-insensitively, order of first appearance kept.
 */
export function normalizeFlags(flags: readonly Flag[]): Flag[] {
  const seen = new Set<string>();
  const out: Flag[] = [];
  for (const raw of flags) {
    if (typeof raw !== 'string' || raw.length === 0) continue;
    const lower = raw.toLowerCase();
    if (lower === '\\recent') continue;
    if (seen.has(lower)) continue;
    seen.add(lower);
    out.push(SYSTEM_FLAGS.get(lower) ?? raw);
  }
  return out;
}

export function hasFlag(flags: readonly Flag[], flag: Flag): boolean {
  const lower = flag.toLowerCase();
  return flags.some((f) => f.toLowerCase() === lower);
}

/** Applies a STORE action to canonical flags; returns the new canonical list. */
export function applyFlagAction(current: readonly Flag[], action: 'add' | 'remove' | 'set', flags: readonly Flag[]): Flag[] {
  const given = normalizeFlags(flags);
  if (action === 'set') return given;
  if (action === 'add') return normalizeFlags([...current, ...given]);
  const drop = new Set(given.map((f) => f.toLowerCase()));
  return current.filter((f) => !drop.has(f.toLowerCase()));
}

/** Same set of flags, ignoring order and case. */
export function sameFlags(a: readonly Flag[], b: readonly Flag[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => set.has(f.toLowerCase()));
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return true;
  if (e.errcode === 2067 || e.errcode === 1555) return true;
  return typeof e.message === 'string' && /UNIQUE constraint failed/i.test(e.message);
}

/** Integer values as JSON text for `IN (SELECT value FROM json_each(?))`. */
export function jsonList(values: readonly (number | string)[]): string {
  return JSON.stringify(values);
}

export function bool(v: unknown): boolean {
  return v === 1 || v === 1n || v === true;
}

export function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}
