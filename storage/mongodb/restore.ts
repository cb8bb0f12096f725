/**
 * RestorePort for MongoDB (`wildduck storage copy --to mongodb://…`): users, addresses, documents and mailboxes found
 * by their natural key (username, address, kind + id, path) or created with the source's values; messages stored at
 * the source's UID and modseq (messages.ts restore).
 *
 * Ids: a user, address or mailbox created here takes the source's id when it is a 24-hex ObjectId no other document
 * of its collection has (the embedded backend's ids are), so API clients' stored ids stay valid after the move; else a
 * new one. A document (filter, ASP, …) keeps its id whatever the source (it is the port's `docId`). Messages and
 * threads get new ids (the port gives none); UIDs, modseqs and UIDVALIDITY are kept.
 *
 * Without transactions every step is idempotent and re-runnable (README.md "Consistency without transactions"): a
 * name is looked up before it is written, a message UID that is there already is left alone, mailbox uidNext and
 * modseq only rise (`$max`), counters change by `$inc`, and a user found by a later run (after a stop or a crash) has
 * its usage, mailbox counters and login keys recounted first (`recalculateUsage`), so what a crash between two writes
 * left short is right again before the run goes on. The change log gets no entries: a restored message's `seq` is 0,
 * so every reader's cursor covers it, and each mailbox's modseq covers the copied ones, so later writes get larger ones.
 */
import { ObjectId } from 'mongodb';
import type { Collection } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { AddressRecord, Id, MailboxRecord, RestorePort, UserDocument, UserRecord } from '../ports.ts';
import { RestoreMessages } from '../restore-messages.ts';
import type { MongoBlobs } from './blobs.ts';
import type { MailboxDoc, MongoCollections } from './collections.ts';
import type { MongoDocuments } from './documents.ts';
import { isDuplicateKey } from './errors.ts';
import { idOf, objectId, requireObjectId } from './ids.ts';
import { raiseUidValidity } from './mailboxes.ts';
import type { MongoMessages } from './messages.ts';
import type { MongoUsers } from './users.ts';

/** The source's id when it is an ObjectId no document of `collection` has, else a new one. */
async function keptId(collection: Collection<{ _id: ObjectId }>, id: Id): Promise<ObjectId> {
  const oid = objectId(id);
  if (oid && !(await collection.findOne({ _id: oid }, { projection: { _id: 1 } }))) return oid;
  return new ObjectId();
}

export class MongoRestore extends RestoreMessages implements RestorePort {
  readonly #c: MongoCollections;
  readonly #users: MongoUsers;
  readonly #documents: MongoDocuments;
  readonly #messages: MongoMessages;

  constructor(c: MongoCollections, parts: { users: MongoUsers; documents: MongoDocuments; messages: MongoMessages; blobs: MongoBlobs }) {
    super(parts.messages, parts.blobs);
    this.#c = c;
    this.#users = parts.users;
    this.#documents = parts.documents;
    this.#messages = parts.messages;
  }

  #collection(name: 'users' | 'addresses' | 'mailboxes'): Collection<{ _id: ObjectId }> {
    return this.#c[name] as unknown as Collection<{ _id: ObjectId }>;
  }

  async user(record: UserRecord): Promise<Id> {
    const found = await this.#users.getByUsername(record.username);
    let id: Id;
    if (found) {
      id = found.id;
      // a run after a stop or a crash: counters a crash left short, login keys not yet claimed
      await this.#users.recalculateUsage(id);
    } else {
      const fields = { username: record.username, name: record.name, passwordHash: record.passwordHash, quota: record.quota, tags: record.tags };
      id = (await this.#users.create(fields, { id: await keptId(this.#collection('users'), record.id) })).id;
    }
    await this.#users.update(id, { name: record.name, passwordHash: record.passwordHash, quota: record.quota, tags: record.tags, disabled: record.disabled });
    await this.#c.users.updateOne({ _id: requireObjectId(id, 'user') }, { $set: { created: record.created } });
    return id;
  }

  async address(userId: Id, record: AddressRecord): Promise<Id> {
    const found = await this.#users.resolveAddress(record.address);
    if (found && found.userId !== userId) throw new StorageError('ALREADYEXISTS', `address ${record.address} belongs to another user in the target`);
    const address =
      found ??
      (await this.#users.addAddress(userId, { address: record.address, display: record.display, main: record.main }, { id: await keptId(this.#collection('addresses'), record.id) }));
    if (found && (found.display !== record.display || found.main !== record.main)) await this.#users.updateAddress(found.id, { display: record.display, main: record.main });
    await this.#c.addresses.updateOne({ _id: requireObjectId(address.id, 'address') }, { $set: { created: record.created } });
    return address.id;
  }

  async document(userId: Id, doc: UserDocument): Promise<void> {
    await this.#documents.put(userId, doc.kind, doc.data, { id: doc.id, key: doc.key });
    await this.#c.documents.updateOne({ user: requireObjectId(userId, 'user'), kind: doc.kind, docId: doc.id }, { $set: { created: doc.created, updated: doc.updated } });
  }

  async mailbox(userId: Id, record: MailboxRecord): Promise<Id> {
    const c = this.#c;
    const user = requireObjectId(userId, 'user');
    // mailboxes created here later get a larger UIDVALIDITY than any copied one (mailboxes.ts)
    await raiseUidValidity(c, record.uidValidity);
    let found = await c.mailboxes.findOne({ user, path: record.path });
    // Another UIDVALIDITY: not the mailbox copied before (deleted and made again in the source since), or one that
    // never held a message (made by a server started on the target). Its messages go first, then it takes the
    // record's values (a crash between: the next run finds the old UIDVALIDITY again and goes on).
    if (found && found.uidValidity !== record.uidValidity) {
      const uids = (await c.messages.find({ mailbox: found._id }, { projection: { uid: 1 } }).toArray()).map((m) => m.uid);
      if (uids.length > 0) await this.#messages.restoreExpunge(idOf(found._id), uids);
      await c.mailboxes.updateOne({ _id: found._id }, { $set: { uidValidity: record.uidValidity, uidNext: record.uidNext, modseq: record.highestModseq } });
    }
    if (!found) {
      if (!(await c.users.findOne({ _id: user }, { projection: { _id: 1 } }))) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
      const doc: MailboxDoc = {
        _id: await keptId(this.#collection('mailboxes'), record.id),
        user,
        path: record.path,
        specialUse: record.specialUse,
        subscribed: record.subscribed,
        uidValidity: record.uidValidity,
        uidNext: record.uidNext,
        modseq: record.highestModseq,
        // no change-log entry: any write ordered on it later comes after
        lastChange: 0,
        messages: 0,
        unseen: 0,
        size: 0,
        created: record.created,
      };
      try {
        await c.mailboxes.insertOne(doc);
        return idOf(doc._id);
      } catch (err) {
        // made meanwhile (a second copy, or a server on the target): it is found
        if (!isDuplicateKey(err)) throw err;
        found = await c.mailboxes.findOne({ user, path: record.path });
        if (!found) throw err;
      }
    }
    await c.mailboxes.updateOne(
      { _id: found._id },
      { $max: { uidNext: record.uidNext, modseq: record.highestModseq }, $set: { specialUse: record.specialUse, subscribed: record.subscribed } },
    );
    return idOf(found._id);
  }
}
