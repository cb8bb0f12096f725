/**
 * Migration 6: the search index. `message_search` keeps, per message, the decoded header text (subject, parsed
 * addresses, every field for TEXT) beside the body text (its old `text` column, now `body`), and two
 * FTS5 indexes over those columns with the trigram tokenizer (case-insensitive substrings of 3+ characters) read
 * their text from `message_search` (external content: the text is stored once). Triggers keep the index in step with
 * every insert and delete of `message_search`, which follows `messages` through ON DELETE CASCADE.
 *
 * Existing messages are backfilled: header text from the stored header block, body text from the old search text
 * without the header lines it used to start with.
 */
import { inflateRawSync } from 'node:zlib';
import { decodeWords, getHeaders, parseHeaderBlock } from '../mime/headers.ts';
import { searchHeaders } from '../mime/search-headers.ts';
import type { MimeNode, SearchHeaders } from '../ports.ts';
import type { Db } from './driver.ts';
import { num } from './common.ts';
import { sentDayOfHeaders } from '../search/sent-date.ts';

/** message_search columns migration 6 filled, in order (kept as that migration wrote them). */
const V6_COLUMNS = ['subject', 'from_addrs', 'to_addrs', 'cc_addrs', 'bcc_addrs', 'headers', 'body'] as const;

function v6Values(h: SearchHeaders, body: string): (string | null)[] {
  return [h.subject, h.from, h.to, h.cc, h.bcc, h.headers, body];
}

/** message_search columns of a message's search row, in order (written at append, copied with the message). */
export const SEARCH_COLUMNS = [...V6_COLUMNS, 'sent_day'] as const;

/** A message's values for SEARCH_COLUMNS, in that order. */
export function searchColumnValues(h: SearchHeaders, body: string): (string | number | null)[] {
  return [...v6Values(h, body), sentDayOfHeaders(h.headers)];
}

/**
 * The two indexes: the short header fields with positions (`detail=full`: a phrase query is an exact substring
 * match), the long header and body text without them (`detail=column`: about a tenth of the size; a query finds the
 * rows holding every trigram of the needle in that column, and search.ts confirms the substring on those rows).
 */
export const SEARCH_INDEXES = {
  message_fts_fields: { columns: ['subject', 'from_addrs', 'to_addrs', 'cc_addrs', 'bcc_addrs'], detail: 'full' },
  message_fts_text: { columns: ['headers', 'body'], detail: 'column' },
} as const;

function indexSql(table: string, columns: readonly string[], detail: string): string {
  const list = (prefix: string): string => columns.map((c) => `${prefix}${c}`).join(', ');
  return `
    CREATE VIRTUAL TABLE ${table} USING fts5(${list('')}, content='message_search', content_rowid='message_id', tokenize='trigram', detail=${detail});
    CREATE TRIGGER ${table}_insert AFTER INSERT ON message_search BEGIN
      INSERT INTO ${table} (rowid, ${list('')}) VALUES (new.message_id, ${list('new.')});
    END;
    CREATE TRIGGER ${table}_delete AFTER DELETE ON message_search BEGIN
      INSERT INTO ${table} (${table}, rowid, ${list('')}) VALUES ('delete', old.message_id, ${list('old.')});
    END;
    CREATE TRIGGER ${table}_update AFTER UPDATE ON message_search BEGIN
      INSERT INTO ${table} (${table}, rowid, ${list('')}) VALUES ('delete', old.message_id, ${list('old.')});
      INSERT INTO ${table} (rowid, ${list('')}) VALUES (new.message_id, ${list('new.')});
    END;
    INSERT INTO ${table} (${table}) VALUES ('rebuild');
  `;
}

/** What the search text of earlier versions started with: the decoded From, To, Cc and Subject values. */
function oldHeadLines(fields: ReturnType<typeof parseHeaderBlock>): string {
  const head: string[] = [];
  for (const key of ['from', 'to', 'cc', 'subject']) for (const value of getHeaders(fields, key)) head.push(decodeWords(value));
  return head.filter(Boolean).join('\n');
}

interface OldRow {
  id: number;
  text: string;
  mime: string;
  inline: Uint8Array;
  inline_codec: number;
}

