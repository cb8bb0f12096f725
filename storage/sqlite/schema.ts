/**
 * Versioned schema for the embedded backend. `PRAGMA user_version` holds the number of migrations applied; each
 * migration runs in its own transaction together with the version bump. Append new migrations; never edit one that
 * has shipped.
 */
import type { Db } from './driver.ts';
import { loginKey, usernameSkeleton } from '../addresses.ts';
import { contentlessIndexMigration, deferredIndexMigration, searchIndexMigration, sentDayMigration } from './search-schema.ts';

/** A migration: SQL, or a function for what SQL cannot compute (Unicode folding); it may return notes to log. */
export type Migration = string | ((db: Db) => string[] | void);

export const MIGRATIONS: readonly Migration[] = [
  // 1: initial schema
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );

  CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    quota_storage INTEGER,
    quota_messages INTEGER,
    storage_used INTEGER NOT NULL DEFAULT 0,
    messages_used INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
  );

  CREATE TABLE addresses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address TEXT NOT NULL UNIQUE,
    display TEXT NOT NULL,
    main INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
  );
  CREATE INDEX addresses_user ON addresses(user_id);

  CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    special_use TEXT,
    subscribed INTEGER NOT NULL DEFAULT 1,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    message_count INTEGER NOT NULL DEFAULT 0,
    unseen_count INTEGER NOT NULL DEFAULT 0,
    total_size INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    UNIQUE (user_id, path)
  );

  CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    seen INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    message_id TEXT,
    thread_id INTEGER NOT NULL,
    header_date INTEGER NOT NULL,
    subject TEXT NOT NULL,
    envelope TEXT NOT NULL,
    mime TEXT NOT NULL,
    has_attachments INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    segments TEXT NOT NULL,
    inline BLOB NOT NULL,
    inline_codec INTEGER NOT NULL,
    UNIQUE (mailbox_id, uid)
  );
  CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
  CREATE INDEX messages_message_id ON messages(mailbox_id, message_id);
  CREATE INDEX messages_user ON messages(user_id);

  CREATE TABLE message_search (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    text TEXT NOT NULL
  );

  CREATE TABLE message_blobs (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    PRIMARY KEY (message_id, hash)
  ) WITHOUT ROWID;
  CREATE INDEX message_blobs_hash ON message_blobs(hash);

  CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    refcount INTEGER NOT NULL,
    created INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE threads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE
  );
  CREATE INDEX threads_user ON threads(user_id);

  CREATE TABLE thread_refs (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ref TEXT NOT NULL,
    thread_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, ref)
  ) WITHOUT ROWID;

  CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    uid INTEGER,
    flags TEXT,
    path TEXT,
    created INTEGER NOT NULL
  );
  CREATE INDEX changes_user ON changes(user_id, id);
  CREATE INDEX changes_created ON changes(created);
  `,

  // 2: per-user documents (filters, autoreply, application passwords, tokens, settings)
  `
  CREATE TABLE user_documents (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    key TEXT,
    data TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, doc_id)
  );
  CREATE UNIQUE INDEX user_documents_key ON user_documents(kind, key) WHERE key IS NOT NULL;
  `,

  // 3: user tags (GET /users?tags=… / requiredTags=… filter through the tag index)
  `
  CREATE TABLE user_tags (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (user_id, tag)
  );
  CREATE INDEX user_tags_tag ON user_tags(tag, user_id);
  `,

  // 4: thread counters for message listings (messages.threadCounts)
  `
  CREATE INDEX messages_thread ON messages(user_id, thread_id);
  `,

  // 5: login names (usernames and addresses, folded) and username skeletons, unique across users (login_keys)
  (db) => {
    db.exec(`
      CREATE TABLE login_keys (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        refs INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
      ) WITHOUT ROWID;
      CREATE INDEX login_keys_user ON login_keys(user_id);
    `);
    // existing collisions cannot be undone here: the oldest holder keeps the key, the others are reported
    const notes: string[] = [];
    const users = db.all<{ id: number; username: string }>('SELECT id, username FROM users ORDER BY id');
    for (const u of users) {
      if (!claimLoginKey(db, u.id, 'name', loginKey(u.username))) notes.push(`username "${u.username}" (user ${u.id}) folds to another user's username or address`);
      if (!claimLoginKey(db, u.id, 'skeleton', usernameSkeleton(u.username))) notes.push(`username "${u.username}" (user ${u.id}) looks like another user's username`);
    }
    const addresses = db.all<{ user_id: number; address: string }>('SELECT user_id, address FROM addresses ORDER BY id');
    for (const a of addresses) {
      if (!claimLoginKey(db, a.user_id, 'name', loginKey(a.address))) notes.push(`address "${a.address}" (user ${a.user_id}) folds to another user's username or address`);
    }
    return notes;
  },

  // 6: the search index: header text beside the body text, FTS5 trigram index over both (search-schema.ts)
  searchIndexMigration,

  // 7: reading a mailbox index fast: a covering index (messages.indexColumns reads a whole mailbox's UIDs, modseqs,
  // sizes, dates and flags without visiting each wide message row), saved index snapshots (messages.indexSnapshot)
  // and how far the change log was pruned (a snapshot older than that cannot be caught up)
  `
  CREATE INDEX messages_index_columns ON messages(mailbox_id, uid, modseq, size, internal_date, flags);
  CREATE TABLE mailbox_index_snapshots (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid_validity INTEGER NOT NULL,
    cursor INTEGER NOT NULL,
    data BLOB NOT NULL
  );
  INSERT INTO meta (key, value) VALUES ('changes_pruned_through', 0);
  `,

  // 8: the sent date of each message in its search row (search-schema.ts sentDayMigration)
  sentDayMigration,

  // 9: the search indexes written after the acknowledgement, in batches, up to a watermark (search-schema.ts
  // deferredIndexMigration, search-indexer.ts)
  deferredIndexMigration,

  // 10: the search indexes as contentless-delete FTS5 tables: an expunge forgets a row by its id instead of
  // tokenizing its text again (search-schema.ts contentlessIndexMigration)
  contentlessIndexMigration,
  // 11: mailbox index snapshots move to files under <dataDir>/index/ (index-snapshots.ts): a large blob read through
  // its chain of overflow pages took 10-40 ms at 100,000 messages, the file 0.4 ms. The next load of each mailbox
  // reads its index in full once and saves a file.
  `
  DROP TABLE mailbox_index_snapshots;
  `,

  // 12: fewer pages written per append (each index a message or change row is in is one more page per commit):
  // - messages_user (user_id): messages_thread (user_id, thread_id) serves every lookup by user;
  // - messages_modseq (mailbox_id, modseq): nothing reads messages by modseq on a hot path (CONDSTORE answers from
  //   the mailbox index); messages.index({ changedSince }) walks messages_index_columns, which holds the modseq;
  // - changes_created (created): only changes.prune() read it (an admin path, now bounded by the change id);
  // - message_blobs_hash (hash): nothing reads blob references by hash (reference counts live in blobs), and each
  //   insert landed on a random page;
  // - the threads table (an AUTOINCREMENT id allocator and its user index): a new thread is named by the row id of
  //   the message that starts it (ids are never reused). Existing thread ids stay; the message ids continue above
  //   the highest thread id ever handed out, so no new thread id repeats an old one.
  `
  DROP INDEX messages_user;
  DROP INDEX messages_modseq;
  DROP INDEX changes_created;
  DROP INDEX message_blobs_hash;
  INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');
  UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'threads'), 0)) WHERE name = 'messages';
  DROP TABLE threads;
  `,

  // 13: object ids are 24 hex digits at the ports (common.ts toId/rowId), no longer decimal row ids; rows keep
  // their INTEGER ids. Ids kept inside data are rewritten: a filter's target mailbox (`action.mailbox`) in
  // user_documents. (Other stored documents hold no object ids: autoreply, delivery settings, application
  // passwords, tokens; their own ids were 24 hex digits already.)
  hexIdsMigration,

  // 14: QRESYNC (changes.vanished): the expunge entries of a mailbox by modseq (a partial index: only expunges pay
  // for it), and per mailbox the highest modseq of an expunge entry that prune() dropped (older answers are
  // incomplete)
  `
  CREATE INDEX changes_expunged ON changes(mailbox_id, modseq, uid) WHERE type = 'expunge';
  CREATE TABLE vanished_floors (
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    modseq INTEGER NOT NULL
  );
  `,
];

