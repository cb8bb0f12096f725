/**
 * Mailboxes on MongoDB (MailboxesPort), mirroring storage/sqlite/mailboxes.ts. Each document carries its UID and
 * modseq allocators (`uidNext`, `modseq`), the counters STATUS and SELECT need (`messages`, `unseen`, `size`, kept by
 * `$inc` with every message write) and `lastChange`, the change-log sequence number of the last write ordered on it
 * (changes.ts).
 *
 * Every write logs its change through MongoChangeLog: `create` reserves a sequence number and inserts the mailbox with
 * `lastChange` at it; rename, subscribe and delete order themselves on the mailbox with `mailboxWrite` (taking no
 * modseq: their entries carry the mailbox's HIGHESTMODSEQ, as the embedded backend's do).
 *
 * UIDVALIDITY comes from one allocator for the whole database (the `meta` document `uidvalidity`): the current time
 * in seconds, or the previous value + 1 when that is not larger. Values are unique and increasing, so a mailbox
 * re-created under the same name gets a larger UIDVALIDITY. A new mailbox starts at HIGHESTMODSEQ 1.
 */
import { ObjectId } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { Id, MailboxCounters, MailboxesPort, MailboxRecord, SpecialUse } from '../ports.ts';
import type { MailboxDoc, MongoCollections } from './collections.ts';
import type { MongoChangeLog } from './changes.ts';
import { isDuplicateKey } from './errors.ts';
import { idOf, objectId } from './ids.ts';
import { removeMessages } from './removal.ts';
import type { KeyedSerial } from './serial.ts';

export function toMailbox(d: MailboxDoc): MailboxRecord {
  return {
    id: idOf(d._id),
    userId: idOf(d.user),
    path: d.path,
    specialUse: d.specialUse ?? null,
    subscribed: d.subscribed,
    uidValidity: d.uidValidity,
    uidNext: d.uidNext,
    highestModseq: d.modseq,
    created: d.created,
  };
}

function isInbox(d: MailboxDoc): boolean {
  return d.path.toUpperCase() === 'INBOX' || d.specialUse === '\\Inbox';
}

const UIDVALIDITY = 'uidvalidity';

/** Raises the UIDVALIDITY allocator to at least `value` (creating it): the next mailbox created gets a larger one. */
export async function raiseUidValidity(c: MongoCollections, value: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await c.meta.updateOne({ name: UIDVALIDITY }, { $max: { value } }, { upsert: true });
      return;
    } catch (err) {
      // two first upserts at once: the loser's document exists now
      if (!isDuplicateKey(err) || attempt > 0) throw err;
    }
  }
}

export class MongoMailboxes implements MailboxesPort {
  readonly #c: MongoCollections;
  readonly #log: MongoChangeLog;
  readonly #now: () => number;
  readonly #serial: KeyedSerial;

  constructor(c: MongoCollections, log: MongoChangeLog, options: { now: () => number; serial: KeyedSerial }) {
    this.#c = c;
    this.#log = log;
    this.#now = options.now;
    this.#serial = options.serial;
  }