export function searchIndexMigration(db: Db): string[] {
  db.exec(`
    ALTER TABLE message_search RENAME COLUMN text TO body;
    ALTER TABLE message_search ADD COLUMN subject TEXT;
    ALTER TABLE message_search ADD COLUMN from_addrs TEXT;
    ALTER TABLE message_search ADD COLUMN to_addrs TEXT;
    ALTER TABLE message_search ADD COLUMN cc_addrs TEXT;
    ALTER TABLE message_search ADD COLUMN bcc_addrs TEXT;
    ALTER TABLE message_search ADD COLUMN headers TEXT NOT NULL DEFAULT '';
  `);
  let fallbacks = 0;
  let last = 0;
  for (;;) {
    const rows = db.all<OldRow>(
      `SELECT m.id, s.body AS text, m.mime, m.inline, m.inline_codec FROM message_search s JOIN messages m ON m.id = s.message_id
       WHERE m.id > ? ORDER BY m.id LIMIT 500`,
      last,
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      last = num(row.id);
      const inline = num(row.inline_codec) === 1 ? new Uint8Array(inflateRawSync(row.inline)) : row.inline;
      const root = JSON.parse(row.mime) as MimeNode;
      const fields = parseHeaderBlock(inline.subarray(0, Math.min(root.bodyStart, inline.length)));
      const head = oldHeadLines(fields);
      let body = row.text;
      if (head && body.startsWith(`${head}\n`)) body = body.slice(head.length + 1);
      else if (head && body === head) body = '';
      else if (head) fallbacks++;
      db.run(
        `UPDATE message_search SET ${V6_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE message_id = ?`,
        ...v6Values(searchHeaders(fields), body.normalize('NFC')),
        last,
      );
    }
  }
  for (const [table, { columns, detail }] of Object.entries(SEARCH_INDEXES)) db.exec(indexSql(table, columns, detail));
  return fallbacks > 0 ? [`${fallbacks} messages kept their whole old search text as body text (its header lines could not be told apart)`] : [];
}

/** Rows per statement of migration 8's backfill. */
const SENT_DAY_BATCH = 500;

/**
 * Migration 8: the sent date (SENTBEFORE / SENTON / SENTSINCE) as a column of the search row, `sent_day` (00:00 UTC
 * of the Date header's calendar date; NULL when the message has no readable Date, then its internal date counts),
 * with a covering index so a mailbox's sent dates are read without its rows' text. Backfilled from the stored header
 * text (no message is read). The FTS update triggers are narrowed to the indexed columns first, so writing
 * `sent_day` never re-indexes a row's text.
 */
export function sentDayMigration(db: Db): void {
  for (const [table, { columns }] of Object.entries(SEARCH_INDEXES)) {
    const list = (prefix: string): string => columns.map((c) => `${prefix}${c}`).join(', ');
    db.exec(`
      DROP TRIGGER ${table}_update;
      CREATE TRIGGER ${table}_update AFTER UPDATE OF ${list('')} ON message_search BEGIN
        INSERT INTO ${table} (${table}, rowid, ${list('')}) VALUES ('delete', old.message_id, ${list('old.')});
        INSERT INTO ${table} (rowid, ${list('')}) VALUES (new.message_id, ${list('new.')});
      END;
    `);
  }
  db.exec('ALTER TABLE message_search ADD COLUMN sent_day INTEGER');
  for (let last = 0; ; ) {
    const rows = db.all<{ id: number; headers: string }>('SELECT message_id AS id, headers FROM message_search WHERE message_id > ? ORDER BY message_id LIMIT ?', last, SENT_DAY_BATCH);
    if (rows.length === 0) break;
    for (const row of rows) {
      last = num(row.id);
      const day = sentDayOfHeaders(row.headers);
      if (day !== null) db.run('UPDATE message_search SET sent_day = ? WHERE message_id = ?', day, last);
    }
  }
  db.exec('CREATE INDEX message_search_sent_day ON message_search(message_id, sent_day)');
}

/** meta key: the message_search rows with message_id up to this value are in the FTS indexes; later rows are not yet. */
export const INDEXED_THROUGH = 'search_indexed_through';

/** The watermark, as a SQL expression. */
export const INDEXED_THROUGH_SQL = `(SELECT value FROM meta WHERE key = '${INDEXED_THROUGH}')`;

/**
 * Migration 9: the FTS indexes are written after the acknowledgement, in batches (search-indexer.ts), not by an
 * insert trigger inside each append's transaction. Message ids only grow (AUTOINCREMENT), so one watermark in `meta`
 * tells indexed rows from pending ones; the delete and update triggers touch the indexes only for indexed rows (an
 * FTS5 'delete' of a row it never held would corrupt it). Every row existing now is indexed.
 */
