/**
 * The search port over the FTS5 trigram indexes (search-schema.ts).
 * - Header fields (subject, addresses): a needle of 3+ characters is a phrase query on `message_fts_fields`, which
 *   keeps positions, so a hit is an exact case-insensitive substring match.
 * - Header and body text (BODY, TEXT): `message_fts_text` keeps no positions; a query finds the rows holding every
 *   trigram of the needle in the column, and the substring is confirmed on those rows' stored search text.
 * - The indexes are server-wide, so each term is planned against the mailbox (SearchPlanOptions): the index query
 *   reads at most a budget of hits proportional to the mailbox's size; a needle with more hits than that on the whole
 *   server (a common word) is answered by scanning the mailbox's stored search text instead. A search in a small
 *   mailbox stays cheap however many other users' messages hold the needle.
 * - Needles of 1–2 characters have no trigram: the mailbox's stored text is scanned (SQLite's lower() for ASCII
 *   needles, the shared fold() otherwise, a few rows at a time). An empty needle matches messages that have the field.
 * Every statement joins `messages` on the mailbox, so moved, copied and expunged messages are answered as they are
 * now, one chunk of message ids at a time (yielding between chunks, so a large mailbox never holds the event loop).
 * The message itself (blobs, inline bytes) is never read.
 * - The indexes are written shortly after a message is acknowledged (search-indexer.ts): rows above the watermark are
 *   not in them yet, so a term answered from the index also tests the mailbox's pending rows by their stored text.
 */
import type { Id, MetaTerm, SearchField, SearchPort, SearchTerm, SentDateTerm } from '../ports.ts';
import { fold } from '../search/fold.ts';
import { compareDay } from '../search/sent-date.ts';
import type { Db } from './driver.ts';
import { num, rowId } from './common.ts';
import { TimeSlice } from '../time-slice.ts';
import { indexedThrough } from './search-indexer.ts';
import type { SearchIndexer } from './search-indexer.ts';

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

const DAY = 86_400_000;

/** Messages per statement when SQLite tests the text (ASCII needles) or no text is read. */
const ROWS_PER_STATEMENT = 1024;

/** Index hits per statement (a large budget is read in pages, yielding between them). */
const HITS_PER_STATEMENT = 16_384;

/** Rows of stored text read into JavaScript at once (needles SQLite's lower() cannot fold): bounds memory. */
const TEXT_ROWS_PER_READ = 32;

/**
 * How the port chooses between the FTS index (server-wide) and a scan of the mailbox's stored text, per term. The
 * index is global: a common needle's hits across every mailbox of the server are read before they can be narrowed to
 * one mailbox. So the index query runs with a budget of hits: so many per message of the mailbox (what reading one
 * message's stored text costs, in index hits), at least `minIndexHits`, at most `maxIndexHits`. When the needle has
 * more hits than that on the whole server, the mailbox's own stored text is scanned instead. Either way a search costs
 * at most about the mailbox's size times a constant, whatever the rest of the server holds.
 */
export interface SearchPlanOptions {
  /**
   * Budget per message for the header fields (SUBJECT, FROM, TO, CC, BCC). Default 4: measured with
   * test/bench/search-scope.ts, scanning one message's header fields costs about as much as reading 2–3 index hits.
   */
  fieldHitsPerMessage?: number;
  /** Budget per message for BODY and TEXT (longer text to scan: about 9 index hits). Default 12. */
  textHitsPerMessage?: number;
  /** The budget of a small mailbox. Default 256. */
  minIndexHits?: number;
  /** The budget's cap (the hits are held in memory as numbers). Default 1,048,576. */
  maxIndexHits?: number;
  /** Told each plan (tests, benchmarks). */
  onPlan?(plan: SearchPlan): void;
}

export interface SearchPlan {
  field: SearchField;
  /** `index`: the index's hits narrowed to the mailbox; `scan`: every message of the mailbox tested. */
  plan: 'index' | 'scan';
  /** Index hits read (at most the budget + 1). */
  indexHits: number;
}

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

/** Ids of `sorted` (ascending) that are also in `ids` (ascending). */
function intersect(sorted: readonly number[], ids: readonly number[]): number[] {
  if (ids.length === 0) return [];
  const out: number[] = [];
  let j = 0;
  for (const id of sorted) {
    while (j < ids.length && ids[j]! < id) j++;
    if (j === ids.length) break;
    if (ids[j] === id) out.push(id);
  }
  return out;
}

interface Mailbox {
  id: number;
  /** Messages in it (the mailbox's counter). */
  count: number;
  ids(): readonly number[];
  /** Rows up to this message id are in the indexes (read once per search, before any index query). */
  indexedThrough: number;
  /** The mailbox's message ids above `indexedThrough` (not yet indexed), ascending. */
  pending(): readonly number[];
}

/**
 * The mailbox's messages whose search rows are above the watermark. CROSS JOIN keeps the search rows' id range as
 * the outer loop: the rows above the watermark are few on the whole server (the indexer's lag), whereas starting
 * from the mailbox's messages would visit every one of them (29 ms at 10,000 messages, on every search).
 */