  async #doc(id: Id): Promise<MailboxDoc | null> {
    const oid = objectId(id);
    return oid ? this.#c.mailboxes.findOne({ _id: oid }) : null;
  }

  /** The next UIDVALIDITY: max(now in seconds, previous + 1). */
  #allocUidValidity(): Promise<number> {
    return this.#serial.run(`meta\0${UIDVALIDITY}`, async () => {
      const seconds = Math.floor(this.#now() / 1000);
      // raise it to just below now (creating it), then take the next value: both single-document atomic steps
      await raiseUidValidity(this.#c, seconds - 1);
      const after = await this.#c.meta.findOneAndUpdate({ name: UIDVALIDITY }, { $inc: { value: 1 } }, { returnDocument: 'after' });
      return after!.value;
    });
  }

  async create(userId: Id, mailbox: { path: string; specialUse?: SpecialUse | null; subscribed?: boolean }): Promise<MailboxRecord> {
    const user = objectId(userId);
    if (!user) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
    return this.#serial.run(`mailboxes\0${user.toHexString()}`, async () => {
      if (await this.#c.mailboxes.findOne({ user, path: mailbox.path }, { projection: { _id: 1 } })) {
        throw new StorageError('ALREADYEXISTS', `mailbox ${mailbox.path} already exists`);
      }
      const seq = await this.#log.reserve(user, 1); // NONEXISTENT when the user is gone
      const doc: MailboxDoc = {
        _id: new ObjectId(),
        user,
        path: mailbox.path,
        specialUse: mailbox.specialUse ?? null,
        subscribed: mailbox.subscribed ?? true,
        uidValidity: await this.#allocUidValidity(),
        uidNext: 1,
        modseq: 1,
        lastChange: seq,
        messages: 0,
        unseen: 0,
        size: 0,
        created: this.#now(),
      };
      try {
        await this.#c.mailboxes.insertOne(doc);
      } catch (err) {
        await this.#log.giveUp(user, seq, 1);
        if (isDuplicateKey(err)) throw new StorageError('ALREADYEXISTS', `mailbox ${mailbox.path} already exists`);
        throw err;
      }
      await this.#log.write(user, seq, [{ mailbox: doc._id, type: 'mailbox.create', modseq: doc.modseq, path: doc.path }]);
      return toMailbox(doc);
    });
  }

  async get(id: Id): Promise<MailboxRecord | null> {
    const d = await this.#doc(id);
    return d ? toMailbox(d) : null;
  }

  async getByPath(userId: Id, path: string): Promise<MailboxRecord | null> {
    const user = objectId(userId);
    const d = user ? await this.#c.mailboxes.findOne({ user, path }) : null;
    return d ? toMailbox(d) : null;
  }

  async getBySpecialUse(userId: Id, specialUse: SpecialUse): Promise<MailboxRecord | null> {
    const user = objectId(userId);
    const d = user ? await this.#c.mailboxes.find({ user, specialUse }).sort({ _id: 1 }).limit(1).next() : null;
    return d ? toMailbox(d) : null;
  }

  async list(userId: Id): Promise<MailboxRecord[]> {
    const user = objectId(userId);
    if (!user) return [];
    const docs = await this.#c.mailboxes.find({ user }).toArray();
    // by path in code unit order, as SQLite's binary collation sorts (a server's collation may differ)
    return docs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map(toMailbox);
  }

  async counters(id: Id): Promise<MailboxCounters> {
    const oid = objectId(id);
    const d = oid ? await this.#c.mailboxes.findOne({ _id: oid }, { projection: { messages: 1, unseen: 1, size: 1 } }) : null;
    if (!d) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    return { messages: d.messages, unseen: d.unseen, size: d.size };
  }

  /**
   * Renames the mailbox and its descendants one document at a time, each ordered on its mailbox and logged. Targets
   * are checked first; should another instance take one meanwhile (the unique index refuses the update), the
   * mailboxes renamed so far are renamed back, so the rename is all or nothing as the port promises.
   */
  async rename(userId: Id, fromPath: string, toPath: string): Promise<MailboxRecord[]> {
    const user = objectId(userId);
    if (!user) throw new StorageError('NONEXISTENT', `mailbox ${fromPath} does not exist`);
    return this.#serial.run(`mailboxes\0${user.toHexString()}`, async () => {
      const all = await this.#c.mailboxes.find({ user }).toArray();
      const source = all.find((m) => m.path === fromPath);
      if (!source) throw new StorageError('NONEXISTENT', `mailbox ${fromPath} does not exist`);
      if (isInbox(source)) throw new StorageError('CANNOT', 'INBOX cannot be renamed here');
      if (toPath === fromPath || toPath.startsWith(fromPath + '/')) throw new StorageError('CANNOT', `cannot rename ${fromPath} to ${toPath}`);
      const prefix = fromPath + '/';
      const rows = all.filter((m) => m.path === fromPath || m.path.startsWith(prefix)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      const targets = rows.map((r) => toPath + r.path.slice(fromPath.length));
      const taken = new Set(all.map((m) => m.path));
      for (const t of targets) if (taken.has(t)) throw new StorageError('ALREADYEXISTS', `mailbox ${t} already exists`);
      const done: MailboxDoc[] = [];
      try {
        for (let i = 0; i < rows.length; i++) {
          const renamed = await this.#setPath(user, rows[i]!, targets[i]!);
          if (renamed) done.push(renamed);
        }
      } catch (err) {
        for (const r of done.reverse()) {
          const original = rows.find((row) => row._id.equals(r._id))!;
          await this.#setPath(user, r, original.path).catch(() => {});
        }
        if (isDuplicateKey(err)) throw new StorageError('ALREADYEXISTS', `a mailbox under ${toPath} already exists`);
        throw err;
      }
      return done.map(toMailbox);
    });
  }

  /** Renames one mailbox, logged; null when it is gone meanwhile. */
  async #setPath(user: ObjectId, row: MailboxDoc, path: string): Promise<MailboxDoc | null> {
    let a;
    try {
      a = await this.#log.mailboxWrite(user, row._id, { entries: 1, modseq: false });
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NONEXISTENT') return null;
      throw err;
    }
    try {
      await this.#c.mailboxes.updateOne({ _id: row._id }, { $set: { path } });
    } catch (err) {
      await this.#log.giveUp(user, a.seq, 1);
      throw err;
    }
    await this.#log.write(user, a.seq, [{ mailbox: row._id, type: 'mailbox.rename', modseq: a.modseq, path }]);
    return { ...a.mailbox, path };
  }

  async setSubscribed(id: Id, subscribed: boolean): Promise<void> {
    const d = await this.#doc(id);
    if (!d) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    if (d.subscribed === subscribed) return;
    const a = await this.#log.mailboxWrite(d.user, d._id, { entries: 1, modseq: false });
    await this.#c.mailboxes.updateOne({ _id: d._id }, { $set: { subscribed } });
    await this.#log.write(d.user, a.seq, [{ mailbox: d._id, type: 'mailbox.subscribe', modseq: a.modseq, path: a.mailbox.path }]);
  }

  /**
   * Deletes the mailbox document (its messages are unreachable from then on; a write ordered on it fails), logs the
   * deletion, then removes its messages, releasing their blob references and usage (removal.ts).
   */
  async delete(id: Id): Promise<void> {
    const d = await this.#doc(id);
    if (!d) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    if (isInbox(d)) throw new StorageError('CANNOT', 'INBOX cannot be deleted');
    const a = await this.#log.mailboxWrite(d.user, d._id, { entries: 1, modseq: false });
    const gone = await this.#c.mailboxes.deleteOne({ _id: d._id });
    if (gone.deletedCount === 0) {
      await this.#log.giveUp(d.user, a.seq, 1);
      throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    }
    await this.#log.write(d.user, a.seq, [{ mailbox: d._id, type: 'mailbox.delete', modseq: a.modseq, path: a.mailbox.path }]);
    await removeMessages(this.#c, { mailbox: d._id }, { usage: true });
  }
}
