/**
 * Writes the FTS search indexes (search-schema.ts) after the acknowledgement instead of inside each append's
 * transaction: a message's search row is stored with the message (durable before the ack), and its index entries
 * follow in a batch a moment later. Indexing rows together costs about a third of indexing them one per transaction
 * (FTS5 writes a new segment per transaction or savepoint), and none of it is on the acknowledgement path.
 *
 * The `meta` watermark (INDEXED_THROUGH) says which rows are in the indexes: message ids only grow, so rows above it
 * are pending. The search port tests pending rows by their stored text (search.ts), so a message is found as soon as
 * it is acknowledged; a crash before indexing loses nothing (the rows stay pending and are indexed after restart).
 * Any process may run a batch: each is one write transaction that reads the watermark under the write lock, indexes
 * the rows above it and advances it. A batch never waits for another process's write lock (it tries again later).
 *
 * Expunged messages leave the indexes the same way: deleting an indexed search row queues its id (search-schema.ts
 * FORGET_TABLE), and each batch also removes up to `batchRows` queued ids from both indexes, so an EXPUNGE's
 * transaction writes no index pages. Until then the index may still answer an expunged id; the search port joins
 * every hit with `messages`, so it never matches.
 */
import { clearTimeout, setTimeout } from 'node:timers';
import type { Db } from './driver.ts';
import { num } from './common.ts';
import { FORGET_TABLE, INDEXED_THROUGH, SEARCH_INDEXES } from './search-schema.ts';

export interface SearchIndexerOptions {
  /**
   * Rows indexed per transaction (bounds how long one batch holds the event loop and the write lock, ~0.25 ms a row),
   * and expunged rows removed from the indexes per transaction. Default 64.
   */
  batchRows?: number;
  /**
   * How long after a write the batch starts, so the writes arriving meanwhile join it (ms). Default 500: a batch of one
   * row costs ~1.8 ms of CPU, of 8 rows ~0.45 ms a row, of 64 ~0.3 (FTS5 writes and merges a segment per transaction),
   * and at a few appends per second a short delay makes batches of one. Pending rows cost a search only a test of
   * their stored text.
   */
  delayMs?: number;
  /**
   * The database commits with synchronous = FULL: a batch commits with NORMAL instead (no fsync on the event loop; a
   * batch lost to a power cut leaves its rows pending, and the next FULL commit makes it durable anyway).
   */
  durable?: boolean;
  /**
   * False: writes and searches of this process do not schedule batches (`schedule()` does nothing); another process
   * indexes (the maintenance process of a server with workers, maintenance.ts). `step()` and `flush()` still work.
   * Default true.
   */
  scheduled?: boolean;
}

const READ_WATERMARK = `SELECT value FROM meta WHERE key = '${INDEXED_THROUGH}'`;
const BATCH_TOP = 'SELECT max(message_id) AS top, count(*) AS n FROM (SELECT message_id FROM message_search WHERE message_id > ? ORDER BY message_id LIMIT ?)';
const INSERTS = Object.entries(SEARCH_INDEXES).map(
  ([table, { columns }]) =>
    `INSERT INTO ${table} (rowid, ${columns.join(', ')}) SELECT message_id, ${columns.join(', ')} FROM message_search WHERE message_id > ? AND message_id <= ?`,
);
const ADVANCE = `UPDATE meta SET value = ? WHERE key = '${INDEXED_THROUGH}'`;
const FORGET_TOP = `SELECT max(message_id) AS top, count(*) AS n FROM (SELECT message_id FROM ${FORGET_TABLE} ORDER BY message_id LIMIT ?)`;
const FORGETS = Object.keys(SEARCH_INDEXES).map((table) => `DELETE FROM ${table} WHERE rowid IN (SELECT message_id FROM ${FORGET_TABLE} WHERE message_id <= ?)`);
const FORGOTTEN = `DELETE FROM ${FORGET_TABLE} WHERE message_id <= ?`;
/** Whether a batch has work: a search row above the watermark, or an expunged row to forget (a read, no lock). */
const PENDING = `SELECT EXISTS (SELECT 1 FROM message_search WHERE message_id > (${READ_WATERMARK})) OR EXISTS (SELECT 1 FROM ${FORGET_TABLE}) AS pending`;

/** The watermark: rows with message_id up to it are indexed. */
export function indexedThrough(db: Db): number {
  return num(db.get<{ value: number }>(READ_WATERMARK)?.value ?? 0);
}

export class SearchIndexer {
  #db: Db;
  #batchRows: number;
  #delayMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  #durable: boolean;
  #scheduled: boolean;

  constructor(db: Db, options: SearchIndexerOptions = {}) {
    this.#db = db;
    this.#batchRows = Math.max(1, Math.floor(options.batchRows ?? 64));
    this.#delayMs = Math.max(0, options.delayMs ?? 500);
    this.#durable = options.durable ?? false;
    this.#scheduled = options.scheduled ?? true;
  }

  /** How long after a write a batch starts (ms); the maintenance process polls this often. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** Rows were written (or may be pending): index them soon. */
  schedule(delayMs = this.#delayMs): void {
    if (this.#timer || this.#closed || !this.#scheduled) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#pass();
    }, delayMs);
    this.#timer.unref?.();
  }

  #pass(): void {
    let more: boolean | null;
    try {
      more = this.step(false);
    } catch {
      // the database is closing or failing: the rows stay pending (searched by their text) and a later pass retries
      more = null;
    }
    if (more === null) this.schedule(Math.max(this.#delayMs, 10));
    else if (more) this.schedule(0);
  }

  /**
   * Indexes one batch of pending rows and forgets one batch of expunged ones. True when more may be pending (a batch
   * was full), false when none are, null when another process holds the write lock (with `wait` false). A row
   * written or expunged after a partial batch schedules the next one itself, so no empty transaction runs just to
   * find nothing left. `rows`: this batch's size instead of the configured one.
   */
  step(wait = true, rows = this.#batchRows): boolean | null {
    const db = this.#db;
    const batchRows = Math.max(1, Math.floor(rows));
    const body = (): boolean => {
      const from = indexedThrough(db);
      const batch = db.get<{ top: number | null; n: number }>(BATCH_TOP, from, batchRows);
      const top = batch?.top ?? null;
      if (top !== null) {
        for (const sql of INSERTS) db.run(sql, from, num(top));
        db.run(ADVANCE, num(top));
      }
      const forget = db.get<{ top: number | null; n: number }>(FORGET_TOP, batchRows);
      const forgetTop = forget?.top ?? null;
      if (forgetTop !== null) {
        for (const sql of FORGETS) db.run(sql, num(forgetTop));
        db.run(FORGOTTEN, num(forgetTop));
      }
      return (top !== null && num(batch!.n) >= batchRows) || (forgetTop !== null && num(forget!.n) >= batchRows);
    };
    let done;
    if (this.#durable) db.exec('PRAGMA synchronous = NORMAL');
    try {
      done = wait ? db.transactionDeferred(body) : db.tryTransactionDeferred(body);
    } finally {
      if (this.#durable) db.exec('PRAGMA synchronous = FULL');
    }
    if (!done) return null;
    done.afterCommit();
    return done.result;
  }

  /** Whether a batch would find work (a read: never waits for the write lock). */
  pending(): boolean {
    return num(this.#db.get<{ pending: number }>(PENDING)?.pending ?? 0) !== 0;
  }

  /** Indexes every pending row (close, tests, benchmarks). */
  flush(): void {
    while (this.step(true)) {
      // next batch
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
