/**
 * Group commit for message writes (appends, flag changes, copies, moves, expunges): writes that arrive together are
 * written in one SQLite transaction, each in its own SAVEPOINT (a failing one is rolled back alone and fails alone),
 * and made durable by one fsync of the WAL on the thread pool instead of one fsync per write on the event loop.
 *
 * With `durable` (storage.sqlite.synchronous = full) the grouped transaction commits with `synchronous = NORMAL`
 * (the WAL is written, not yet fsynced), then the WAL file is fsynced asynchronously; only after that fsync do the
 * callers' promises resolve and the after-commit work (change notifications, staging clean-up) run. So a message is
 * acknowledged only once durable, as before, while the event loop keeps receiving and parsing other messages during
 * the fsync, and every commit that lands meanwhile shares the next fsync. A process crash loses nothing committed
 * (the WAL is in the page cache); a power loss loses nothing acknowledged. Every other transaction still commits
 * with `synchronous = FULL` (its fsync covers grouped commits before it too).
 *
 * Ordered writes (`runOrdered`: flag changes, expunges, copies and moves, which carry no new message bytes) may skip
 * that fsync, as Dovecot does for its index with fsync_mode=optimized (storage.sqlite.fsyncMode): a group made only
 * of them resolves once committed to the WAL. A power cut may then undo such a write, never reorder it: SQLite's WAL
 * is recovered up to its first missing frame, so the next fsync of the WAL (any durable commit, of any process on
 * the file) hardens every commit before it, and what survives is a prefix of the commits. So a change is never lost
 * while a later one survives, and a message copied or moved is in its source until the commit that put it in its
 * target is durable (one commit does both). What must not happen before such a commit survives (unlinking the file
 * of a blob that an expunge released, `Db.afterDurable`) waits for an fsync that started after the commit.
 *
 * When another process (a second worker) holds the write lock, the group does not wait in BEGIN (SQLite's busy
 * handler sleeps, blocking the event loop and every session of this worker): it retries a millisecond later while
 * the event loop serves other commands, and the writes arriving meanwhile join the group.
 */
import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { setImmediate, setTimeout } from 'node:timers';
import type { Committed, Db } from './driver.ts';

interface Pending {
  fn: () => unknown;
  /** Needs no fsync of its own (`runOrdered`). */
  ordered: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  #db: Db;
  #durable: boolean;
  #ordered: boolean;
  #syncDelayMs: number;
  /** An ordered commit has not been covered by an fsync yet. */
  #unsynced = false;
  #lazy: ReturnType<typeof setTimeout> | null = null;
  #queue: Pending[] = [];
  #scheduled = false;
  #syncing: Promise<void> | null = null;
  #nextSync: Promise<void> | null = null;

  #fsync: (dbPath: string) => Promise<void>;
  #lockWaitMs: number;
  /** When the group first found the write lock taken by another process; null when not waiting. */
  #busySince: number | null = null;

  /**
   * `fsync`: how the WAL is made durable (tests replace it). `lockWaitMs`: how long a group waits for another
   * process's write lock with the event loop free (polling) before it waits in BEGIN like any transaction does.
   * `ordered` (default true): `runOrdered` writes skip the fsync; false: they wait for it like `run`.
   * `syncDelayMs` (default 1000; negative: never): an ordered commit no durable one follows is fsynced this long after.
   */
  constructor(
    db: Db,
    options: { durable: boolean; ordered?: boolean; syncDelayMs?: number; fsync?: (dbPath: string) => Promise<void>; lockWaitMs?: number },
  ) {
    this.#db = db;
    this.#durable = options.durable;
    this.#ordered = options.ordered ?? true;
    this.#syncDelayMs = options.syncDelayMs ?? 1000;
    this.#fsync = options.fsync ?? fsyncWal;
    this.#lockWaitMs = options.lockWaitMs ?? 10_000;
  }

  /**
   * Runs `fn` (synchronous, database work only) in the next group's transaction; resolves with its result once that
   * transaction is committed and durable, rejects with what `fn` threw (its changes rolled back, the others' kept).
   */
  run<T>(fn: () => T): Promise<T> {
    return this.#enqueue(fn, false);
  }

  /**
   * `run` for a write that carries no new message bytes: resolves once committed, before the fsync, unless the
   * group also holds a `run` write (then with it); its `afterDurable` work waits for the next fsync.
   */
  runOrdered<T>(fn: () => T): Promise<T> {
    return this.#enqueue(fn, this.#ordered);
  }

