/** Users and their addresses. Usernames and addresses arrive normalized; uniqueness is enforced by the schema. */
import { Buffer } from 'node:buffer';
import { StorageError } from '../ports.ts';
import type { AddressRecord, Id, NewUser, Page, UserFilter, UserPatch, UserRecord, UsersPort } from '../ports.ts';
import type { Db, SqlParam } from './driver.ts';
import type { SqliteBlobs } from './blobs.ts';
import { bool, isUniqueViolation, num, rowId, toId } from './common.ts';
import { claimLoginKey, releaseLoginKey } from './schema.ts';
import { loginKey, usernameSkeleton } from '../addresses.ts';

interface UserRow {
  id: number;
  username: string;
  name: string;
  password_hash: string | null;
  quota_storage: number | null;
  quota_messages: number | null;
  storage_used: number;
  messages_used: number;
  disabled: number;
  created: number;
}

interface AddressRow {
  id: number;
  user_id: number;
  address: string;
  display: string;
  main: number;
  created: number;
}

function toUser(r: UserRow, tags: string[]): UserRecord {
  return {
    id: toId(r.id),
    username: r.username,
    name: r.name,
    passwordHash: r.password_hash,
    quota: {
      storage: r.quota_storage === null ? null : num(r.quota_storage),
      messages: r.quota_messages === null ? null : num(r.quota_messages),
    },
    storageUsed: num(r.storage_used),
    messagesUsed: num(r.messages_used),
    disabled: bool(r.disabled),
    tags,
    created: num(r.created),
  };
}

function toAddress(r: AddressRow): AddressRecord {
  return {
    id: toId(r.id),
    userId: toId(r.user_id),
    address: r.address,
    display: r.display,
    main: bool(r.main),
    created: num(r.created),
  };
}

function encodeCursor(id: number): string {
  return Buffer.from(JSON.stringify({ after: id })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof v.after === 'number' && Number.isSafeInteger(v.after)) return v.after;
  } catch {
    // fall through
  }
  throw new RangeError('invalid cursor');
}

