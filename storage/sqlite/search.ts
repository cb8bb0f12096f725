/**
 * The search port over the FTS5 trigram indexes (search-schema.ts).
 * - Header fields (subject, addresses): a needle of 3+ characters is a phrase query on `message_fts_fields`, which
 *   keeps positions, so a hit is an exact case-insensitive substring match.
 * - Header and body text (BODY, TEXT): `message_fts_text` keeps no positions; a query finds the rows holding every
 *   trigram of the needle in the column, and the substring is confirmed on those rows' text.
 * - Needles of 1–2 characters have no trigram: the mailbox's stored text is scanned (SQLite's lower() for ASCII
 *   needles, the shared fold() otherwise). An empty needle matches messages that have the field.
 * Every query joins `messages` on the mailbox, so moved, copied and expunged messages are answered as they are now,
 * one range of message ids at a time (yielding between ranges, so a large mailbox never holds the event loop).
 */
import type { Id, SearchField, SearchPort, SearchTerm } from '../ports.ts';
import { fold } from '../search/fold.ts';
import type { Db } from './driver.ts';
import { num, rowId } from './common.ts';
import { TimeSlice } from '../time-slice.ts';

/** message_search columns each field searches, and whether the field index (with positions) answers it. */
const FIELDS: Record<SearchField, { columns: readonly string[]; exact: boolean }> = {
  subject: { columns: ['subject'], exact: true },
  from: { columns: ['from_addrs'], exact: true },
  to: { columns: ['to_addrs'], exact: true },
  cc: { columns: ['cc_addrs'], exact: true },
  bcc: { columns: ['bcc_addrs'], exact: true },
  body: { columns: ['body'], exact: false },
  text: { columns: ['headers', 'body'], exact: false },
};

/** At most this many trigrams go into a candidate query (long needles): the substring check decides anyway. */
const MAX_TRIGRAMS = 24;

/** Messages per statement. */
const CHUNK = 4096;

/** An FTS5 string: in double quotes, inner quotes doubled. */
function quote(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

/** The distinct trigrams of a needle, spread over its length, ANDed. */
function trigramQuery(chars: readonly string[]): string {
  const all = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) all.add(chars.slice(i, i + 3).join(''));
  const list = [...all];
  const step = Math.max(1, list.length / MAX_TRIGRAMS);
  const picked: string[] = [];
  for (let i = 0; i < list.length && picked.length < MAX_TRIGRAMS; i += step) picked.push(list[Math.floor(i)]!);
  return picked.map(quote).join(' AND ');
}

type TextRow = { uid: number } & Record<string, string | number | null>;

export class SqliteSearch implements SearchPort {
  #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async match(mailboxId: Id, terms: readonly SearchTerm[]): Promise<number[][]> {
    const mailbox = rowId(mailboxId);
    if (mailbox === null) return terms.map(() => []);
    // one statement per range of message ids, yielding between them: a large mailbox never holds the event loop
    const ids = this.#db.all<{ id: number }>('SELECT id FROM messages WHERE mailbox_id = ? ORDER BY id', mailbox).map((r) => num(r.id));
    const slice = new TimeSlice();
    const out: number[][] = [];
    for (const term of terms) {
      const uids: number[] = [];
      for (let at = 0; at < ids.length; at += CHUNK) {
        await slice.pause();
        uids.push(...this.#term(mailbox, term, ids[at]!, ids[Math.min(ids.length, at + CHUNK) - 1]!));
      }
      out.push(uids.sort((a, b) => a - b));
    }
    return out;
  }

  /** UIDs of the mailbox's messages with ids in [low, high] matching the term. */
  #term(mailbox: number, term: SearchTerm, low: number, high: number): number[] {
    const field = FIELDS[term.field];
    if (!field) throw new TypeError(`search: unknown field ${String(term.field)}`);
    const { columns } = field;
    const needle = term.value.normalize('NFC');
    const chars = [...needle];
    if (needle === '') {
      const present = field.exact ? `s.${columns[0]} IS NOT NULL` : '1';
      return this.#uids(`SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND m.id BETWEEN ? AND ? AND ${present}`, mailbox, low, high);
    }
    const folded = fold(needle);
    if (chars.length >= 3 && field.exact) {
      return this.#uids(
        'SELECT m.uid FROM message_fts_fields f JOIN messages m ON m.id = f.rowid WHERE message_fts_fields MATCH ? AND f.rowid BETWEEN ? AND ? AND m.mailbox_id = ?',
        `{${columns.join(' ')}} : ${quote(needle)}`,
        low,
        high,
        mailbox,
      );
    }
    const ascii = /^[\x00-\x7f]*$/.test(folded);
    // ASCII needles are confirmed inside SQLite (lower() folds ASCII); others by fold() on the rows' text
    const test = columns.map((c) => `instr(lower(s.${c}), ?) > 0`).join(' OR ');
    const wanted = columns.map((c) => `s.${c}`).join(', ');
    if (chars.length >= 3) {
      const candidates = `message_fts_text f JOIN messages m ON m.id = f.rowid JOIN message_search s ON s.message_id = f.rowid
        WHERE message_fts_text MATCH ? AND f.rowid BETWEEN ? AND ? AND m.mailbox_id = ?`;
      const query = `{${columns.join(' ')}} : (${trigramQuery(chars)})`;
      if (ascii) return this.#uids(`SELECT m.uid FROM ${candidates} AND (${test})`, query, low, high, mailbox, ...columns.map(() => folded));
      return confirm(this.#db.all<TextRow>(`SELECT m.uid, ${wanted} FROM ${candidates}`, query, low, high, mailbox), columns, folded);
    }
    if (ascii) {
      return this.#uids(
        `SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND m.id BETWEEN ? AND ? AND (${test})`,
        mailbox,
        low,
        high,
        ...columns.map(() => folded),
      );
    }
    const rows = this.#db.all<TextRow>(
      `SELECT m.uid, ${wanted} FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND m.id BETWEEN ? AND ?`,
      mailbox,
      low,
      high,
    );
    return confirm(rows, columns, folded);
  }

  #uids(sql: string, ...params: Array<string | number>): number[] {
    return this.#db.all<{ uid: number }>(sql, ...params).map((r) => num(r.uid));
  }
}

/** UIDs of the rows where some column holds the folded needle (stored text is NFC already: lowercase suffices). */
function confirm(rows: readonly TextRow[], columns: readonly string[], folded: string): number[] {
  const out: number[] = [];
  for (const row of rows) {
    if (columns.some((c) => typeof row[c] === 'string' && (row[c] as string).toLowerCase().includes(folded))) out.push(num(row.uid));
  }
  return out;
}
