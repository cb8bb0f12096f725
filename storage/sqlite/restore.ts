/**
 * RestorePort for the embedded backend (`wildduck storage copy --to sqlite:DIR`): users, addresses, documents and
 * mailboxes found by their natural key (username, address, kind + id, path) or created with the source's values;
 * messages stored at the source's UID and modseq (messages.ts restore). SQLite gives every object its own row id, so
 * ids are not kept, but a document's (its `doc_id`, the port's id); UIDs, modseqs and UIDVALIDITY are.
 */
import { StorageError } from '../ports.ts';
import type { AddressRecord, Id, MailboxRecord, RestorePort, UserDocument, UserRecord } from '../ports.ts';
import { RestoreMessages } from '../restore-messages.ts';
import type { Db } from './driver.ts';
import type { SqliteBlobs } from './blobs.ts';
import type { SqliteDocuments } from './documents.ts';
import type { SqliteMessages } from './messages.ts';
import type { SqliteUsers } from './users.ts';
import { num, requireRowId, toId } from './common.ts';

export class SqliteRestore extends RestoreMessages implements RestorePort {
  #db: Db;
  #users: SqliteUsers;
  #documents: SqliteDocuments;
  #messages: SqliteMessages;

  constructor(db: Db, parts: { users: SqliteUsers; documents: SqliteDocuments; messages: SqliteMessages; blobs: SqliteBlobs }) {
    super(parts.messages, parts.blobs);
    this.#db = db;
    this.#users = parts.users;
    this.#documents = parts.documents;
    this.#messages = parts.messages;
  }

  async user(record: UserRecord): Promise<Id> {
    const found = await this.#users.getByUsername(record.username);
    const user =
      found ??
      (await this.#users.create({ username: record.username, name: record.name, passwordHash: record.passwordHash, quota: record.quota, tags: record.tags }));
    await this.#users.update(user.id, { name: record.name, passwordHash: record.passwordHash, quota: record.quota, tags: record.tags, disabled: record.disabled });
    this.#db.run('UPDATE users SET created = ? WHERE id = ?', record.created, requireRowId(user.id, 'user'));
    return user.id;
  }

  async address(userId: Id, record: AddressRecord): Promise<Id> {
    const found = await this.#users.resolveAddress(record.address);
    if (found && found.userId !== userId) throw new StorageError('ALREADYEXISTS', `address ${record.address} belongs to another user in the target`);
    const address = found ?? (await this.#users.addAddress(userId, { address: record.address, display: record.display, main: record.main }));
    if (found && (found.display !== record.display || found.main !== record.main)) await this.#users.updateAddress(found.id, { display: record.display, main: record.main });
    this.#db.run('UPDATE addresses SET created = ? WHERE id = ?', record.created, requireRowId(address.id, 'address'));
    return address.id;
  }

  async document(userId: Id, doc: UserDocument): Promise<void> {
    await this.#documents.put(userId, doc.kind, doc.data, { id: doc.id, key: doc.key });
    this.#db.run(
      'UPDATE user_documents SET created = ?, updated = ? WHERE user_id = ? AND kind = ? AND doc_id = ?',
      doc.created,
      doc.updated,
      requireRowId(userId, 'user'),
      doc.kind,
      doc.id,
    );
  }

  async mailbox(userId: Id, record: MailboxRecord): Promise<Id> {
    const user = requireRowId(userId, 'user');
    const db = this.#db;
    const found = db.get<{ id: number; uid_validity: number; uid_next: number }>('SELECT id, uid_validity, uid_next FROM mailboxes WHERE user_id = ? AND path = ?', user, record.path);
    // Another UIDVALIDITY: not the mailbox copied before (deleted and made again in the source since), or one that
    // never held a message (made by a server started on the target). Its messages go; it takes the record's values.
    if (found && num(found.uid_validity) !== record.uidValidity) {
      const uids = db.all<{ uid: number }>('SELECT uid FROM messages WHERE mailbox_id = ?', found.id).map((r) => num(r.uid));
      if (uids.length > 0) await this.#messages.restoreExpunge(toId(found.id), uids);
      db.run('UPDATE mailboxes SET uid_validity = ?, uid_next = ?, highest_modseq = ? WHERE id = ?', record.uidValidity, record.uidNext, record.highestModseq, found.id);
    }
    return db.transaction(() => {
      if (!db.get('SELECT 1 AS x FROM users WHERE id = ?', user)) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
      // mailboxes created here later get a larger UIDVALIDITY than any copied one (mailboxes.ts)
      db.run(
        `INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`,
        record.uidValidity,
      );
      if (!found) {
        const { lastInsertRowid } = db.run(
          `INSERT INTO mailboxes (user_id, path, special_use, subscribed, uid_validity, uid_next, highest_modseq, created)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          user,
          record.path,
          record.specialUse,
          record.subscribed,
          record.uidValidity,
          record.uidNext,
          record.highestModseq,
          record.created,
        );
        return toId(lastInsertRowid);
      }
      db.run(
        `UPDATE mailboxes SET uid_next = max(uid_next, ?), highest_modseq = max(highest_modseq, ?), special_use = ?, subscribed = ?
         WHERE id = ?`,
        record.uidNext,
        record.highestModseq,
        record.specialUse,
        record.subscribed,
        found.id,
      );
      return toId(found.id);
    });
  }
}
