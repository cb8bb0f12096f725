/**
 * The search port over the FTS5 trigram indexes (search-schema.ts).
 * - Header fields (subject, addresses): a needle of 3+ characters is a phrase query on `message_fts_fields`, which
 *   keeps positions, so a hit is an exact case-insensitive substring match.
 * - Header and body text (BODY, TEXT): `message_fts_text` keeps no positions; a query finds the rows holding every
 *   trigram of the needle in the column, and the substring is confirmed on those rows' text.
 * - Needles of 1–2 characters have no trigram: the mailbox's stored text is scanned (SQLite's lower() for ASCII
 *   needles, the shared fold() otherwise). An empty needle matches messages that have the field.
 * Every query joins `messages` on the mailbox, so moved, copied and expunged messages are answered as they are now.
 */
import type { Id, SearchField, SearchPort, SearchTerm } from '../ports.ts';
import { fold } from '../search/fold.ts';
import type { Db } from './driver.ts';
import { num, rowId } from './common.ts';

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
    return terms.map((term) => (mailbox === null ? [] : this.#term(mailbox, term)));
  }

  #term(mailbox: number, term: SearchTerm): number[] {
    const field = FIELDS[term.field];
    if (!field) throw new TypeError(`search: unknown field ${String(term.field)}`);
    const { columns } = field;
    const needle = term.value.normalize('NFC');
    const chars = [...needle];
    if (needle === '') {
      const present = field.exact ? `s.${columns[0]} IS NOT NULL` : '1';
      return this.#uids(`SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND ${present} ORDER BY m.uid`, mailbox);
    }
    const folded = fold(needle);
    if (chars.length >= 3 && field.exact) {
      return this.#uids(
        'SELECT m.uid FROM message_fts_fields f JOIN messages m ON m.id = f.rowid WHERE message_fts_fields MATCH ? AND m.mailbox_id = ? ORDER BY m.uid',
        `{${columns.join(' ')}} : ${quote(needle)}`,
        mailbox,
      );
    }
    const ascii = /^[\x00-\x7f]*$/.test(folded);
    // ASCII needles are confirmed inside SQLite (lower() folds ASCII); others by fold() on the rows' text
    const test = columns.map((c) => `instr(lower(s.${c}), ?) > 0`).join(' OR ');
    const wanted = columns.map((c) => `s.${c}`).join(', ');
    if (chars.length >= 3) {
      const candidates = `message_fts_text f JOIN messages m ON m.id = f.rowid JOIN message_search s ON s.message_id = f.rowid
        WHERE message_fts_text MATCH ? AND m.mailbox_id = ?`;
      const query = `{${columns.join(' ')}} : (${trigramQuery(chars)})`;
      if (ascii) return this.#uids(`SELECT m.uid FROM ${candidates} AND (${test}) ORDER BY m.uid`, query, mailbox, ...columns.map(() => folded));
      return confirm(this.#db.all<TextRow>(`SELECT m.uid, ${wanted} FROM ${candidates} ORDER BY m.uid`, query, mailbox), columns, folded);
    }
    if (ascii) {
      return this.#uids(
        `SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND (${test}) ORDER BY m.uid`,
        mailbox,
        ...columns.map(() => folded),
      );
    }
    const rows = this.#db.all<TextRow>(`SELECT m.uid, ${wanted} FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? ORDER BY m.uid`, mailbox);
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
