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
 */
import { clearTimeout, setTimeout } from 'node:timers';
import type { Db } from './driver.ts';
import { num } from './common.ts';
import { INDEXED_THROUGH, SEARCH_INDEXES } from './search-schema.ts';

export interface SearchIndexerOptions {
  /** Rows indexed per transaction (bounds how long one batch holds the event loop and the write lock, ~0.25 ms a row). Default 64. */
  batchRows?: number;
  /**
   * How long after a write the batch starts, so the writes arriving meanwhile join it (ms). Default 200: FTS5 writes a
   * segment per transaction, so a row indexed alone costs ~1.1 ms of CPU, in a batch of 4 ~0.5 ms, of 16+ ~0.3 ms.
   */
  delayMs?: number;
  /**
   * The database commits with synchronous = FULL: a batch commits with NORMAL instead (no fsync on the event loop; a
   * batch lost to a power cut leaves its rows pending, and the next FULL commit makes it durable anyway).
   */
  durable?: boolean;
}

const READ_WATERMARK = `SELECT value FROM meta WHERE key = '${INDEXED_THROUGH}'`;
const BATCH_TOP = 'SELECT max(message_id) AS top, count(*) AS n FROM (SELECT message_id FROM message_search WHERE message_id > ? ORDER BY message_id LIMIT ?)';
const INSERTS = Object.entries(SEARCH_INDEXES).map(
  ([table, { columns }]) =>
    `INSERT INTO ${table} (rowid, ${columns.join(', ')}) SELECT message_id, ${columns.join(', ')} FROM message_search WHERE message_id > ? AND message_id <= ?`,
);
const ADVANCE = `UPDATE meta SET value = ? WHERE key = '${INDEXED_THROUGH}'`;

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

  constructor(db: Db, options: SearchIndexerOptions = {}) {
    this.#db = db;
    this.#batchRows = Math.max(1, Math.floor(options.batchRows ?? 64));
    this.#delayMs = Math.max(0, options.delayMs ?? 200);
    this.#durable = options.durable ?? false;
  }

  /** Rows were written (or may be pending): index them soon. */
  schedule(delayMs = this.#delayMs): void {
    if (this.#timer || this.#closed) return;
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
   * Indexes one batch of pending rows. True when more may be pending (the batch was full), false when none are, null
   * when another process holds the write lock (with `wait` false). A row written after a partial batch schedules the
   * next one itself, so no empty transaction runs just to find nothing left.
   */
  step(wait = true): boolean | null {
    const db = this.#db;
    const body = (): boolean => {
      const from = indexedThrough(db);
      const batch = db.get<{ top: number | null; n: number }>(BATCH_TOP, from, this.#batchRows);
      const top = batch?.top;
      if (top === null || top === undefined) return false;
      for (const sql of INSERTS) db.run(sql, from, num(top));
      db.run(ADVANCE, num(top));
      return num(batch!.n) >= this.#batchRows;
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
