/**
 * Expunged messages leave the FTS indexes after the EXPUNGE's transaction (search-schema.ts migration 10,
 * search-indexer.ts): the deleted search row only queues its id, and the indexer forgets the queue in batches.
 * Searches stay correct meanwhile: an expunged message never matches (before or after the indexer ran, and after a
 * restart with the queue still full), a message whose flags changed or that moved still does, in its new mailbox.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/index.ts';
import { FORGET_TABLE } from '../storage/sqlite/search-schema.ts';
import type { Id } from '../storage/ports.ts';
import { fakeMessage } from './helpers/fake-message.ts';

/** Every term answered from the index (never a scan), the indexer left to the test (`flush()`). */
const open = (dataDir: string) => openSqliteStorage({ dataDir, synchronous: 'normal', search: { minIndexHits: 1e9 }, searchIndexer: { delayMs: 3_600_000 } });

const TERMS = [
  { field: 'subject', value: 'zeppelin' },
  { field: 'from', value: 'pilot@' },
  { field: 'body', value: 'has landed' },
  { field: 'text', value: 'subject: zeppelin' },
] as const;

async function matches(s: SqliteStorage, mailboxId: Id): Promise<number[]> {
  const hits = await s.search.match(mailboxId, TERMS);
  for (const h of hits) assert.deepEqual(h, hits[0], 'every field agrees');
  return hits[0]!;
}

const queued = (s: SqliteStorage) => Number(s.db.get<{ n: number }>(`SELECT count(*) AS n FROM ${FORGET_TABLE}`)!.n);

function assertIndexesSound(s: SqliteStorage): void {
  for (const table of ['message_fts_fields', 'message_fts_text']) s.db.run(`INSERT INTO ${table} (${table}, rank) VALUES ('integrity-check', 1)`); // throws when corrupt
}

async function fill(s: SqliteStorage, count: number) {
  const user = await s.users.create({ username: 'forget', passwordHash: null });
  const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
  const archive = await s.mailboxes.create(user.id, { path: 'Archive' });
  for (let i = 1; i <= count; i++) {
    const message = await fakeMessage(s.blobs, `From: Pilot <pilot@example.org>\r\nSubject: Zeppelin ${i}\r\n\r\nit has landed\r\n`);
    await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
  }
  s.searchIndexer.flush();
  return { inbox, archive };
}

describe('expunged messages leave the search indexes after the expunge', () => {
  it('never answers an expunged message, before and after the indexer forgets it; flag changes and moves still match', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-forget-'));
    const s = await open(dataDir);
    try {
      const { inbox, archive } = await fill(s, 6);
      assert.deepEqual(await matches(s, inbox.id), [1, 2, 3, 4, 5, 6]);
      await s.messages.setFlags(inbox.id, [2, 3], { action: 'add', flags: ['\\Deleted', '\\Seen'] });
      await s.messages.expunge(inbox.id, [2]);
      await s.messages.move(inbox.id, [4], archive.id);
      assert.equal(queued(s), 1, 'the expunge queued its id; the move queued nothing');
      assert.deepEqual(await matches(s, inbox.id), [1, 3, 5, 6], 'expunged: gone before the indexer ran');
      assert.deepEqual(await matches(s, archive.id), [1], 'the moved message matches in its new mailbox');

      s.searchIndexer.flush();
      assert.equal(queued(s), 0);
      assertIndexesSound(s);
      assert.deepEqual(await matches(s, inbox.id), [1, 3, 5, 6]);
      assert.deepEqual(await matches(s, archive.id), [1]);

      // a copy indexed, then expunged with its original: both forgotten; the remaining ones still match
      await s.messages.copy(inbox.id, [5], archive.id);
      s.searchIndexer.flush();
      await s.messages.expunge(inbox.id, [5, 6]);
      assert.equal(queued(s), 2);
      assert.deepEqual(await matches(s, inbox.id), [1, 3]);
      assert.deepEqual(await matches(s, archive.id), [1, 2]);
      s.searchIndexer.flush();
      assert.equal(queued(s), 0);
      assertIndexesSound(s);
      assert.deepEqual(await matches(s, inbox.id), [1, 3]);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('an expunge of a message not yet indexed queues nothing, and it never reaches the index', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-forget-'));
    const s = await open(dataDir);
    try {
      const { inbox } = await fill(s, 2);
      const message = await fakeMessage(s.blobs, 'From: pilot@example.org\r\nSubject: Zeppelin late\r\n\r\nit has landed\r\n');
      await s.messages.append({ userId: inbox.userId, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
      await s.messages.expunge(inbox.id, [3]);
      assert.equal(queued(s), 0);
      s.searchIndexer.flush();
      assertIndexesSound(s);
      assert.deepEqual(await matches(s, inbox.id), [1, 2]);
      const indexed = s.db.get<{ n: number }>("SELECT count(*) AS n FROM message_fts_fields WHERE message_fts_fields MATCH '\"zeppelin\"'")!.n;
      assert.equal(Number(indexed), 2, 'the expunged pending row was never indexed');
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('after a restart with forgets still queued, searches stay correct and the next process forgets them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-forget-'));
    const copyDir = mkdtempSync(join(tmpdir(), 'wd-search-forget-copy-'));
    const s = await open(dataDir);
    let restarted: SqliteStorage | null = null;
    try {
      const { inbox } = await fill(s, 5);
      await s.messages.expunge(inbox.id, [1, 4]);
      assert.equal(queued(s), 2);
      // what a crash leaves: the committed files as they are now, the queue not yet worked off
      cpSync(dataDir, copyDir, { recursive: true });
      restarted = await open(copyDir);
      assert.equal(queued(restarted), 2);
      assert.deepEqual(await matches(restarted, inbox.id), [2, 3, 5]);
      restarted.searchIndexer.flush();
      assert.equal(queued(restarted), 0);
      assertIndexesSound(restarted);
      assert.deepEqual(await matches(restarted, inbox.id), [2, 3, 5]);
    } finally {
      await restarted?.close();
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(copyDir, { recursive: true, force: true });
    }
  });
});