export function deferredIndexMigration(db: Db): void {
  db.run(`INSERT INTO meta (key, value) VALUES (?, (SELECT coalesce(max(message_id), 0) FROM message_search))`, INDEXED_THROUGH);
  for (const [table, { columns }] of Object.entries(SEARCH_INDEXES)) {
    const list = (prefix: string): string => columns.map((c) => `${prefix}${c}`).join(', ');
    const remove = `INSERT INTO ${table} (${table}, rowid, ${list('')}) VALUES ('delete', old.message_id, ${list('old.')});`;
    db.exec(`
      DROP TRIGGER ${table}_insert;
      DROP TRIGGER ${table}_delete;
      DROP TRIGGER ${table}_update;
      CREATE TRIGGER ${table}_delete AFTER DELETE ON message_search WHEN old.message_id <= ${INDEXED_THROUGH_SQL} BEGIN
        ${remove}
      END;
      CREATE TRIGGER ${table}_update AFTER UPDATE OF ${list('')} ON message_search WHEN old.message_id <= ${INDEXED_THROUGH_SQL} BEGIN
        ${remove}
        INSERT INTO ${table} (rowid, ${list('')}) VALUES (new.message_id, ${list('new.')});
      END;
    `);
  }
}

/** Message ids whose rows are in the FTS indexes but no longer in `message_search`: the indexer forgets them. */
export const FORGET_TABLE = 'search_forget';

/**
 * Migration 10: the two indexes become contentless-delete FTS5 tables (`content=''`, `contentless_delete=1`, SQLite
 * 3.43+; every runtime's SQLite is newer), and forgetting an expunged message leaves the expunge's transaction.
 * - An external-content index can only forget a row by being handed its old text, which it tokenizes again: an
 *   EXPUNGE spent ~1.2 ms of CPU per 2 KB message inside its transaction on that. A contentless-delete index forgets
 *   a row by its rowid (a tombstone in the segment that holds it, cleared when segments merge).
 * - Even so, each transaction that forgets rows writes new tombstone pages for both indexes. So a deleted search row
 *   that is in the indexes (at or below the watermark) only queues its id in `search_forget`, and the indexer
 *   (search-indexer.ts) forgets the queue in batches, like it indexes new rows. Until then the index may answer a
 *   forgotten id: the search port joins every hit with `messages` on the mailbox, and message ids are never reused
 *   (AUTOINCREMENT), so an expunged message never matches.
 * - The search port only reads rowids from the indexes and confirms substrings on `message_search`, which still holds
 *   the text. The indexes are rebuilt from `message_search` here, up to the watermark (about 0.25 ms per message,
 *   once); rows above it stay pending for the indexer as before.
 */
export function contentlessIndexMigration(db: Db): void {
  db.exec(`CREATE TABLE ${FORGET_TABLE} (message_id INTEGER PRIMARY KEY);`);
  for (const [table, { columns, detail }] of Object.entries(SEARCH_INDEXES)) {
    const list = (prefix: string): string => columns.map((c) => `${prefix}${c}`).join(', ');
    db.exec(`
      DROP TRIGGER ${table}_delete;
      DROP TRIGGER ${table}_update;
      DROP TABLE ${table};
      CREATE VIRTUAL TABLE ${table} USING fts5(${list('')}, content='', contentless_delete=1, tokenize='trigram', detail=${detail});
      CREATE TRIGGER ${table}_update AFTER UPDATE OF ${list('')} ON message_search WHEN old.message_id <= ${INDEXED_THROUGH_SQL} BEGIN
        DELETE FROM ${table} WHERE rowid = old.message_id;
        INSERT INTO ${table} (rowid, ${list('')}) VALUES (new.message_id, ${list('new.')});
      END;
      INSERT INTO ${table} (rowid, ${list('')}) SELECT message_id, ${list('')} FROM message_search WHERE message_id <= ${INDEXED_THROUGH_SQL};
    `);
  }
  db.exec(`
    CREATE TRIGGER message_search_forget AFTER DELETE ON message_search WHEN old.message_id <= ${INDEXED_THROUGH_SQL} BEGIN
      INSERT OR IGNORE INTO ${FORGET_TABLE} (message_id) VALUES (old.message_id);
    END;
  `);
}
