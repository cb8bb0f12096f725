/**
 * Mailboxes. Each row carries its UID/modseq allocators (`uid_next`, `highest_modseq`) and the counters that
 * STATUS and SELECT need (`message_count`, `unseen_count`, `total_size`), kept exact by the message transactions,
 * so `counters()` never scans messages.
 *
 * UIDVALIDITY comes from one allocator for the whole database (`meta.uidvalidity`): the current time in seconds, or
 * the previous value + 1 when that is not larger. Values are therefore unique and increasing, and a mailbox
 * re-created under the same name always gets a larger UIDVALIDITY. A new mailbox starts at HIGHESTMODSEQ 1;
 * its first change gets modseq 2.
 */
import { StorageError } from '../ports.ts';
import type { Id, MailboxCounters, MailboxesPort, MailboxRecord, SpecialUse } from '../ports.ts';
import type { Db } from './driver.ts';
import type { SqliteBlobs } from './blobs.ts';
import type { ChangeLog } from './changes.ts';
import { bool, isUniqueViolation, num, rowId, toId } from './common.ts';

export interface MailboxRow {
  id: number;
  user_id: number;
  path: string;
  special_use: string | null;
  subscribed: number;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  message_count: number;
  unseen_count: number;
  total_size: number;
  created: number;
}

export function toMailbox(r: MailboxRow): MailboxRecord {
  return {
    id: toId(r.id),
    userId: toId(r.user_id),
    path: r.path,
    specialUse: (r.special_use as SpecialUse | null) ?? null,
    subscribed: bool(r.subscribed),
    uidValidity: num(r.uid_validity),
    uidNext: num(r.uid_next),
    highestModseq: num(r.highest_modseq),
    created: num(r.created),
  };
}

function isInbox(r: MailboxRow): boolean {
  return r.path.toUpperCase() === 'INBOX' || r.special_use === '\\Inbox';
}

export class SqliteMailboxes implements MailboxesPort {
  #db: Db;
  #blobs: SqliteBlobs;
  #log: ChangeLog;
  #now: () => number;

  constructor(db: Db, blobs: SqliteBlobs, log: ChangeLog, now: () => number) {
    this.#db = db;
    this.#blobs = blobs;
    this.#log = log;
    this.#now = now;
  }