const PENDING = 'SELECT s.message_id AS id FROM message_search s CROSS JOIN messages m ON m.id = s.message_id WHERE s.message_id > ? AND m.mailbox_id = ? ORDER BY s.message_id';

/** Rows of the mailbox's messages among a chunk of message ids (a JSON array), with their search row. */
const AMONG = `messages m JOIN message_search s ON s.message_id = m.id WHERE m.id IN (SELECT value FROM json_each(?)) AND m.mailbox_id = ?`;

export class SqliteSearch implements SearchPort {
  #db: Db;
  #fieldsPerMessage: number;
  #textPerMessage: number;
  #minHits: number;
  #maxHits: number;
  #onPlan: SearchPlanOptions['onPlan'];
  #indexer: SearchIndexer | null;

  constructor(db: Db, options: SearchPlanOptions = {}, indexer: SearchIndexer | null = null) {
    this.#db = db;
    this.#indexer = indexer;
    this.#fieldsPerMessage = options.fieldHitsPerMessage ?? 4;
    this.#textPerMessage = options.textHitsPerMessage ?? 12;
    this.#minHits = options.minIndexHits ?? 256;
    this.#maxHits = options.maxIndexHits ?? 1 << 20;
    this.#onPlan = options.onPlan;
  }

  async match(mailboxId: Id, terms: readonly SearchTerm[]): Promise<number[][]> {
    const mailbox = rowId(mailboxId);
    if (mailbox === null) return terms.map(() => []);
    const count = num(this.#db.get<{ n: number }>('SELECT message_count AS n FROM mailboxes WHERE id = ?', mailbox)?.n ?? 0);
    // the mailbox's message ids, ascending: read only when a term scans the mailbox or has many index hits
    let ids: number[] | null = null;
    let pending: number[] | null = null;
    const through = indexedThrough(this.#db);
    const box: Mailbox = {
      id: mailbox,
      count,
      ids: () => (ids ??= Array.from(Float64Array.from(this.#db.all<{ id: number }>('SELECT id FROM messages WHERE mailbox_id = ?', mailbox), (r) => num(r.id)).sort())),
      indexedThrough: through,
      pending: () => {
        if (pending) return pending;
        pending = this.#db.all<{ id: number }>(PENDING, through, mailbox).map((r) => num(r.id));
        if (pending.length > 0) this.#indexer?.schedule();
        return pending;
      },
    };
    // one statement per chunk of message ids, yielding between them: a large mailbox never holds the event loop
    const slice = new TimeSlice();
    const out: number[][] = [];
    for (const term of terms) out.push(count === 0 ? [] : (await this.#term(box, term, slice)).sort((a, b) => a - b));
    return out;
  }

  async matchSent(mailboxId: Id, terms: readonly SentDateTerm[]): Promise<number[][]> {
    const mailbox = rowId(mailboxId);
    if (mailbox === null) return terms.map(() => []);
    // the covering index (migration 8) gives sent_day without reading the row's text; no Date: the internal date's day
    const rows = this.#db.all<{ uid: number; day: number }>(
      `SELECT m.uid, coalesce(s.sent_day, m.internal_date - ((m.internal_date % ${DAY}) + ${DAY}) % ${DAY}) AS day
       FROM messages m JOIN message_search s INDEXED BY message_search_sent_day ON s.message_id = m.id WHERE m.mailbox_id = ? ORDER BY m.uid`,
      mailbox,
    );
    return terms.map(({ op, day }) => rows.filter((r) => compareDay(op, num(r.day), day)).map((r) => num(r.uid)));
  }

  async matchMeta(mailboxId: Id, terms: readonly MetaTerm[]): Promise<number[][]> {
    const mailbox = rowId(mailboxId);
    if (mailbox === null) return terms.map(() => []);
    const uids = (rows: Array<{ uid: number }>): number[] => rows.map((r) => num(r.uid));
    return terms.map((term) => {
      if (term.field === 'savedate') {
        // one pass over the mailbox's rows (rowid order), the day compared here like matchSent; migration 15 added
        // saved_date for every older row
        const rows = this.#db.all<{ uid: number; saved: number }>('SELECT uid, coalesce(saved_date, internal_date) AS saved FROM messages WHERE mailbox_id = ? ORDER BY uid', mailbox);
        return rows.filter((r) => compareDay(term.op, Math.floor(num(r.saved) / DAY) * DAY, term.day)).map((r) => num(r.uid));
      }
      const id = rowId(term.id);
      if (id === null) return [];
      if (term.field === 'threadid') {
        // the thread index (user_id, thread_id) finds the thread's messages in every mailbox; few per thread
        return uids(
          this.#db.all<{ uid: number }>(
            'SELECT uid FROM messages WHERE user_id = (SELECT user_id FROM mailboxes WHERE id = ?) AND thread_id = ? AND mailbox_id = ? ORDER BY uid',
            mailbox,
            id,
            mailbox,
          ),
        );
      }
      return uids(this.#db.all<{ uid: number }>('SELECT uid FROM messages WHERE mailbox_id = ? AND coalesce(email_id, id) = ? ORDER BY uid', mailbox, id));
    });
  }

  /** UIDs of the mailbox's messages matching the term. */
  async #term(box: Mailbox, term: SearchTerm, slice: TimeSlice): Promise<number[]> {
    const field = FIELDS[term.field];
    if (!field) throw new TypeError(`search: unknown field ${String(term.field)}`);
    const { columns } = field;
    const mailbox = box.id;
    const needle = term.value.normalize('NFC');
    if (needle === '') return this.#select(mailbox, box.ids(), field.exact ? `s.${columns[0]} IS NOT NULL` : '1', [], slice);
    const chars = [...needle];
    let candidates: readonly number[] | null = null;
    let uids: number[] = []; // exact hits, when pending rows are tested too
    if (chars.length >= 3) {
      let hits = await this.#indexHits(term.field, needle, chars, box.count, slice);
      if (hits) {
        // rows indexed after the watermark was read are among the pending ones below: counted once
        if (hits.length > 0 && hits[hits.length - 1]! > box.indexedThrough) hits = hits.filter((id) => id <= box.indexedThrough);
        // few hits: the statements below keep those in the mailbox; many: narrowed here by the mailbox's ids first
        candidates = hits.length <= box.count ? hits : intersect(hits, box.ids());
        const pending = box.pending();
        if (field.exact) {
          uids = await this.#select(mailbox, candidates, '1', [], slice); // a phrase hit is a match
          if (pending.length === 0) return uids;
          candidates = pending; // not indexed yet: tested by their text below
        } else if (pending.length > 0) candidates = [...candidates, ...pending]; // every pending id is above every hit
      }
    }
    candidates ??= box.ids();
    // the substring test on the stored search text (never the message itself): inside SQLite for ASCII needles
    // (lower() folds ASCII), else by fold() on the text, read a few rows at a time
    const folded = fold(needle);
    if (/^[\x00-\x7f]*$/.test(folded)) {
      return uids.concat(await this.#select(mailbox, candidates, columns.map((c) => `instr(lower(s.${c}), ?) > 0`).join(' OR '), columns.map(() => folded), slice));
    }
    const sql = `SELECT m.uid, ${columns.map((c) => `s.${c}`).join(', ')} FROM ${AMONG}`;
    for (let at = 0; at < candidates.length; at += TEXT_ROWS_PER_READ) {
      await slice.pause();
      const rows = this.#db.all<TextRow>(sql, JSON.stringify(candidates.slice(at, at + TEXT_ROWS_PER_READ)), mailbox);
      uids.push(...confirm(rows, columns, folded));
    }
    return uids;
  }

  /**
   * The index's hits (message ids, ascending) for a needle of 3+ characters on the whole server, or null when they
   * exceed the mailbox's budget (SearchPlanOptions): then the mailbox is cheaper to scan.
   */
  async #indexHits(field: SearchField, needle: string, chars: readonly string[], messages: number, slice: TimeSlice): Promise<number[] | null> {
    const { columns, exact } = FIELDS[field];
    // header fields: a phrase query (positions kept) is an exact match; header and body text: rows with every trigram
    const [table, query] = exact
      ? ['message_fts_fields', `{${columns.join(' ')}} : ${quote(needle)}`]
      : ['message_fts_text', `{${columns.join(' ')}} : (${trigramQuery(chars)})`];
    const perMessage = exact ? this.#fieldsPerMessage : this.#textPerMessage;
    const budget = Math.min(this.#maxHits, Math.max(this.#minHits, messages * perMessage));
    // read in pages from the last rowid on (FTS5 seeks to it), yielding between them
    const sql = `SELECT rowid AS id FROM ${table} WHERE ${table} MATCH ? AND rowid > ? ORDER BY rowid LIMIT ?`;
    const hits: number[] = [];
    for (let last = 0; hits.length <= budget; ) {
      const want = Math.min(HITS_PER_STATEMENT, budget + 1 - hits.length);
      const page = this.#db.all<{ id: number }>(sql, query, last, want);
      for (const row of page) hits.push(num(row.id));
      if (page.length < want) break;
      last = hits[hits.length - 1]!;
      await slice.pause();
    }
    const indexed = hits.length <= budget;
    this.#onPlan?.({ field, plan: indexed ? 'index' : 'scan', indexHits: hits.length });
    return indexed ? hits : null;
  }

  /** UIDs of the messages among `ids` still in the mailbox whose search row meets `condition`, a chunk at a time. */
  async #select(mailbox: number, ids: readonly number[], condition: string, params: readonly string[], slice: TimeSlice): Promise<number[]> {
    const sql = `SELECT m.uid FROM ${AMONG} AND (${condition})`;
    const uids: number[] = [];
    for (let at = 0; at < ids.length; at += ROWS_PER_STATEMENT) {
      await slice.pause();
      const chunk = JSON.stringify(ids.slice(at, at + ROWS_PER_STATEMENT));
      for (const row of this.#db.all<{ uid: number }>(sql, chunk, mailbox, ...params)) uids.push(num(row.uid));
    }
    return uids;
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
