/**
 * Users, their login keys and addresses on MongoDB (UsersPort), mirroring storage/sqlite/users.ts.
 *
 * Uniqueness: the unique indexes on `users.username`, `loginkeys.{kind, key}` and `addresses.address` refuse a second
 * writer on any instance (duplicate key → ALREADYEXISTS); each write also looks first, one name at a time in this
 * process (serial.ts). A user's login keys: its folded username (`name`) and username skeleton (`skeleton`), and the
 * folded form of each of its addresses (`name`, counted in `refs` when an address folds like the username).
 *
 * No multi-document transactions: each write is ordered so that a crash leaves something re-runnable or repaired by
 * `recalculateUsage` (README.md "Consistency without transactions").
 */
import { Buffer } from 'node:buffer';
import { ObjectId } from 'mongodb';
import type { Collection, Filter } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { AddressRecord, Id, NewUser, Page, UserFilter, UserPatch, UserRecord, UsersPort } from '../ports.ts';
import { loginKey, usernameSkeleton } from '../addresses.ts';
import type { AddressDoc, MongoCollections, UserDoc } from './collections.ts';
import { isDuplicateKey } from './errors.ts';
import { idOf, objectId } from './ids.ts';
import { removeMessages } from './removal.ts';
import { countRefs } from './blobs.ts';
import type { KeyedSerial } from './serial.ts';

/** How old a search document with no message must be before recalculateUsage removes it (an append in flight writes it before its message). */
export const DEFAULT_ORPHAN_AGE_MS = 10 * 60 * 1000;
/** Hashes recounted per round trip by recalculateUsage. */
const RECOUNT_BATCH = 256;

function toUser(d: UserDoc): UserRecord {
  return {
    id: idOf(d._id),
    username: d.username,
    name: d.name,
    passwordHash: d.passwordHash,
    quota: { storage: d.quota?.storage ?? null, messages: d.quota?.messages ?? null },
    storageUsed: d.storageUsed,
    messagesUsed: d.messagesUsed,
    disabled: d.disabled,
    tags: [...(d.tags ?? [])].sort(),
    created: d.created,
  };
}

function toAddress(d: AddressDoc): AddressRecord {
  return { id: idOf(d._id), userId: idOf(d.user), address: d.address, display: d.display, main: d.main, created: d.created };
}

function encodeCursor(id: ObjectId): string {
  return Buffer.from(JSON.stringify({ after: id.toHexString() })).toString('base64url');
}

function decodeCursor(cursor: string): ObjectId {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    const oid = typeof v.after === 'string' ? objectId(v.after) : null;
    if (oid) return oid;
  } catch {
    // fall through
  }
  throw new RangeError('invalid cursor');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function userFilter(filter: UserFilter): Filter<UserDoc> {
  const and: Filter<UserDoc>[] = [];
  if (filter.query) {
    const pattern = { $regex: escapeRegex(filter.query), $options: 'i' };
    and.push({ $or: [{ username: pattern }, { name: pattern }] });
  }
  const any = [...new Set(filter.tags ?? [])];
  if (any.length > 0) and.push({ tags: { $in: any } });
  const all = [...new Set(filter.requiredTags ?? [])];
  if (all.length > 0) and.push({ tags: { $all: all } });
  return and.length === 0 ? {} : and.length === 1 ? and[0]! : { $and: and };
}

function distinctTags(tags: readonly string[] | undefined): string[] {
  return [...new Set(tags ?? [])].sort();
}

type KeyKind = 'name' | 'skeleton';

/** The document after `$set`ting `set` (as it is when there is nothing to set); null when there is none. */
async function patched<T extends { _id: ObjectId }>(collection: Collection<T>, id: ObjectId | null, set: Record<string, unknown>): Promise<T | null> {
  if (!id) return null;
  const filter = { _id: id } as Filter<T>;
  const doc = Object.keys(set).length === 0 ? await collection.findOne(filter) : await collection.findOneAndUpdate(filter, { $set: set as Partial<T> }, { returnDocument: 'after' });
  return doc as T | null;
}

export interface MongoUsersOptions {
  now: () => number;
  serial: KeyedSerial;
  /** recalculateUsage: search documents with no message older than this are removed (default 10 min). */
  orphanAgeMs?: number;
}

