/**
 * Background work on the database that no client waits for, done by one process for all: writing the search indexes
 * (search-indexer.ts) and copying the write-ahead log into the database file (checkpoints).
 *
 * In a single process (and on Deno) the process that writes does both itself: its search indexer runs a batch
 * shortly after its writes, and SQLite checkpoints at the end of the commit that takes the WAL past
 * `wal_autocheckpoint` pages. Both then run on the event loop that serves the connections: an index batch of 64
 * rows holds it ~20 ms, a checkpoint copies up to a thousand pages and fsyncs the database file inside a client's
 * commit.
 *
 * With worker processes (protocols/net/cluster.ts) a maintenance process does both instead (`backgroundWork: 'here'`):
 * - every `intervalMs` it asks whether any search row is above the indexer's watermark or any expunged row waits to
 *   leave the indexes (a read: no lock), and if so runs batches until none is left, each a transaction of its own
 *   that never waits for the write lock (another process holding it: next round). Batches wait for a quiet moment:
 *   no other process committed for `quietMs` (the WAL index's frame count did not move), or `maxDeferMs` passed since
 *   the work was found. A batch holds the write lock for several milliseconds, so a worker's commit meanwhile waits
 *   for it, and the fsync that makes that commit durable also writes the batch's pages (it commits without one):
 *   latency added to a client waiting for its OK, most of all on one connection sending messages back to back.
 *   Until then the new rows are searched by their text (below), and the deferral is bounded;
 * - every `checkpointCheckMs` it reads how many WAL frames are not yet in the database file from the WAL index (the
 *   `-shm` file's header, SQLite's documented WAL-index format: mxFrame, and nBackfill of the checkpoint info) and
 *   runs a PASSIVE checkpoint (which never waits for a writer or reader) once they reach `checkpointPages`: half the
 *   configured WAL size (storage.sqlite.walAutocheckpointPages).
 * The workers (`backgroundWork: 'others'`) schedule no index batches and keep SQLite's autocheckpoint at the configured
 * size. A WAL starts over (and its file stops growing) only at a write that finds every frame copied, which a
 * checkpoint running beside committing workers rarely leaves: so the worker whose commit takes the WAL to the
 * configured size still checkpoints, as before, but finds most frames copied already (the remainder and one fsync of
 * the database file, instead of up to the whole WAL), and the WAL file keeps the configured size.
 *
 * Nothing here is needed for a message's durability or for search to find it: rows above the watermark are searched
 * by their stored text (search.ts), so a crash of any process at any point loses nothing acknowledged.
 */
import { Buffer } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import type { Db } from './driver.ts';
import type { SearchIndexer } from './search-indexer.ts';

/** The WAL-index header (two copies of 48 bytes) and the first field of the checkpoint info after it (nBackfill). */
const SHM_HEADER_BYTES = 100;
const MX_FRAME_OFFSET = 16;
const N_BACKFILL_OFFSET = 96;

export interface MaintenanceOptions {
  /** WAL frames (pages) not yet in the database file that start a checkpoint (0: never checkpoint here). */
  checkpointPages: number;
  /** How often to look for work (ms). */
  intervalMs: number;
  /** Rows per index batch (each a write transaction; see the pause between batches in SqliteMaintenance). */
  batchRows: number;
  /** How often the WAL's backlog is read (ms; a read of 100 bytes): often enough that the WAL stays near `checkpointPages`. */
  checkpointCheckMs: number;
  /** Index batches wait until no other process committed for this long (ms; 0: they never wait). */
  quietMs?: number;
  /** ... but no longer than this after the work was found (ms). */
  maxDeferMs?: number;
}

/** The WAL's frames since it last started over, and how many of them are not yet in the database file. */
export interface WalState {
  frames: number;
  backlog: number;
}

/** The state of the WAL of `dbPath`, read from its WAL index; null when unknown. */
export class WalBacklog {
  #path: string;
  #fd: number | null = null;
  #buffer = Buffer.alloc(SHM_HEADER_BYTES);
  #little = endianness() === 'LE';

  constructor(dbPath: string) {
    this.#path = `${dbPath}-shm`;
  }