/**
 * Migration 13. A filter's `action.mailbox` is a mailbox id or a path: a decimal id that names one of the user's
 * mailboxes becomes that mailbox's 24-hex id (the id was looked up first, so it wins over a path spelt the same);
 * a value that names no mailbox of the user, by id or path, is left as it is and reported. The conversion is
 * written out here, not taken from common.ts, so the migration stays what it was.
 */
function hexIdsMigration(db: Db): string[] {
  const notes: string[] = [];
  const hex = (n: number) => n.toString(16).padStart(24, '0');
  const filters = db.all<{ user_id: number; doc_id: string; data: string }>("SELECT user_id, doc_id, data FROM user_documents WHERE kind = 'filter' ORDER BY rowid");
  for (const f of filters) {
    let data: { action?: { mailbox?: unknown } } | null;
    try {
      data = JSON.parse(f.data) as { action?: { mailbox?: unknown } } | null;
    } catch {
      notes.push(`filter ${f.doc_id} of user ${hex(Number(f.user_id))} is not JSON; left as it is`);
      continue;
    }
    const target = data?.action?.mailbox;
    if (typeof target !== 'string' || !/^[1-9][0-9]{0,15}$/.test(target)) continue;
    const owned = db.get<{ id: number }>('SELECT id FROM mailboxes WHERE id = ? AND user_id = ?', Number(target), f.user_id);
    if (owned) {
      data!.action!.mailbox = hex(Number(owned.id));
      db.run("UPDATE user_documents SET data = ? WHERE user_id = ? AND kind = 'filter' AND doc_id = ?", JSON.stringify(data), f.user_id, f.doc_id);
    } else if (!db.get('SELECT 1 AS ok FROM mailboxes WHERE user_id = ? AND path = ?', f.user_id, target)) {
      notes.push(`filter ${f.doc_id} of user ${hex(Number(f.user_id))} targets mailbox ${target}, which names no mailbox of that user; left as it is`);
    }
  }
  return notes;
}