  #enqueue<T>(fn: () => T, ordered: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, ordered, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const db = this.#db;
    const outcomes: Outcome[] = [];
    let items: Pending[] = [];
    const body = () => {
      // taken once the write lock is ours: what arrived while we waited for it joins this group
      items = this.#queue.splice(0);
      for (const item of items) {
        try {
          outcomes.push({ ok: true, value: db.savepoint(item.fn) });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
    };
    let committed: Committed<unknown> | null;
    try {
      if (this.#durable) db.exec('PRAGMA synchronous = NORMAL');
      try {
        const polite = this.#busySince === null || Date.now() - this.#busySince < this.#lockWaitMs;
        committed = polite ? db.tryTransactionDeferred(body) : db.transactionDeferred(body);
      } finally {
        if (this.#durable) db.exec('PRAGMA synchronous = FULL');
      }
    } catch (error) {
      this.#busySince = null;
      for (const item of items.length > 0 ? items : this.#queue.splice(0)) item.reject(error);
      return;
    }
    if (!committed) {
      // another process holds the write lock: try again shortly, the event loop free meanwhile
      this.#busySince ??= Date.now();
      this.#scheduled = true;
      setTimeout(() => void this.#flush(), 1);
      return;
    }
    this.#busySince = null;
    const { afterCommit, afterDurable } = committed;
    if (this.#durable && items.every((item) => item.ordered)) {
      afterCommit();
      this.#settle(items, outcomes, null);
      if (afterDurable) {
        // unlinks of released blob files: after the next fsync (one already running may predate this commit)
        this.#sync().then(afterDurable, () => {
          // left undone: the files stay in trash/, removed by the next collect() or start (SqliteBlobs)
        });
      } else this.#syncLater();
      return;
    }
    let syncError: { error: unknown } | null = null;
    if (this.#durable) {
      try {
        await this.#sync();
      } catch (error) {
        syncError = { error };
      }
    }
    afterCommit();
    afterDurable?.();
    this.#settle(items, outcomes, syncError);
  }

  #settle(items: Pending[], outcomes: Outcome[], syncError: { error: unknown } | null): void {
    items.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (syncError) item.reject(syncError.error);
      else if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  /** Ordered commits wait for an fsync: the next durable group's, or this one after `syncDelayMs`. */
  #syncLater(): void {
    this.#unsynced = true;
    if (this.#lazy || this.#syncDelayMs < 0) return;
    this.#lazy = setTimeout(() => {
      this.#lazy = null;
      if (this.#unsynced) this.#sync().catch(() => undefined);
    }, this.#syncDelayMs);
    (this.#lazy as { unref?: () => void }).unref?.();
  }

  /** Resolves after an fsync of the WAL that started after this call: one in flight at a time, shared by all waiting. */
  #sync(): Promise<void> {
    this.#unsynced = false;
    if (!this.#syncing) {
      this.#syncing = this.#fsync(this.#db.path).finally(() => {
        this.#syncing = null;
      });
      return this.#syncing;
    }
    // the fsync in flight may have started before our commit: wait for it, then take the next one
    this.#nextSync ??= this.#syncing
      .catch(() => undefined)
      .then(() => {
        this.#nextSync = null;
        return this.#sync();
      });
    return this.#nextSync;
  }

  /** Waits for the queue to drain and makes ordered commits durable (tests, close). */
  async settle(): Promise<void> {
    for (;;) {
      if (this.#queue.length === 0 && !this.#scheduled && this.#unsynced) void this.#sync().catch(() => undefined);
      if (!(this.#queue.length > 0 || this.#scheduled || this.#syncing || this.#nextSync)) break;
      await (this.#nextSync ?? this.#syncing ?? new Promise<void>((resolve) => setImmediate(resolve))).catch(() => undefined);
    }
    if (this.#lazy) clearTimeout(this.#lazy);
    this.#lazy = null;
  }
}

/** An open descriptor of a WAL file, kept between fsyncs (`fsyncWal`). */
interface WalHandle {
  fd: number;
  dev: number;
  ino: number;
  /** fsyncs in flight on `fd`: it is closed only when none is. */
  busy: number;
  stale: boolean;
}

/** Descriptors kept open, by WAL path; the oldest idle one is closed beyond `MAX_WAL_HANDLES` (tests open many). */
const walHandles = new Map<string, WalHandle>();
const MAX_WAL_HANDLES = 16;

function closeWalHandle(h: WalHandle): void {
  h.stale = true;
  if (h.busy === 0) closeSync(h.fd);
}

/** The kept descriptor of `path` if it still names the live file (same device and inode), else a fresh one. */
function walHandle(path: string): WalHandle {
  const st = statSync(path); // throws ENOENT when there is no WAL file
  const kept = walHandles.get(path);
  if (kept && kept.dev === st.dev && kept.ino === st.ino) return kept;
  if (kept) {
    // the WAL file was replaced (deleted when its last connection closed, then created again): open the live one
    walHandles.delete(path);
    closeWalHandle(kept);
  }
  const fd = openSync(path, 'r');
  const own = fstatSync(fd); // the file opened, should it have been replaced again since statSync
  const h: WalHandle = { fd, dev: own.dev, ino: own.ino, busy: 0, stale: false };
  walHandles.set(path, h);
  if (walHandles.size > MAX_WAL_HANDLES) {
    for (const [p, old] of walHandles) {
      if (old.busy > 0 || old === h) continue;
      walHandles.delete(p);
      closeWalHandle(old);
      break;
    }
  }
  return h;
}

/** The file (device, inode) `fsyncWal` keeps a descriptor of for `dbPath` (tests). */
export function keptWalFile(dbPath: string): { dev: number; ino: number } | null {
  const h = walHandles.get(`${dbPath}-wal`);
  return h ? { dev: h.dev, ino: h.ino } : null;
}

/**
 * Makes the WAL file of `dbPath` durable (fdatasync, as SQLite itself syncs its WAL on Linux): through a descriptor kept
 * open per WAL file between calls rather than an open and a close around every fsync; before each fsync a stat of the
 * path checks that the descriptor still names the live WAL (SQLite keeps its -wal file for as long as a connection
 * is open, rewinding it after a checkpoint; it deletes it when the last connection closes; the kept descriptor pins
 * the inode of a deleted file, so a new file cannot have its number). Every write to the file
 * through any descriptor is covered: an fsync applies to the file, not to the descriptor.
 */
export async function fsyncWal(dbPath: string): Promise<void> {
  let h: WalHandle;
  try {
    h = walHandle(`${dbPath}-wal`);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
    const fh = await open(dbPath, 'r'); // no WAL file: everything is in the database file
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return;
  }
  h.busy++;
  try {
    await new Promise<void>((resolve, reject) => fdatasync(h.fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    h.busy--;
    if (h.stale && h.busy === 0) closeSync(h.fd);
  }
}