function likePattern(query: string): string {
  return `%${query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** SQL conditions (joined with AND) and their parameters for a UserFilter; tag lookups use user_tags(tag). */
function filterSql(filter: UserFilter): { where: string[]; params: SqlParam[] } {
  const where: string[] = [];
  const params: SqlParam[] = [];
  if (filter.query) {
    where.push(`(lower(username) LIKE ? ESCAPE '\\' OR lower(name) LIKE ? ESCAPE '\\')`);
    params.push(likePattern(filter.query), likePattern(filter.query));
  }
  const any = [...new Set(filter.tags ?? [])];
  if (any.length > 0) {
    where.push(`id IN (SELECT user_id FROM user_tags WHERE tag IN (${any.map(() => '?').join(', ')}))`);
    params.push(...any);
  }
  const all = [...new Set(filter.requiredTags ?? [])];
  if (all.length > 0) {
    where.push(`id IN (SELECT user_id FROM user_tags WHERE tag IN (${all.map(() => '?').join(', ')}) GROUP BY user_id HAVING count(*) = ?)`);
    params.push(...all, all.length);
  }
  return { where, params };
}

export class SqliteUsers implements UsersPort {
  #db: Db;
  #blobs: SqliteBlobs;
  #now: () => number;

  constructor(db: Db, blobs: SqliteBlobs, now: () => number) {
    this.#db = db;
    this.#blobs = blobs;
    this.#now = now;
  }

  #row(id: number): UserRow | undefined {
    return this.#db.get<UserRow>('SELECT * FROM users WHERE id = ?', id);
  }

  #user(r: UserRow): UserRecord {
    const tags = this.#db.all<{ tag: string }>('SELECT tag FROM user_tags WHERE user_id = ? ORDER BY tag', r.id).map((t) => t.tag);
    return toUser(r, tags);
  }

  /** Replaces the user's tags (inside the caller's transaction). */
  #setTags(id: number, tags: readonly string[]): void {
    this.#db.run('DELETE FROM user_tags WHERE user_id = ?', id);
    for (const tag of new Set(tags)) this.#db.run('INSERT INTO user_tags (user_id, tag) VALUES (?, ?)', id, tag);
  }

  async create(user: NewUser): Promise<UserRecord> {
    const db = this.#db;
    try {
      return db.transaction(() => {
        const { lastInsertRowid } = db.run(
          'INSERT INTO users (username, name, password_hash, quota_storage, quota_messages, created) VALUES (?, ?, ?, ?, ?, ?)',
          user.username,
          user.name ?? '',
          user.passwordHash,
          user.quota?.storage ?? null,
          user.quota?.messages ?? null,
          this.#now(),
        );
        const id = num(lastInsertRowid);
        if (!claimLoginKey(db, id, 'name', loginKey(user.username))) {
          throw new StorageError('ALREADYEXISTS', `username "${user.username}" is taken: it is another user's username or address once case and width are folded`);
        }
        if (!claimLoginKey(db, id, 'skeleton', usernameSkeleton(user.username))) {
          throw new StorageError('ALREADYEXISTS', `username "${user.username}" looks like another user's username (confusable characters)`);
        }
        if (user.tags?.length) this.#setTags(id, user.tags);
        return this.#user(this.#row(lastInsertRowid)!);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StorageError('ALREADYEXISTS', `username "${user.username}" is taken`);
      throw err;
    }
  }

  async get(id: Id): Promise<UserRecord | null> {
    const n = rowId(id);
    const r = n === null ? undefined : this.#row(n);
    return r ? this.#user(r) : null;
  }

  async getByUsername(username: string): Promise<UserRecord | null> {
    const r = this.#db.get<UserRow>('SELECT * FROM users WHERE username = ?', username);
    return r ? this.#user(r) : null;
  }

  async getByLoginName(login: string): Promise<UserRecord | null> {
    const key = this.#db.get<{ user_id: number }>("SELECT user_id FROM login_keys WHERE kind = 'name' AND key = ?", loginKey(login));
    const r = key ? this.#row(key.user_id) : undefined;
    return r ? this.#user(r) : null;
  }

  async list(options: UserFilter & { limit?: number; cursor?: string | null } = {}): Promise<Page<UserRecord>> {
    const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
    const after = options.cursor ? decodeCursor(options.cursor) : 0;
    const { where, params } = filterSql(options);
    const rows = this.#db.all<UserRow>(
      `SELECT * FROM users WHERE ${['id > ?', ...where].join(' AND ')} ORDER BY id LIMIT ?`,
      after,
      ...params,
      limit + 1,
    );
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map((r) => this.#user(r));
    return { items, next: more ? encodeCursor(num(rows[limit - 1].id)) : null };
  }

  async count(options: UserFilter = {}): Promise<number> {
    const { where, params } = filterSql(options);
    const row = this.#db.get<{ n: number }>(`SELECT count(*) AS n FROM users${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`, ...params);
    return num(row?.n ?? 0);
  }

  async update(id: Id, patch: UserPatch): Promise<UserRecord> {
    const n = rowId(id);
    const db = this.#db;
    return db.transaction(() => {
      const cur = n === null ? undefined : this.#row(n);
      if (!cur) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
      db.run(
        'UPDATE users SET name = ?, password_hash = ?, quota_storage = ?, quota_messages = ?, disabled = ? WHERE id = ?',
        patch.name ?? cur.name,
        patch.passwordHash !== undefined ? patch.passwordHash : cur.password_hash,
        patch.quota && 'storage' in patch.quota ? (patch.quota.storage ?? null) : cur.quota_storage,
        patch.quota && 'messages' in patch.quota ? (patch.quota.messages ?? null) : cur.quota_messages,
        patch.disabled !== undefined ? patch.disabled : bool(cur.disabled),
        n,
      );
      if (patch.tags !== undefined) this.#setTags(n!, patch.tags);
      return this.#user(this.#row(n!)!);
    });
  }

  async recalculateUsage(id: Id): Promise<UserRecord> {
    const n = rowId(id);
    const db = this.#db;
    return db.transaction(() => {
      if (n === null || !this.#row(n)) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
      db.run(
        `UPDATE mailboxes SET
           message_count = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id),
           unseen_count = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND m.seen = 0),
           total_size = (SELECT coalesce(sum(m.size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id)
         WHERE user_id = ?`,
        n,
      );
      db.run(
        `UPDATE users SET
           storage_used = (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = users.id),
           messages_used = (SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = users.id)
         WHERE id = ?`,
        n,
      );
      return this.#user(this.#row(n!)!);
    });
  }

  async delete(id: Id): Promise<void> {
    const n = rowId(id);
    const db = this.#db;
    db.transaction(() => {
      if (n === null || !this.#row(n)) throw new StorageError('NONEXISTENT', `user ${id} does not exist`);
      this.#blobs.releaseRefs(this.#blobs.refsOf('m.user_id = ?', n));
      // messages cascade from mailboxes; message_search and message_blobs cascade from messages
      db.run('DELETE FROM mailboxes WHERE user_id = ?', n);
      db.run('DELETE FROM messages WHERE user_id = ?', n); // none left unless a mailbox row was missing
      db.run('DELETE FROM changes WHERE user_id = ?', n);
      db.run('DELETE FROM thread_refs WHERE user_id = ?', n);
      db.run('DELETE FROM addresses WHERE user_id = ?', n);
      db.run('DELETE FROM login_keys WHERE user_id = ?', n);
      db.run('DELETE FROM users WHERE id = ?', n);
    });
  }

  async addAddress(userId: Id, address: { address: string; display: string; main?: boolean }): Promise<AddressRecord> {
    const n = rowId(userId);
    const db = this.#db;
    try {
      return db.transaction(() => {
        if (n === null || !this.#row(n)) throw new StorageError('NONEXISTENT', `user ${userId} does not exist`);
        const hasMain = db.get('SELECT 1 AS x FROM addresses WHERE user_id = ? AND main = 1', n) !== undefined;
        const main = address.main ?? !hasMain;
        if (main) db.run('UPDATE addresses SET main = 0 WHERE user_id = ?', n);
        if (!claimLoginKey(db, n, 'name', loginKey(address.address))) {
          throw new StorageError('ALREADYEXISTS', `address ${address.address} is taken: it is another user's username or address once case and width are folded`);
        }
        const { lastInsertRowid } = db.run(
          'INSERT INTO addresses (user_id, address, display, main, created) VALUES (?, ?, ?, ?, ?)',
          n,
          address.address,
          address.display,
          main,
          this.#now(),
        );
        return toAddress(db.get<AddressRow>('SELECT * FROM addresses WHERE id = ?', lastInsertRowid)!);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StorageError('ALREADYEXISTS', `address ${address.address} is taken`);
      throw err;
    }
  }

  async removeAddress(addressId: Id): Promise<void> {
    const n = rowId(addressId);
    const db = this.#db;
    db.transaction(() => {
      const row = n === null ? undefined : db.get<AddressRow>('SELECT * FROM addresses WHERE id = ?', n);
      if (!row) throw new StorageError('NONEXISTENT', `address ${addressId} does not exist`);
      db.run('DELETE FROM addresses WHERE id = ?', n);
      releaseLoginKey(db, row.user_id, 'name', loginKey(row.address));
      if (bool(row.main)) {
        // keep one main address when any remain: the oldest
        db.run(
          'UPDATE addresses SET main = 1 WHERE id = (SELECT id FROM addresses WHERE user_id = ? ORDER BY id LIMIT 1)',
          row.user_id,
        );
      }
    });
  }

  async updateAddress(addressId: Id, patch: { display?: string; main?: boolean }): Promise<AddressRecord> {
    const n = rowId(addressId);
    const db = this.#db;
    return db.transaction(() => {
      const row = n === null ? undefined : db.get<AddressRow>('SELECT * FROM addresses WHERE id = ?', n);
      if (!row) throw new StorageError('NONEXISTENT', `address ${addressId} does not exist`);
      if (patch.display !== undefined) db.run('UPDATE addresses SET display = ? WHERE id = ?', patch.display, n);
      // there is always exactly one main address: it can be moved, not unset
      if (patch.main === true) {
        db.run('UPDATE addresses SET main = 0 WHERE user_id = ?', row.user_id);
        db.run('UPDATE addresses SET main = 1 WHERE id = ?', n);
      }
      return toAddress(db.get<AddressRow>('SELECT * FROM addresses WHERE id = ?', n)!);
    });
  }

  async listAddresses(userId: Id): Promise<AddressRecord[]> {
    const n = rowId(userId);
    if (n === null) return [];
    return this.#db.all<AddressRow>('SELECT * FROM addresses WHERE user_id = ? ORDER BY id', n).map(toAddress);
  }

  async resolveAddress(address: string): Promise<AddressRecord | null> {
    const r = this.#db.get<AddressRow>('SELECT * FROM addresses WHERE address = ?', address);
    return r ? toAddress(r) : null;
  }
}
