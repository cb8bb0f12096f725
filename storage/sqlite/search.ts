/**
 * The search port over the FTS5 trigram index (search-schema.ts). A needle of 3 characters or more is a phrase
 * query on the trigram index (a contiguous, case-insensitive substring), joined to the mailbox's messages. Shorter
 * needles have no trigram: they scan the mailbox's stored search text (SQLite's lower() for ASCII needles, the
 * shared fold() otherwise). An empty needle matches messages that have the field.
 */
import type { Id, SearchField, SearchPort, SearchTerm } from '../ports.ts';
import { fold } from '../search/fold.ts';
import type { Db } from './driver.ts';
import { num, rowId } from './common.ts';

/** message_search columns each field searches. */
const COLUMNS: Record<SearchField, readonly string[]> = {
  subject: ['subject'],
  from: ['from_addrs'],
  to: ['to_addrs'],
  cc: ['cc_addrs'],
  bcc: ['bcc_addrs'],
  body: ['body'],
  text: ['headers', 'body'],
};

/** An FTS5 phrase: the needle in double quotes, inner quotes doubled. */
function phrase(needle: string): string {
  return `"${needle.replaceAll('"', '""')}"`;
}

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
    const columns = COLUMNS[term.field];
    if (!columns) throw new TypeError(`search: unknown field ${String(term.field)}`);
    const needle = term.value.normalize('NFC');
    const uids = (rows: Array<{ uid: number }>): number[] => rows.map((r) => num(r.uid));
    if (needle === '') {
      const present = columns.length > 1 || columns[0] === 'body' ? '1' : `s.${columns[0]} IS NOT NULL`;
      return uids(this.#db.all(`SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND ${present} ORDER BY m.uid`, mailbox));
    }
    if ([...needle].length >= 3) {
      return uids(
        this.#db.all(
          `SELECT m.uid FROM message_fts f JOIN messages m ON m.id = f.rowid WHERE message_fts MATCH ? AND m.mailbox_id = ? ORDER BY m.uid`,
          `{${columns.join(' ')}} : ${phrase(needle)}`,
          mailbox,
        ),
      );
    }
    const folded = fold(needle);
    if (/^[\x00-\x7f]*$/.test(folded)) {
      const test = columns.map((c) => `instr(lower(s.${c}), ?) > 0`).join(' OR ');
      return uids(
        this.#db.all(
          `SELECT m.uid FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? AND (${test}) ORDER BY m.uid`,
          mailbox,
          ...columns.map(() => folded),
        ),
      );
    }
    const rows = this.#db.all<Record<string, string | number | null>>(
      `SELECT m.uid, ${columns.map((c) => `s.${c}`).join(', ')} FROM messages m JOIN message_search s ON s.message_id = m.id WHERE m.mailbox_id = ? ORDER BY m.uid`,
      mailbox,
    );
    return rows.filter((r) => columns.some((c) => typeof r[c] === 'string' && fold(r[c]).includes(folded))).map((r) => num(r.uid));
  }
}
