/**
 * Per-user JSON documents on MongoDB (UserDocumentsPort), mirroring storage/sqlite/documents.ts: one collection keyed
 * by user, kind and document id (`docId`: 'default' for singletons, else 24 hex), with an optional lookup key unique
 * per kind. The data is kept as JSON text, exactly as the embedded backend keeps it: what a caller stores comes back
 * the same on both (no BSON dates, no field names MongoDB treats specially). Documents go with their user
 * (users.ts delete).
 */
import { ObjectId } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { Id, UserDocument, UserDocumentsPort } from '../ports.ts';
import type { DocumentDoc, MongoCollections } from './collections.ts';
import { isDuplicateKey } from './errors.ts';
import { idOf, objectId, requireObjectId } from './ids.ts';
import type { KeyedSerial } from './serial.ts';

function toDocument<T>(d: DocumentDoc): UserDocument<T> {
  return {
    id: d.docId,
    userId: idOf(d.user),
    kind: d.kind,
    key: d.key ?? null,
    data: JSON.parse(d.data as string) as T,
    created: d.created,
    updated: d.updated,
  };
}

export class MongoDocuments implements UserDocumentsPort {
  readonly #c: MongoCollections;
  readonly #now: () => number;
  readonly #serial: KeyedSerial;

  constructor(c: MongoCollections, options: { now: () => number; serial: KeyedSerial }) {
    this.#c = c;
    this.#now = options.now;
    this.#serial = options.serial;
  }

  async list<T>(userId: Id, kind: string): Promise<UserDocument<T>[]> {
    const user = objectId(userId);
    if (!user) return [];
    return (await this.#c.documents.find({ user, kind }).sort({ created: 1, _id: 1 }).toArray()).map((d) => toDocument<T>(d));
  }

  async listAll(userId: Id): Promise<UserDocument[]> {
    const user = objectId(userId);
    if (!user) return [];
    return (await this.#c.documents.find({ user }).sort({ kind: 1, created: 1, _id: 1 }).toArray()).map((d) => toDocument(d));
  }

  async get<T>(userId: Id, kind: string, id: Id): Promise<UserDocument<T> | null> {
    const user = objectId(userId);
    if (!user) return null;
    const d = await this.#c.documents.findOne({ user, kind, docId: id });
    return d ? toDocument<T>(d) : null;
  }

  async put<T>(userId: Id, kind: string, data: T, options: { id?: Id; key?: string | null } = {}): Promise<UserDocument<T>> {
    const user = requireObjectId(userId, 'user');
    const docId = options.id ?? new ObjectId().toHexString();
    const key = options.key ?? null;
    const json = JSON.stringify(data);
    const write = async (): Promise<UserDocument<T>> => {
      if (!(await this.#c.users.findOne({ _id: user }, { projection: { _id: 1 } }))) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
      if (key !== null) {
        const holder = await this.#c.documents.findOne({ kind, key }, { projection: { user: 1, docId: 1 } });
        if (holder && !(holder.user.equals(user) && holder.docId === docId)) throw new StorageError('ALREADYEXISTS', `${kind} key is taken`);
      }
      const now = this.#now();
      for (let attempt = 0; ; attempt++) {
        try {
          const d = await this.#c.documents.findOneAndUpdate(
            { user, kind, docId },
            { $set: { key, data: json, updated: now }, $setOnInsert: { created: now } },
            { upsert: true, returnDocument: 'after' },
          );
          return toDocument<T>(d!);
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          // two upserts of one new id: the loser finds the winner's document the second time
          const keyTaken = key !== null && (await this.#c.documents.findOne({ kind, key, $nor: [{ user, docId }] }, { projection: { _id: 1 } }));
          if (keyTaken || attempt > 0) throw new StorageError('ALREADYEXISTS', `${kind} key is taken`);
        }
      }
    };
    return key === null ? write() : this.#serial.run(`document\0${kind}\0${key}`, write);
  }

  async delete(userId: Id, kind: string, id: Id): Promise<boolean> {
    const user = objectId(userId);
    if (!user) return false;
    return (await this.#c.documents.deleteOne({ user, kind, docId: id })).deletedCount > 0;
  }

  async findByKey<T>(kind: string, key: string): Promise<UserDocument<T> | null> {
    const d = await this.#c.documents.findOne({ kind, key });
    return d ? toDocument<T>(d) : null;
  }
}