  read(): WalState | null {
    try {
      this.#fd ??= openSync(this.#path, 'r');
      if (readSync(this.#fd, this.#buffer, 0, SHM_HEADER_BYTES, 0) < SHM_HEADER_BYTES) return null;
    } catch {
      this.close(); // not there yet (no connection in WAL mode), or replaced: opened again next time
      return null;
    }
    const b = this.#buffer;
    const mxFrame = this.#little ? b.readUInt32LE(MX_FRAME_OFFSET) : b.readUInt32BE(MX_FRAME_OFFSET);
    const nBackfill = this.#little ? b.readUInt32LE(N_BACKFILL_OFFSET) : b.readUInt32BE(N_BACKFILL_OFFSET);
    return { frames: mxFrame, backlog: Math.max(0, mxFrame - nBackfill) };
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

export class SqliteMaintenance {
  #db: Db;
  #indexer: SearchIndexer;
  #options: MaintenanceOptions;
  #backlog: WalBacklog;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #checks: ReturnType<typeof setInterval> | null = null;
  #closed = false;
  /** The WAL's frame count when last read, and when it last moved (other processes' commits; our own are discounted). */
  #frames = -1;
  #movedAt = 0;
  /** When the pending work was first found (null: none pending). */
  #pendingSince: number | null = null;
  /** Checkpoints run (tests). */
  checkpoints = 0;
  /** Index rounds that waited for a quiet moment (tests). */
  deferrals = 0;

  constructor(db: Db, indexer: SearchIndexer, options: MaintenanceOptions) {
    this.#db = db;
    this.#indexer = indexer;
    this.#options = options;
    this.#backlog = new WalBacklog(db.path);
  }

  start(): void {
    this.#next(0);
    if (this.#options.checkpointPages <= 0) return;
    this.#checks = setInterval(() => {
      // (closing or failing: the next check tries again; the workers' autocheckpoint is the safety net)
      this.#watch();
      this.#checkpointQuietly();
    }, Math.max(1, this.#options.checkpointCheckMs));
    (this.#checks as { unref?: () => void }).unref?.();
  }

  #next(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#round();
    }, delayMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Reads the WAL's frame count: a change since the last read is another process's commit (or a WAL restart). */
  #watch(): void {
    const frames = this.#backlog.read()?.frames ?? -1;
    if (frames !== this.#frames) this.#movedAt = performance.now();
    this.#frames = frames;
  }

  /** Whether an index batch may run now: the other processes quiet for `quietMs`, or the work deferred long enough. */
  #mayIndex(): boolean {
    const quietMs = this.#options.quietMs ?? 0;
    if (quietMs <= 0) return true;
    const now = performance.now();
    this.#pendingSince ??= now;
    this.#watch();
    return now - this.#movedAt >= quietMs || now - this.#pendingSince >= (this.#options.maxDeferMs ?? 0);
  }

  async #round(): Promise<void> {
    try {
      while (!this.#closed && this.#indexer.pending()) {
        if (!this.#mayIndex()) {
          // writers busy: look again shortly (the rows are searched by their text meanwhile)
          this.deferrals++;
          this.#next(Math.max(1, Math.min(this.#options.quietMs ?? 0, this.#options.checkpointCheckMs)));
          return;
        }
        const started = performance.now();
        const more = this.#indexer.step(false, this.#options.batchRows);
        // our own commit moved the frame count: not another process's
        if (more !== null) this.#frames = this.#backlog.read()?.frames ?? -1;
        if (more === false) this.#pendingSince = null; // none left
        // a backlog worked off in a burst writes pages faster than the checkpoint timer copies them, and a WAL only
        // starts over once all of it is copied: looked at after each batch, the WAL file keeps its configured size
        this.#checkpointQuietly();
        if (!more) break;
        // the write lock is free for at least as long as the batch held it: a writer waiting for it (group-commit.ts
        // retries every millisecond) gets in between two batches instead of after the whole backlog
        await new Promise<void>((resolve) => setTimeout(resolve, Math.max(2, performance.now() - started)));
      }
    } catch {
      // busy or closing: next round
    }
    this.#next(this.#options.intervalMs);
  }

  #checkpointQuietly(): void {
    try {
      this.checkpoint();
    } catch {
      // closing or failing: the timer tries again
    }
  }

  /** Runs a PASSIVE checkpoint when `checkpointPages` frames of the WAL are not yet in the database file. */
  checkpoint(force = false): boolean {
    const pages = this.#options.checkpointPages;
    if (pages <= 0 && !force) return false;
    const wal = this.#backlog.read();
    if (!force && wal !== null && wal.backlog < pages) return false;
    this.#db.get('PRAGMA wal_checkpoint(PASSIVE)');
    this.checkpoints++;
    return true;
  }

  /** One round now: index what is pending, checkpoint if due (tests). */
  async runOnce(): Promise<void> {
    while (this.#indexer.pending() && this.#indexer.step(true, this.#options.batchRows)) {
      // next batch
    }
    this.checkpoint();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#checks) clearInterval(this.#checks);
    this.#timer = null;
    this.#checks = null;
    this.#backlog.close();
  }
}
