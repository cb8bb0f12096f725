/**
 * MessagesPort.page on the embedded backend: one page of a mailbox's index by UID through the (mailbox_id, uid)
 * index, so an HTTP listing reads its page and a count, never the whole mailbox.
 */
import type { Flag, MessageIndexEntry, MessagePage, MessagePageOptions } from '../ports.ts';
import type { Db } from './driver.ts';
import { num } from './common.ts';

interface EntryRow {
  uid: number;
  modseq: number;
  flags: string;
  size: number;
  internal_date: number;
}

/** `\Flagged` in the stored JSON list of flags (LIKE: ASCII case-insensitive, as flag names compare). */
const FLAGGED = '%"\\\\Flagged"%';

export function messagePage(db: Db, mailbox: number | null, options: MessagePageOptions): MessagePage {
  if (mailbox === null) return { entries: [], total: 0, earlier: false, later: false };
  const filter = `mailbox_id = ?${options.unseen ? ' AND seen = 0' : ''}${options.flagged ? ' AND flags LIKE ?' : ''}`;
  const params: Array<number | string> = options.flagged ? [mailbox, FLAGGED] : [mailbox];
  const asc = options.order === 'asc';
  // the previous page is read walking backwards from `before`, then turned around
  const backwards = options.before !== undefined;
  const walkAsc = asc !== backwards;
  const cursor = options.before ?? options.after;
  const from = cursor === undefined ? '' : ` AND uid ${walkAsc ? '>' : '<'} ?`;
  const rows = db.all<EntryRow>(
    `SELECT uid, modseq, flags, size, internal_date FROM messages WHERE ${filter}${from} ORDER BY uid ${walkAsc ? 'ASC' : 'DESC'} LIMIT ?`,
    ...params,
    ...(cursor === undefined ? [] : [cursor]),
    Math.max(0, options.limit),
  );
  if (backwards) rows.reverse();
  const entries = rows.map(
    (r): MessageIndexEntry => ({ uid: num(r.uid), modseq: num(r.modseq), flags: JSON.parse(r.flags) as Flag[], size: num(r.size), internalDate: num(r.internal_date) }),
  );
  const exists = (op: '<' | '>', uid: number): boolean => db.get(`SELECT 1 AS x FROM messages WHERE ${filter} AND uid ${op} ? LIMIT 1`, ...params, uid) !== undefined;
  const first = entries[0]?.uid;
  const last = entries[entries.length - 1]?.uid;
  return {
    entries,
    total: num(db.get<{ n: number }>(`SELECT count(*) AS n FROM messages WHERE ${filter}`, ...params)?.n ?? 0),
    earlier: first !== undefined && exists(asc ? '<' : '>', first),
    later: last !== undefined && exists(asc ? '>' : '<', last),
  };
}