  #row(id: number): MailboxRow | undefined {
    return this.#db.get<MailboxRow>('SELECT * FROM mailboxes WHERE id = ?', id);
  }

  /** Inside a transaction: the next UIDVALIDITY. */
  #allocUidValidity(): number {
    const seconds = Math.floor(this.#now() / 1000);
    const r = this.#db.get<{ value: number }>(
      `INSERT INTO meta (key, value) VALUES ('uidvalidity', ?)
       ON CONFLICT (key) DO UPDATE SET value = max(excluded.value, value + 1)
       RETURNING value`,
      seconds,
    );
    return num(r!.value);
  }

  async create(userId: Id, mailbox: { path: string; specialUse?: SpecialUse | null; subscribed?: boolean }): Promise<MailboxRecord> {
    const uid = rowId(userId);
    const db = this.#db;
    try {
      return db.transaction(() => {
        if (uid === null || !db.get('SELECT 1 AS x FROM users WHERE id = ?', uid)) {
          throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
        }
        const now = this.#now();
        const { lastInsertRowid } = db.run(
          'INSERT INTO mailboxes (user_id, path, special_use, subscribed, uid_validity, created) VALUES (?, ?, ?, ?, ?, ?)',
          uid,
          mailbox.path,
          mailbox.specialUse ?? null,
          mailbox.subscribed ?? true,
          this.#allocUidValidity(),
          now,
        );
        const row = this.#row(lastInsertRowid)!;
        this.#log.add({ userId: uid, mailboxId: row.id, type: 'mailbox.create', modseq: num(row.highest_modseq), path: row.path }, now);
        return toMailbox(row);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StorageError('ALREADYEXISTS', `mailbox ${mailbox.path} already exists`);
      throw err;
    }
  }

  async get(id: Id): Promise<MailboxRecord | null> {
    const n = rowId(id);
    const r = n === null ? undefined : this.#row(n);
    return r ? toMailbox(r) : null;
  }

  async getByPath(userId: Id, path: string): Promise<MailboxRecord | null> {
    const uid = rowId(userId);
    if (uid === null) return null;
    const r = this.#db.get<MailboxRow>('SELECT * FROM mailboxes WHERE user_id = ? AND path = ?', uid, path);
    return r ? toMailbox(r) : null;
  }

  async getBySpecialUse(userId: Id, specialUse: SpecialUse): Promise<MailboxRecord | null> {
    const uid = rowId(userId);
    if (uid === null) return null;
    const r = this.#db.get<MailboxRow>(
      'SELECT * FROM mailboxes WHERE user_id = ? AND special_use = ? ORDER BY id LIMIT 1',
      uid,
      specialUse,
    );
    return r ? toMailbox(r) : null;
  }

  async list(userId: Id): Promise<MailboxRecord[]> {
    const uid = rowId(userId);
    if (uid === null) return [];
    return this.#db.all<MailboxRow>('SELECT * FROM mailboxes WHERE user_id = ? ORDER BY path', uid).map(toMailbox);
  }

  async counters(id: Id): Promise<MailboxCounters> {
    const n = rowId(id);
    const r =
      n === null
        ? undefined
        : this.#db.get<{ message_count: number; unseen_count: number; total_size: number }>(
            'SELECT message_count, unseen_count, total_size FROM mailboxes WHERE id = ?',
            n,
          );
    if (!r) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    return { messages: num(r.message_count), unseen: num(r.unseen_count), size: num(r.total_size) };
  }

  async rename(userId: Id, fromPath: string, toPath: string): Promise<MailboxRecord[]> {
    const uid = rowId(userId);
    const db = this.#db;
    return db.transaction(() => {
      const source =
        uid === null ? undefined : db.get<MailboxRow>('SELECT * FROM mailboxes WHERE user_id = ? AND path = ?', uid, fromPath);
      if (!source || uid === null) throw new StorageError('NONEXISTENT', `mailbox ${fromPath} does not exist`);
      if (isInbox(source)) throw new StorageError('CANNOT', 'INBOX cannot be renamed here');
      if (toPath === fromPath || toPath.startsWith(fromPath + '/')) {
        throw new StorageError('CANNOT', `cannot rename ${fromPath} to ${toPath}`);
      }
      const prefix = fromPath + '/';
      const rows = db.all<MailboxRow>(
        'SELECT * FROM mailboxes WHERE user_id = ? AND (path = ? OR substr(path, 1, ?) = ?) ORDER BY path',
        uid,
        fromPath,
        prefix.length,
        prefix,
      );
      const targets = rows.map((r) => toPath + r.path.slice(fromPath.length));
      for (const t of targets) {
        if (db.get('SELECT 1 AS x FROM mailboxes WHERE user_id = ? AND path = ?', uid, t)) {
          throw new StorageError('ALREADYEXISTS', `mailbox ${t} already exists`);
        }
      }
      const now = this.#now();
      const out: MailboxRecord[] = [];
      rows.forEach((r, i) => {
        db.run('UPDATE mailboxes SET path = ? WHERE id = ?', targets[i], r.id);
        this.#log.add({ userId: uid, mailboxId: r.id, type: 'mailbox.rename', modseq: num(r.highest_modseq), path: targets[i] }, now);
        out.push(toMailbox({ ...r, path: targets[i] }));
      });
      return out;
    });
  }

  async setSubscribed(id: Id, subscribed: boolean): Promise<void> {
    const n = rowId(id);
    const db = this.#db;
    db.transaction(() => {
      const r = n === null ? undefined : this.#row(n);
      if (!r) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
      if (bool(r.subscribed) === subscribed) return;
      db.run('UPDATE mailboxes SET subscribed = ? WHERE id = ?', subscribed, r.id);
      this.#log.add({ userId: r.user_id, mailboxId: r.id, type: 'mailbox.subscribe', modseq: num(r.highest_modseq), path: r.path }, this.#now());
    });
  }

  async delete(id: Id): Promise<void> {
    const n = rowId(id);
    const db = this.#db;
    db.transaction(() => {
      const r = n === null ? undefined : this.#row(n);
      if (!r) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
      if (isInbox(r)) throw new StorageError('CANNOT', 'INBOX cannot be deleted');
      this.#blobs.releaseRefs(this.#blobs.refsOf('m.mailbox_id = ?', r.id));
      db.run(
        'UPDATE users SET storage_used = storage_used - ?, messages_used = messages_used - ? WHERE id = ?',
        r.total_size,
        r.message_count,
        r.user_id,
      );
      db.run('DELETE FROM mailboxes WHERE id = ?', r.id); // messages, their search text and blob links cascade
      this.#log.add({ userId: r.user_id, mailboxId: r.id, type: 'mailbox.delete', modseq: num(r.highest_modseq), path: r.path }, this.#now());
    });
  }
}