export class MongoUsers implements UsersPort {
  readonly #c: MongoCollections;
  readonly #now: () => number;
  readonly #serial: KeyedSerial;
  readonly #orphanAgeMs: number;

  constructor(c: MongoCollections, options: MongoUsersOptions) {
    this.#c = c;
    this.#now = options.now;
    this.#serial = options.serial;
    this.#orphanAgeMs = options.orphanAgeMs ?? DEFAULT_ORPHAN_AGE_MS;
  }

  async #doc(id: Id): Promise<UserDoc | null> {
    const oid = objectId(id);
    return oid ? this.#c.users.findOne({ _id: oid }) : null;
  }

  /**
   * Takes one claim of a login key for the user: true when the key is free or already the user's, false when another
   * user holds it. Real MongoDB: the upsert itself is refused by the unique index when another user holds the key.
   */
  #claimKey(user: ObjectId, kind: KeyKind, key: string): Promise<boolean> {
    return this.#serial.run(`loginkey\0${kind}\0${key}`, async () => {
      const holder = await this.#c.loginKeys.findOne({ kind, key }, { projection: { user: 1 } });
      if (holder && !holder.user.equals(user)) return false;
      try {
        await this.#c.loginKeys.updateOne({ kind, key, user }, { $inc: { refs: 1 } }, { upsert: true });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    });
  }

  /** Gives back one claim of a key (the address was removed). */
  async #releaseKey(user: ObjectId, kind: KeyKind, key: string): Promise<void> {
    const after = await this.#c.loginKeys.findOneAndUpdate({ kind, key, user }, { $inc: { refs: -1 } }, { returnDocument: 'after' });
    if (after && after.refs <= 0) await this.#c.loginKeys.deleteOne({ _id: after._id, refs: { $lte: 0 } });
  }

  /** `options.id`: the new user's id (storage copy keeps the source's, restore.ts); default a new ObjectId. */
  async create(user: NewUser, options: { id?: ObjectId } = {}): Promise<UserRecord> {
    const doc: UserDoc = {
      _id: options.id ?? new ObjectId(),
      username: user.username,
      name: user.name ?? '',
      passwordHash: user.passwordHash,
      quota: { storage: user.quota?.storage ?? null, messages: user.quota?.messages ?? null },
      storageUsed: 0,
      messagesUsed: 0,
      disabled: false,
      tags: distinctTags(user.tags),
      created: this.#now(),
      changeSeq: 0,
    };
    const nameKey = loginKey(user.username);
    const skeleton = usernameSkeleton(user.username);
    // the user document first (the unique username index), then its keys; a refused key takes it all back
    try {
      await this.#c.users.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) throw new StorageError('ALREADYEXISTS', `username "${user.username}" is taken`);
      throw err;
    }
    let claimed: KeyKind[] = [];
    try {
      if (!(await this.#claimKey(doc._id, 'name', nameKey))) {
        throw new StorageError('ALREADYEXISTS', `username "${user.username}" is taken: it is another user's username or address once case and width are folded`);
      }
      claimed = ['name'];
      if (!(await this.#claimKey(doc._id, 'skeleton', skeleton))) {
        throw new StorageError('ALREADYEXISTS', `username "${user.username}" looks like another user's username (confusable characters)`);
      }
      return toUser(doc);
    } catch (err) {
      if (claimed.includes('name')) await this.#releaseKey(doc._id, 'name', nameKey);
      await this.#c.users.deleteOne({ _id: doc._id });
      throw err;
    }
  }

  async get(id: Id): Promise<UserRecord | null> {
    const d = await this.#doc(id);
    return d ? toUser(d) : null;
  }

  async getByUsername(username: string): Promise<UserRecord | null> {
    const d = await this.#c.users.findOne({ username });
    return d ? toUser(d) : null;
  }

  async getByLoginName(login: string): Promise<UserRecord | null> {
    const key = await this.#c.loginKeys.findOne({ kind: 'name', key: loginKey(login) }, { projection: { user: 1 } });
    const d = key ? await this.#c.users.findOne({ _id: key.user }) : null;
    return d ? toUser(d) : null;
  }

  async list(options: UserFilter & { limit?: number; cursor?: string | null } = {}): Promise<Page<UserRecord>> {
    const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
    const filter = userFilter(options);
    const after = options.cursor ? decodeCursor(options.cursor) : null;
    const query: Filter<UserDoc> = after ? { $and: [filter, { _id: { $gt: after } }] } : filter;
    const docs = await this.#c.users.find(query).sort({ _id: 1 }).limit(limit + 1).toArray();
    const more = docs.length > limit;
    const items = docs.slice(0, limit);
    return { items: items.map(toUser), next: more ? encodeCursor(items[items.length - 1]!._id) : null };
  }

  async count(options: UserFilter = {}): Promise<number> {
    return this.#c.users.countDocuments(userFilter(options));
  }

  async update(id: Id, patch: UserPatch): Promise<UserRecord> {
    const oid = objectId(id);
    const set: Record<string, unknown> = {};
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.passwordHash !== undefined) set.passwordHash = patch.passwordHash;
    if (patch.quota && 'storage' in patch.quota) set['quota.storage'] = patch.quota.storage ?? null;
    if (patch.quota && 'messages' in patch.quota) set['quota.messages'] = patch.quota.messages ?? null;
    if (patch.disabled !== undefined) set.disabled = patch.disabled;
    if (patch.tags !== undefined) set.tags = distinctTags(patch.tags);
    const d = await patched(this.#c.users, oid, set);
    if (!d) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
    return toUser(d);
  }

  /**
   * Recounts usage and every mailbox's counters from the stored messages, and repairs what a crash can leave:
   * messages whose mailbox is gone are removed (with their content, search documents and blob references), search
   * documents and content pieces of messages that never were written are removed, the user's login keys are made
   * those of its username and addresses again, and the reference counts of the blobs the user's messages name are
   * raised to the number of messages naming them. References a crash left too
   * high are not lowered here: an append in flight takes its blob references before its message is written, so a
   * count taken meanwhile is too low to set (a blob freed while a message names it would lose mail).
   *
   * Without a transaction the counters are set from a count, not changed by `$inc`: a message written or removed
   * between the count and the set leaves its counter off until the next recalc (run it when the user is quiet).
   */
  async recalculateUsage(id: Id): Promise<UserRecord> {
    const d = await this.#doc(id);
    if (!d) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
    const user = d._id;
    const c = this.#c;
    const mailboxes = (await c.mailboxes.find({ user }, { projection: { _id: 1 } }).toArray()).map((m) => m._id);

    // messages left by a mailbox (or user) deletion that stopped half way: only of mailboxes that are gone now (one
    // created since the list was read is not), and an ObjectId is never given again, so none of them comes back
    const unlisted = (await c.messages.aggregate<{ _id: ObjectId }>([{ $match: { user, mailbox: { $nin: mailboxes } } }, { $group: { _id: '$mailbox' } }]).toArray()).map((g) => g._id);
    if (unlisted.length > 0) {
      const still = new Set((await c.mailboxes.find({ _id: { $in: unlisted } }, { projection: { _id: 1 } }).toArray()).map((m) => m._id.toHexString()));
      const gone = unlisted.filter((m) => !still.has(m.toHexString()));
      if (gone.length > 0) await removeMessages(c, { user, mailbox: { $in: gone } });
    }
    await this.#removeOrphanSearchDocs(mailboxes);
    await this.#repairLoginKeys(d);
    await this.#recountBlobRefs(user);

    const counted = await c.messages
      .aggregate<{ _id: ObjectId; messages: number; unseen: number; size: number }>([
        { $match: { user } },
        { $group: { _id: '$mailbox', messages: { $sum: 1 }, unseen: { $sum: { $cond: [{ $in: ['\\Seen', { $ifNull: ['$flags', []] }] }, 0, 1] } }, size: { $sum: '$size' } } },
      ])
      .toArray();
    const byMailbox = new Map(counted.map((r) => [r._id.toHexString(), r]));
    if (mailboxes.length > 0) {
      await c.mailboxes.bulkWrite(
        mailboxes.map((m) => {
          const r = byMailbox.get(m.toHexString());
          return { updateOne: { filter: { _id: m }, update: { $set: { messages: r?.messages ?? 0, unseen: r?.unseen ?? 0, size: r?.size ?? 0 } } } };
        }),
        { ordered: false },
      );
    }
    let storageUsed = 0;
    let messagesUsed = 0;
    for (const r of counted) {
      storageUsed += r.size;
      messagesUsed += r.messages;
    }
    const after = await c.users.findOneAndUpdate({ _id: user }, { $set: { storageUsed, messagesUsed } }, { returnDocument: 'after' });
    if (!after) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
    return toUser(after);
  }

  /**
   * Makes the user's login keys those of its username and addresses: missing ones claimed (when still free), claim
   * counts set. Keys no longer backed are dropped, and counts lowered, only when older than the orphan age: an
   * address being added claims its key before the address is written.
   */
  async #repairLoginKeys(d: UserDoc): Promise<void> {
    const c = this.#c;
    const user = d._id;
    const wanted = new Map<string, { kind: KeyKind; key: string; refs: number }>();
    const want = (kind: KeyKind, key: string) => {
      const id = `${kind}\0${key}`;
      const w = wanted.get(id) ?? { kind, key, refs: 0 };
      w.refs++;
      wanted.set(id, w);
    };
    want('name', loginKey(d.username));
    want('skeleton', usernameSkeleton(d.username));
    for (const a of await c.addresses.find({ user }, { projection: { address: 1 } }).toArray()) want('name', loginKey(a.address));
    const settledBefore = this.#now() - this.#orphanAgeMs;
    const held = await c.loginKeys.find({ user }).toArray();
    for (const k of held) {
      const w = wanted.get(`${k.kind}\0${k.key}`);
      const settled = k._id.getTimestamp().getTime() < settledBefore;
      if (!w) {
        if (settled) await c.loginKeys.deleteOne({ _id: k._id });
      } else if (k.refs < w.refs || (k.refs > w.refs && settled)) {
        await c.loginKeys.updateOne({ _id: k._id }, { $set: { refs: w.refs } });
      }
    }
    const missing = [...wanted.values()].filter((w) => !held.some((k) => k.kind === w.kind && k.key === w.key));
    for (const w of missing) {
      if (await this.#claimKey(user, w.kind, w.key)) await c.loginKeys.updateOne({ kind: w.kind, key: w.key, user }, { $set: { refs: w.refs } });
    }
  }

  /** Search documents (and the content pieces of the same message) of these mailboxes whose message never came. */
  async #removeOrphanSearchDocs(mailboxes: ObjectId[]): Promise<void> {
    if (mailboxes.length === 0) return;
    const c = this.#c;
    const old = ObjectId.createFromTime(Math.floor((this.#now() - this.#orphanAgeMs) / 1000));
    const cursor = c.messageSearch.find({ mailbox: { $in: mailboxes }, _id: { $lt: old } }, { projection: { _id: 1 } }).batchSize(RECOUNT_BATCH);
    let batch: ObjectId[] = [];
    const sweep = async () => {
      const present = new Set((await c.messages.find({ _id: { $in: batch } }, { projection: { _id: 1 } }).toArray()).map((m) => m._id.toHexString()));
      const orphans = batch.filter((b) => !present.has(b.toHexString()));
      batch = [];
      if (orphans.length === 0) return;
      await c.messageContent.deleteMany({ message: { $in: orphans } });
      await c.messageSearch.deleteMany({ _id: { $in: orphans } });
    };
    for await (const s of cursor) {
      batch.push(s._id);
      if (batch.length >= RECOUNT_BATCH) await sweep();
    }
    if (batch.length > 0) await sweep();
  }

  /** Raises the reference count of every blob the user's messages name to the number of messages naming it. */
  async #recountBlobRefs(user: ObjectId): Promise<void> {
    const c = this.#c;
    const hashes = (await c.messages.distinct('blobs', { user })) as string[];
    for (let i = 0; i < hashes.length; i += RECOUNT_BATCH) {
      const batch = hashes.slice(i, i + RECOUNT_BATCH);
      const wanted = new Set(batch);
      const counts = new Map<string, number>();
      for await (const m of c.messages.find({ blobs: { $in: batch } }, { projection: { blobs: 1 } })) countRefs([m.blobs.filter((h) => wanted.has(h))], counts);
      await c.blobs.bulkWrite(
        [...counts].map(([hash, n]) => ({ updateOne: { filter: { hash }, update: { $max: { refs: n } } } })),
        { ordered: false },
      );
    }
  }

  /**
   * Removes the user and everything of it. Its mailboxes go first (its messages are unreachable from then on), the
   * user document last, so a crash leaves a user that can be deleted again.
   */
  async delete(id: Id): Promise<void> {
    const d = await this.#doc(id);
    if (!d) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
    const user = d._id;
    const c = this.#c;
    await c.mailboxes.deleteMany({ user });
    await removeMessages(c, { user });
    await c.threadRefs.deleteMany({ user });
    await c.documents.deleteMany({ user });
    await c.changes.deleteMany({ user });
    await c.addresses.deleteMany({ user });
    await c.loginKeys.deleteMany({ user });
    await c.users.deleteOne({ _id: user });
  }

  /** `options.id`: the new address's id (storage copy keeps the source's, restore.ts); default a new ObjectId. */
  async addAddress(userId: Id, address: { address: string; display: string; main?: boolean }, options: { id?: ObjectId } = {}): Promise<AddressRecord> {
    const d = await this.#doc(userId);
    if (!d) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
    const user = d._id;
    const key = loginKey(address.address);
    return this.#serial.run(`address\0${address.address}`, async () => {
      if (await this.#c.addresses.findOne({ address: address.address }, { projection: { _id: 1 } })) {
        throw new StorageError('ALREADYEXISTS', `address ${address.address} is taken`);
      }
      if (!(await this.#claimKey(user, 'name', key))) {
        throw new StorageError('ALREADYEXISTS', `address ${address.address} is taken: it is another user's username or address once case and width are folded`);
      }
      const hasMain = (await this.#c.addresses.findOne({ user, main: true }, { projection: { _id: 1 } })) !== null;
      const doc: AddressDoc = { _id: options.id ?? new ObjectId(), user, address: address.address, display: address.display, main: address.main ?? !hasMain, created: this.#now() };
      try {
        await this.#c.addresses.insertOne(doc);
      } catch (err) {
        await this.#releaseKey(user, 'name', key);
        if (isDuplicateKey(err)) throw new StorageError('ALREADYEXISTS', `address ${address.address} is taken`);
        throw err;
      }
      // the new main address first, then the others lose it: a crash leaves two, never none
      if (doc.main) await this.#onlyMain(doc);
      return toAddress(doc);
    });
  }

  /** The user's other addresses stop being main (after this one became main: a crash leaves two, never none). */
  async #onlyMain(main: AddressDoc): Promise<void> {
    await this.#c.addresses.updateMany({ user: main.user, _id: { $ne: main._id }, main: true }, { $set: { main: false } });
  }

  async removeAddress(addressId: Id): Promise<void> {
    const oid = objectId(addressId);
    const row = oid ? await this.#c.addresses.findOneAndDelete({ _id: oid }) : null;
    if (!row) throw new StorageError('NONEXISTENT', `address ${addressId} does not exist`);
    await this.#releaseKey(row.user, 'name', loginKey(row.address));
    if (row.main) {
      // keep one main address when any remain: the oldest
      const oldest = await this.#c.addresses.find({ user: row.user }).sort({ _id: 1 }).limit(1).next();
      if (oldest) await this.#c.addresses.updateOne({ _id: oldest._id }, { $set: { main: true } });
    }
  }

  async updateAddress(addressId: Id, patch: { display?: string; main?: boolean }): Promise<AddressRecord> {
    const oid = objectId(addressId);
    const set: Partial<AddressDoc> = {};
    if (patch.display !== undefined) set.display = patch.display;
    // there is always exactly one main address: it can be moved, not unset
    if (patch.main === true) set.main = true;
    const row = await patched(this.#c.addresses, oid, set);
    if (!row) throw new StorageError('NONEXISTENT', `address ${addressId} does not exist`);
    if (patch.main === true) await this.#onlyMain(row);
    return toAddress(row);
  }

  async listAddresses(userId: Id): Promise<AddressRecord[]> {
    const user = objectId(userId);
    if (!user) return [];
    return (await this.#c.addresses.find({ user }).sort({ _id: 1 }).toArray()).map(toAddress);
  }

  async resolveAddress(address: string): Promise<AddressRecord | null> {
    const d = await this.#c.addresses.findOne({ address });
    return d ? toAddress(d) : null;
  }
}
