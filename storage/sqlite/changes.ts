/**
 * Change log. Entries are written inside the same transaction as the mutation they describe (`ChangeLog.add`), and
 * after the commit every user that got entries is announced once on the ephemeral pub/sub channel
 * `changes:<userId>` with the latest entry id. Ids come from an AUTOINCREMENT row id: monotonic for every user.
 */
import type { ChangeEntry, ChangesPort, ChangeType, EphemeralPort, Flag, Id } from '../ports.ts';
import type { Db } from './driver.ts';
import { num, rowId, toId } from './common.ts';

export function changeChannel(userId: Id): string {
  return `changes:${userId}`;
}

/** The user a `changes:<userId>` channel belongs to, or null for any other channel. */
function channelUser(channel: string): number | null {
  return channel.startsWith('changes:') ? rowId(channel.slice('changes:'.length)) : null;
}

export interface NewChange {
  userId: number;
  mailboxId: number;
  type: ChangeType;
  modseq: number;
  uid?: number | null;
  flags?: Flag[] | null;
  path?: string | null;
}

interface ChangeRow {
  id: number;
  user_id: number;
  mailbox_id: number;
  type: string;
  modseq: number;
  uid: number | null;
  flags: string | null;
  path: string | null;
  created: number;
}

export class ChangeLog {
  #db: Db;
  #ephemeral: EphemeralPort;
  #pending = new Map<number, number>();
  /** Latest id announced per user (by this process or after polling). */
  #announced = new Map<number, number>();
  /** Highest change id looked at by poll(). */
  #polled: number;

  constructor(db: Db, ephemeral: EphemeralPort) {
    this.#db = db;
    this.#ephemeral = ephemeral;
    this.#polled = num(db.get<{ id: number | null }>('SELECT max(id) AS id FROM changes')?.id ?? 0);
  }

