/**
 * Migration 12 (fewer pages per append): a version-11 data directory keeps its messages and threads; thread ids are
 * named by their first message, above every id the old threads table handed out; the dropped indexes leave no query on a hot
 * path scanning; changes.prune() finds its bound by change id.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ingestMessage } from '../storage/mime/index.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import type { Db } from '../storage/sqlite/driver.ts';
import { DATABASE_FILE, openSqliteStorage } from '../storage/sqlite/index.ts';
import { toId } from '../storage/sqlite/common.ts';
import { SEARCH_COLUMNS, searchColumnValues } from '../storage/sqlite/search-schema.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { applyMigrationsUpTo } from './helpers/schema-version.ts';
import { withTempDir } from './helpers/temp-dir.ts';

const enc = (s: string) => new TextEncoder().encode(s.replace(/\n/g, '\r\n'));

function mail(id: string, subject: string, inReplyTo?: string): Uint8Array {
  const reply = inReplyTo ? `In-Reply-To: ${inReplyTo}\nReferences: ${inReplyTo}\n` : '';
  return enc(`From: a@example.com\nTo: b@example.com\nSubject: ${subject}\nMessage-ID: ${id}\n${reply}\nbody of ${subject}\n`);
}

/** thread_refs keys as messages.ts writes them (sha256 of the Message-ID without brackets, 32 hex digits). */
const ref = (id: string) => createHash('sha256').update(id.replace(/^<|>$/g, '')).digest('hex').slice(0, 32);

/** A version-11 database: one user, INBOX, two messages of thread 3; the threads table handed out ids up to 40. */
async function writeVersion11(dataDir: string): Promise<void> {
  const db = await openDb(join(dataDir, DATABASE_FILE));
  try {
    applyMigrationsUpTo(db, 11);
    const now = Date.now();
    db.run("INSERT INTO users (id, username, created, messages_used) VALUES (1, 'old', ?, 2)", now);
    db.run("INSERT INTO mailboxes (id, user_id, path, special_use, uid_validity, uid_next, highest_modseq, message_count, unseen_count, created) VALUES (1, 1, 'INBOX', '\\Inbox', 7, 3, 3, 2, 2, ?)", now);
    for (const id of [1, 2, 3, 40]) db.run('INSERT INTO threads (id, user_id) VALUES (?, 1)', id);
    db.run('DELETE FROM threads WHERE id = 40'); // handed out once, its messages gone: never handed out again
    for (const [uid, bytes] of [mail('<root@x>', 'first'), mail('<second@x>', 'second', '<root@x>')].entries()) {
      const m = await ingestMessage(bytes, new MemoryBlobs());
      insertMessage(db, uid + 1, m, now);
      db.run('INSERT INTO thread_refs (user_id, ref, thread_id) VALUES (1, ?, 3)', ref(m.messageId!));
    }
    db.run('INSERT INTO changes (user_id, mailbox_id, type, modseq, uid, created) VALUES (1, 1, ?, 2, 1, ?), (1, 1, ?, 3, 2, ?)', 'exists', now, 'exists', now);
  } finally {
    db.close();
  }
}

function insertMessage(db: Db, uid: number, m: Awaited<ReturnType<typeof ingestMessage>>, now: number): void {
  db.run(
    `INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, seen, internal_date, size, message_id, thread_id, header_date,
       subject, envelope, mime, has_attachments, sha256, segments, inline, inline_codec)
     VALUES (?, 1, 1, ?, ?, '[]', 0, ?, ?, ?, 3, ?, ?, ?, ?, 0, ?, ?, ?, 0)`,
    uid,
    uid,
    uid + 1,
    now,
    m.size,
    m.messageId,
    m.headerDate ?? now,
    m.subject,
    JSON.stringify(m.envelope),
    JSON.stringify(m.mime),
    m.sha256,
    JSON.stringify(m.content.segments),
    m.content.inline,
  );
  db.run(`INSERT INTO message_search (message_id, ${SEARCH_COLUMNS.join(', ')}) VALUES (?${', ?'.repeat(SEARCH_COLUMNS.length)})`, uid, ...searchColumnValues(m.searchHeaders, m.searchText));
}