/**
 * Claims a login key for a user (the unique index decides, so concurrent claims cannot both win). The same user
 * may hold a key more than once (username `alice@example.com` and that address): counted in `refs`. False when
 * another user holds it.
 */
export function claimLoginKey(db: Db, userId: number, kind: 'name' | 'skeleton', key: string): boolean {
  const { changes } = db.run(
    'INSERT INTO login_keys (kind, key, user_id, refs) VALUES (?, ?, ?, 1) ON CONFLICT (kind, key) DO UPDATE SET refs = refs + 1 WHERE user_id = excluded.user_id',
    kind,
    key,
    userId,
  );
  return changes > 0;
}

/** Gives back one claim of a key (the address was removed). */
export function releaseLoginKey(db: Db, userId: number, kind: 'name' | 'skeleton', key: string): void {
  db.run('UPDATE login_keys SET refs = refs - 1 WHERE kind = ? AND key = ? AND user_id = ?', kind, key, userId);
  db.run('DELETE FROM login_keys WHERE kind = ? AND key = ? AND user_id = ? AND refs <= 0', kind, key, userId);
}

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Applies pending migrations. Refuses to open a database written by a newer version. `warn` gets what a migration
 * reports (e.g. login names that already collide).
 */
export function migrate(db: Db, warn: (message: string) => void = () => {}): void {
  const current = Number(db.get<{ user_version: number }>('PRAGMA user_version')?.user_version ?? 0);
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this server supports (${MIGRATIONS.length})`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      // Re-check under the write lock: another process may have migrated meanwhile.
      const now = Number(db.get<{ user_version: number }>('PRAGMA user_version')?.user_version ?? 0);
      if (now > v) return;
      const migration = MIGRATIONS[v]!;
      const notes = typeof migration === 'string' ? db.exec(migration) : migration(db);
      for (const note of notes ?? []) warn(`migration ${v + 1}: ${note}`);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
  }
}