  /**
   * Announces changes committed by other processes (a CLI writing beside the server): every user with entries newer
   * than what was last looked at, and newer than what this process announced itself, is published once.
   */
  poll(): void {
    const rows = this.#db.all<{ user_id: number; id: number }>(
      'SELECT user_id, max(id) AS id FROM changes WHERE id > ? GROUP BY user_id',
      this.#polled,
    );
    for (const r of rows) {
      const userId = num(r.user_id);
      const id = num(r.id);
      if (id > this.#polled) this.#polled = id;
      if (id > (this.#announced.get(userId) ?? 0)) this.#announce(userId, id);
    }
  }

  /** Another process announced `latest` for the user (seen on the pub/sub): poll() does not announce it again. */
  seen(userId: number, latest: number): void {
    if (latest > (this.#announced.get(userId) ?? 0)) this.#announced.set(userId, latest);
  }

  #announce(userId: number, latest: number): void {
    this.#announced.set(userId, latest);
    this.#ephemeral.publish(changeChannel(toId(userId)), String(latest)).catch(() => {
      // pub/sub is a hint; listeners catch up with since() on the next notification
    });
  }

  /** Must run inside a transaction. Returns the new entry id. */
  add(change: NewChange, now: number): number {
    const db = this.#db;
    const { lastInsertRowid: id } = db.run(
      'INSERT INTO changes (user_id, mailbox_id, type, modseq, uid, flags, path, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      change.userId,
      change.mailboxId,
      change.type,
      change.modseq,
      change.uid ?? null,
      change.flags ? JSON.stringify(change.flags) : null,
      change.path ?? null,
      now,
    );
    if (this.#pending.size === 0) db.afterCommit(() => this.#flush());
    // undone entry by entry, so a savepoint rolled back inside a group commit takes back only its own
    const previous = this.#pending.get(change.userId);
    db.onRollback(() => (previous === undefined ? this.#pending.delete(change.userId) : this.#pending.set(change.userId, previous)));
    this.#pending.set(change.userId, id);
    return id;
  }

  #flush(): void {
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [userId, latest] of pending) this.#announce(userId, latest);
  }
}

function toEntry(r: ChangeRow): ChangeEntry {
  return {
    id: num(r.id),
    userId: toId(r.user_id),
    mailboxId: toId(r.mailbox_id),
    type: r.type as ChangeType,
    modseq: num(r.modseq),
    uid: r.uid === null ? null : num(r.uid),
    flags: r.flags === null ? null : (JSON.parse(r.flags) as Flag[]),
    path: r.path,
    created: num(r.created),
  };
}

export class SqliteChanges implements ChangesPort {
  #db: Db;
  #ephemeral: EphemeralPort;
  #log: ChangeLog;
  #pollMs: number;
  #subscribers = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** `pollMs` > 0: while anyone is subscribed, look for changes written by other processes this often. */
  constructor(db: Db, ephemeral: EphemeralPort, log: ChangeLog, pollMs: number) {
    this.#db = db;
    this.#ephemeral = ephemeral;
    this.#log = log;
    this.#pollMs = pollMs;
  }

  #startPolling(): void {
    if (this.#timer || this.#pollMs <= 0) return;
    this.#log.poll(); // start from now
    const timer = setInterval(() => {
      try {
        this.#log.poll();
      } catch {
        // database busy or closing: try again next tick
      }
    }, this.#pollMs);
    // Don't keep the process alive just for polling (Node timers have unref; Deno's return a number).
    (timer as { unref?: () => void }).unref?.();
    this.#timer = timer;
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * Polls for changes as long as the returned function is not called, subscribers or not: the primary process of
   * a multi-process server polls once for every worker (changes written by the CLI beside the server) and
   * announces them on the shared pub/sub.
   */
  watch(): () => void {
    if (++this.#subscribers === 1) this.#startPolling();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (--this.#subscribers === 0) this.#stopPolling();
    };
  }

  /** A message published on the shared pub/sub by another process: an announced change is not announced again. */
  observed(channel: string, message: string): void {
    const userId = channelUser(channel);
    const id = Number(message);
    if (userId !== null && Number.isSafeInteger(id)) this.#log.seen(userId, id);
  }

  /** Stops polling (on close). */
  close(): void {
    this.#stopPolling();
  }

  async since(userId: Id, afterId: number, options: { mailboxId?: Id; limit?: number } = {}): Promise<ChangeEntry[]> {
    const uid = rowId(userId);
    if (uid === null) return [];
    const limit = Math.max(1, Math.min(options.limit ?? 1000, 100_000));
    if (options.mailboxId !== undefined) {
      const mid = rowId(options.mailboxId);
      if (mid === null) return [];
      return this.#db
        .all<ChangeRow>(
          'SELECT * FROM changes WHERE user_id = ? AND id > ? AND mailbox_id = ? ORDER BY id LIMIT ?',
          uid,
          afterId,
          mid,
          limit,
        )
        .map(toEntry);
    }
    return this.#db
      .all<ChangeRow>('SELECT * FROM changes WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?', uid, afterId, limit)
      .map(toEntry);
  }

  async latest(userId: Id): Promise<number> {
    const uid = rowId(userId);
    if (uid === null) return 0;
    const r = this.#db.get<{ id: number | null }>('SELECT max(id) AS id FROM changes WHERE user_id = ?', uid);
    return r?.id ? num(r.id) : 0;
  }

  async vanished(mailboxId: Id, modseq: number): Promise<number[] | null> {
    const mid = rowId(mailboxId);
    if (mid === null) return [];
    const floor = this.#db.get<{ modseq: number }>('SELECT modseq FROM vanished_floors WHERE mailbox_id = ?', mid);
    if (floor && num(floor.modseq) > modseq) return null;
    const rows = this.#db.all<{ uid: number }>(
      "SELECT uid FROM changes WHERE mailbox_id = ? AND type = 'expunge' AND modseq > ? ORDER BY uid",
      mid,
      modseq,
    );
    return rows.map((r) => num(r.uid));
  }

  subscribe(userId: Id, listener: (latestId: number) => void): () => void {
    const off = this.#ephemeral.subscribe(changeChannel(userId), (message) => {
      const id = Number(message);
      if (Number.isFinite(id)) listener(id);
    });
    if (++this.#subscribers === 1) this.#startPolling();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      off();
      if (--this.#subscribers === 0) this.#stopPolling();
    };
  }

  /**
   * Drops the oldest entries, up to the last one created before `before`. Entries are created in id order, so the
   * bound is found by a binary search over ids (no index on `created`, migration 12: one page less per write); a
   * clock stepped back may keep or drop a few entries near the bound.
   */
  async prune(before: number): Promise<number> {
    const db = this.#db;
    return db.transaction(() => {
      const bound = lastIdCreatedBefore(db, before);
      if (bound === 0) return 0;
      // remembered for index snapshots: one taken at a cursor below this cannot be caught up any more
      db.run("UPDATE meta SET value = max(value, ?) WHERE key = 'changes_pruned_through'", bound);
      // QRESYNC: expunges older than these modseqs can no longer be told (vanished() answers null below them)
      db.run(
        `INSERT INTO vanished_floors (mailbox_id, modseq)
           SELECT c.mailbox_id, max(c.modseq) FROM changes c JOIN mailboxes m ON m.id = c.mailbox_id
           WHERE c.id <= ? AND c.type = 'expunge' GROUP BY c.mailbox_id
         ON CONFLICT (mailbox_id) DO UPDATE SET modseq = max(modseq, excluded.modseq)`,
        bound,
      );
      return db.run('DELETE FROM changes WHERE id <= ?', bound).changes;
    });
  }
}

/** The highest change id whose entry and every one before it were created before `before` (0: none). */
function lastIdCreatedBefore(db: Db, before: number): number {
  const at = (id: number) => db.get<{ id: number; created: number }>('SELECT id, created FROM changes WHERE id >= ? ORDER BY id LIMIT 1', id);
  const first = at(0);
  if (!first || num(first.created) >= before) return 0;
  let lo = num(first.id); // created before `before`
  let hi = num(db.get<{ id: number }>('SELECT max(id) AS id FROM changes')!.id) + 1; // past the bound
  while (hi - lo > 1) {
    const next = at(Math.floor((lo + hi) / 2));
    if (!next || num(next.id) >= hi) {
      hi = Math.floor((lo + hi) / 2);
      continue;
    }
    if (num(next.created) < before) lo = num(next.id);
    else hi = num(next.id);
  }
  return lo;
}