describe('storage write path: migration 12', () => {
  it('keeps messages and threads of a version-11 directory; a new thread is named by its first message, above every old id', () =>
    withTempDir('wd-write-path-', async (dataDir) => {
      await writeVersion11(dataDir);
      const s = await openSqliteStorage({ dataDir, synchronous: 'normal' });
      try {
        const first = await s.messages.getById(toId(1));
        assert.equal(first?.subject, 'first');
        assert.equal(first?.threadId, toId(3));
        const content = await s.messages.content(toId(1));
        assert.match(new TextDecoder().decode(content!.inline), /Subject: first/);
        assert.deepEqual((await s.search.match(toId(1), [{ field: 'body', value: 'body of second' }]))[0], [2]);

        const append = async (userId: string, mailboxId: string, bytes: Uint8Array) =>
          s.messages.append({ userId, mailboxId, flags: [], internalDate: Date.now(), message: await ingestMessage(bytes, s.blobs) });
        assert.equal((await append(toId(1), toId(1), mail('<third@x>', 'third', '<second@x>'))).threadId, toId(3), 'a reply joins its old thread');
        const fresh = await append(toId(1), toId(1), mail('<new@x>', 'new thread'));
        assert.equal(fresh.threadId, toId(42), 'named by its first message, whose id is above every old thread id');
        assert.equal(fresh.id, toId(42));
        assert.equal((await append(toId(1), toId(1), mail('<newer@x>', 'another'))).threadId, toId(43));
        assert.equal((await append(toId(1), toId(1), mail('<r@x>', 're', '<new@x>'))).threadId, toId(42));
        assert.deepEqual(await s.messages.threadCounts(toId(1), [toId(3), toId(42), toId(43)]), new Map([[toId(3), 3], [toId(42), 2], [toId(43), 1]]));
        const user = await s.users.get(toId(1));
        assert.equal(user?.messagesUsed, 6);

        const bob = await s.users.create({ username: 'bob', passwordHash: null });
        const inbox = await s.mailboxes.create(bob.id, { path: 'INBOX' });
        const bobs = await append(bob.id, inbox.id, mail('<bob@x>', 'bob', '<root@x>'));
        assert.equal(bobs.threadId, toId(45), "another user's thread is not joined");
        assert.equal((await s.messages.threadCounts(toId(1), [toId(45)])).get(toId(45)), 0);

        const names = s.db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE name IN ('threads', 'threads_user', 'messages_user', 'messages_modseq', 'changes_created', 'message_blobs_hash')");
        assert.deepEqual(names, []);
        await s.users.delete(toId(1));
        assert.equal(await s.messages.getById(toId(1)), null);
        assert.equal((await s.messages.threadCounts(bob.id, [toId(45)])).get(toId(45)), 1);
      } finally {
        await s.close();
      }
    }));

  it('answers the lookups the dropped indexes served through other indexes (no scan of the table)', () =>
    withTempDir('wd-write-path-', async (dataDir) => {
      const s = await openSqliteStorage({ dataDir, synchronous: 'normal' });
      try {
        const plan = (sql: string) =>
          s.db
            .all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
            .map((r) => r.detail)
            .join('; ');
        for (const sql of [
          'DELETE FROM messages WHERE user_id = 1',
          'SELECT thread_id, count(*) AS n FROM messages WHERE user_id = 1 AND thread_id IN (SELECT value FROM json_each(\'[1]\')) GROUP BY thread_id',
          'SELECT uid FROM messages WHERE mailbox_id = 1 AND modseq > 5 ORDER BY uid',
          'DELETE FROM changes WHERE id <= 10',
          'SELECT id, created FROM changes WHERE id >= 10 ORDER BY id LIMIT 1',
        ]) {
          assert.doesNotMatch(plan(sql), /SCAN (messages|changes)\b(?! USING)/, sql);
        }
      } finally {
        await s.close();
      }
    }));

  it('prunes the change log up to the last entry created before the bound, found by change id', () =>
    withTempDir('wd-write-path-', async (dataDir) => {
      let clock = 1_000;
      const s = await openSqliteStorage({ dataDir, synchronous: 'normal', now: () => clock });
      try {
        const user = await s.users.create({ username: 'carol', passwordHash: null });
        for (const path of ['A', 'B', 'C', 'D', 'E', 'F', 'G']) {
          await s.mailboxes.create(user.id, { path });
          clock += 1_000;
        }
        const all = await s.changes.since(user.id, 0);
        assert.equal(all.length, 7);
        assert.equal(await s.changes.prune(1_000), 0, 'nothing created before the first entry');
        assert.equal(await s.changes.prune(4_500), 4, 'the entries created at 1000..4000');
        assert.deepEqual((await s.changes.since(user.id, 0)).map((c) => c.path), ['E', 'F', 'G']);
        const pruned = s.db.get<{ value: number }>("SELECT value FROM meta WHERE key = 'changes_pruned_through'");
        assert.equal(Number(pruned?.value), all[3]!.id);
        assert.equal(await s.changes.prune(100_000), 3);
        assert.deepEqual(await s.changes.since(user.id, 0), []);
      } finally {
        await s.close();
      }
    }));
});
