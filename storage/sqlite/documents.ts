/**
 * Per-user JSON documents (UserDocumentsPort): one table keyed by user, kind and document id, with an optional
 * lookup key unique per kind. Rows go with their user (ON DELETE CASCADE).
 */
import { randomBytes } from 'node:crypto';
import { StorageError } from '../ports.ts';
import type { Id, UserDocument, UserDocumentsPort } from '../ports.ts';
import type { Db } from './driver.ts';
import { isUniqueViolation, num, requireRowId, rowId, toId } from './common.ts';

interface Row {
  user_id: number;
  kind: string;
  doc_id: string;
  key: string | null;
  data: string;
  created: number;
  updated: number;
}

function toDocument<T>(r: Row): UserDocument<T> {
  return {
    id: r.doc_id,
    userId: toId(r.user_id),
    kind: r.kind,
    key: r.key,
    data: JSON.parse(r.data) as T,
    created: num(r.created),
    updated: num(r.updated),
  };
}

/** 24 hex characters, the shape of the ids WildDuck's API hands out. */
function newDocumentId(): string {
  return randomBytes(12).toString('hex');
}

export class SqliteDocuments implements UserDocumentsPort {
  #db: Db;
  #now: () => number;

  constructor(db: Db, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async list<T>(userId: Id, kind: string): Promise<UserDocument<T>[]> {
    const n = rowId(userId);
    if (n === null) return [];
    return this.#db.all<Row>('SELECT * FROM user_documents WHERE user_id = ? AND kind = ? ORDER BY created, rowid', n, kind).map((r) => toDocument<T>(r));
  }

  async get<T>(userId: Id, kind: string, id: Id): Promise<UserDocument<T> | null> {
    const n = rowId(userId);
    if (n === null) return null;
    const r = this.#db.get<Row>('SELECT * FROM user_documents WHERE user_id = ? AND kind = ? AND doc_id = ?', n, kind, id);
    return r ? toDocument<T>(r) : null;
  }

  async put<T>(userId: Id, kind: string, data: T, options: { id?: Id; key?: string | null } = {}): Promise<UserDocument<T>> {
    const n = requireRowId(userId, 'user');
    const id = options.id ?? newDocumentId();
    const now = this.#now();
    const json = JSON.stringify(data);
    try {
      return this.#db.transaction(() => {
        if (!this.#db.get('SELECT 1 AS ok FROM users WHERE id = ?', n)) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
        this.#db.run(
          `INSERT INTO user_documents (user_id, kind, doc_id, key, data, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (user_id, kind, doc_id) DO UPDATE SET key = excluded.key, data = excluded.data, updated = excluded.updated`,
          n,
          kind,
          id,
          options.key ?? null,
          json,
          now,
          now,
        );
        return toDocument<T>(this.#db.get<Row>('SELECT * FROM user_documents WHERE user_id = ? AND kind = ? AND doc_id = ?', n, kind, id)!);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StorageError('ALREADYEXISTS', `${kind} key is taken`);
      throw err;
    }
  }

  async delete(userId: Id, kind: string, id: Id): Promise<boolean> {
    const n = rowId(userId);
    if (n === null) return false;
    return this.#db.run('DELETE FROM user_documents WHERE user_id = ? AND kind = ? AND doc_id = ?', n, kind, id).changes > 0;
  }

  async listAll(userId: Id): Promise<UserDocument[]> {
    const n = rowId(userId);
    if (n === null) return [];
    return this.#db.all<Row>('SELECT * FROM user_documents WHERE user_id = ? ORDER BY kind, created, rowid', n).map((r) => toDocument(r));
  }

  async findByKey<T>(kind: string, key: string): Promise<UserDocument<T> | null> {
    const r = this.#db.get<Row>('SELECT * FROM user_documents WHERE kind = ? AND key = ?', kind, key);
    return r ? toDocument<T>(r) : null;
  }
}
