/**
 * storage/sqlite/maintenance.ts: with `backgroundWork: 'others'` a process's writes schedule no index batch and
 * SQLite's autocheckpoint is only a safety net; a process with `backgroundWork: 'here'` indexes the rows another
 * process wrote, forgets the rows it expunged, and checkpoints once the WAL holds the configured pages. Search finds
 * every stored message before and after.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ingestMessage } from '../storage/mime/index.ts';
import { DATABASE_FILE, openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SqliteStorage } from '../storage/sqlite/index.ts';
import { rowId } from '../storage/sqlite/common.ts';
import { WalBacklog } from '../storage/sqlite/maintenance.ts';
import { indexedThrough } from '../storage/sqlite/search-indexer.ts';
import { withTempDir } from './helpers/temp-dir.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mail(i: number): Uint8Array {
  const body = `Message ${i} about a zeppelin${i}x over the harbour.\r\n`.repeat(40);
  return new TextEncoder().encode(`From: a@example.com\r\nTo: b@example.com\r\nSubject: note ${i}\r\nMessage-ID: <m${i}@x>\r\n\r\n${body}`);
}


describe('storage maintenance process (backgroundWork)', () => {
  it('indexes and forgets the rows another process writes, and checkpoints at the configured pages', () =>
    withTempDir('wd-maintenance-', async (dataDir) => {
      // the writer would index right away if it scheduled batches at all
      const writer = await openSqliteStorage({ dataDir, backgroundWork: 'others', walAutocheckpointPages: 500, searchIndexer: { delayMs: 0 } });
      const backlog = new WalBacklog(join(dataDir, DATABASE_FILE));
      let maintainer: SqliteStorage | null = null;
      try {
        assert.equal(writer.maintenance, null);
        assert.equal(Number(writer.db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')?.wal_autocheckpoint), 500);
        const user = await writer.users.create({ username: 'alice', passwordHash: null });
        const inbox = await writer.mailboxes.create(user.id, { path: 'INBOX' });
        const uids: number[] = [];
        for (let i = 1; i <= 20; i++) {
          const message = await ingestMessage(mail(i), writer.blobs);
          uids.push((await writer.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })).uid);
        }
        await sleep(50);
        assert.equal(indexedThrough(writer.db), 0, "the writer's appends scheduled no index batch");
        assert.ok(writer.searchIndexer.pending());
        const find = async (s: SqliteStorage, needle: string) => (await s.search.match(inbox.id, [{ field: 'body', value: needle }]))[0];
        assert.deepEqual(await find(writer, 'zeppelin7x'), [7], 'a pending row is found by its stored text');
        assert.ok((backlog.read()?.backlog ?? 0) >= 50, 'the WAL holds more than half the pages the maintainer was configured with');

        // its first round starts at once; the next ones only when told to here (runOnce)
        maintainer = await openSqliteStorage({ dataDir, backgroundWork: 'here', walAutocheckpointPages: 100, searchIndexer: { delayMs: 3_600_000 } });
        await maintainer.maintenance!.runOnce();
        assert.equal(indexedThrough(writer.db), 20);
        assert.equal(writer.searchIndexer.pending(), false);
        assert.ok(maintainer.maintenance!.checkpoints >= 1);
        assert.equal(backlog.read()?.backlog, 0, 'every frame copied into the database file');
        assert.deepEqual(await find(writer, 'zeppelin7x'), [7], 'found through the index');
        await sleep(20); // the first round, should it still be between two batches, ends: nothing is left
        const checkpoints = maintainer.maintenance!.checkpoints;

        await writer.messages.expunge(inbox.id, [uids[6]!]);
        assert.ok(writer.searchIndexer.pending(), 'the expunged row waits to leave the indexes');
        await maintainer.maintenance!.runOnce();
        assert.equal(writer.searchIndexer.pending(), false);
        assert.equal(maintainer.maintenance!.checkpoints, checkpoints, 'a few pages: no checkpoint yet');
        assert.deepEqual(await find(writer, 'zeppelin7x'), []);
        assert.deepEqual(await find(maintainer, 'zeppelin8x'), [8]);
      } finally {
        backlog.close();
        await writer.close();
        await maintainer?.close();
      }
    }));

  /** A maintenance process with `options` beside a writing process with one mailbox; `append(i)` stores mail(i), its id. */
  async function besideWriter(dataDir: string, options: { maintenanceQuietMs: number; maintenanceMaxDeferMs: number }) {
    const polling = await openSqliteStorage({ dataDir, backgroundWork: 'here', ...options, searchIndexer: { delayMs: 10 } });
    const other = await openSqliteStorage({ dataDir, backgroundWork: 'others' });
    const user = await other.users.create({ username: 'carol', passwordHash: null });
    const inbox = await other.mailboxes.create(user.id, { path: 'INBOX' });
    const append = async (i: number) => {
      const message = await ingestMessage(mail(i), other.blobs);
      return rowId((await other.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })).id)!;
    };
    const close = async () => {
      await other.close();
      await polling.close();
    };
    return { polling, other, inbox, append, close };
  }

  it('holds its index batches back while another process commits, and indexes once it is quiet', () =>
    withTempDir('wd-maintenance-', async (dataDir) => {
      // quiet: no commit for 1.5 s; never deferred past a minute (the next test covers the bound)
      const { polling, other, inbox, append, close } = await besideWriter(dataDir, { maintenanceQuietMs: 1_500, maintenanceMaxDeferMs: 60_000 });
      try {
        for (let i = 1; i <= 8; i++) {
          await append(i);
          await sleep(20);
        }
        assert.equal(indexedThrough(other.db), 0, 'no batch while the other process kept committing');
        assert.ok(polling.maintenance!.deferrals > 0, 'the maintenance process found the work and waited');
        assert.deepEqual(await other.search.match(inbox.id, [{ field: 'body', value: 'zeppelin5x' }]).then((r) => r[0]), [5], 'found by its text meanwhile');
        for (let i = 0; i < 3000 && indexedThrough(other.db) < 8; i++) await sleep(10);
        assert.equal(indexedThrough(other.db), 8, 'indexed once the writers were quiet');
      } finally {
        await close();
      }
    }));

  it('indexes under a steady stream of commits once the work waited maintenanceMaxDeferMs', () =>
    withTempDir('wd-maintenance-', async (dataDir) => {
      // never quiet for an hour: only the bound lets a batch in
      const { other, append, close } = await besideWriter(dataDir, { maintenanceQuietMs: 3_600_000, maintenanceMaxDeferMs: 200 });
      try {
        const id = await append(1);
        for (let i = 2; i < 3000 && indexedThrough(other.db) < id; i++) {
          await append(i);
          await sleep(10);
        }
        assert.ok(indexedThrough(other.db) >= id, 'indexed while the other process kept committing');
      } finally {
        await close();
      }
    }));

  it('runs on its own timers, polling for rows to index and for the WAL to checkpoint', () =>
    withTempDir('wd-maintenance-', async (dataDir) => {
      // batches at once (maintenanceQuietMs 0): the checkpoint after them then finds the index's pages too
      const polling = await openSqliteStorage({ dataDir, backgroundWork: 'here', walAutocheckpointPages: 40, maintenanceQuietMs: 0, searchIndexer: { delayMs: 10 } });
      const other = await openSqliteStorage({ dataDir, backgroundWork: 'others', walAutocheckpointPages: 1000 });
      const backlog = new WalBacklog(join(dataDir, DATABASE_FILE));
      try {
        const user = await other.users.create({ username: 'bob', passwordHash: null });
        const inbox = await other.mailboxes.create(user.id, { path: 'INBOX' });
        const message = await ingestMessage(mail(1), other.blobs);
        const { id } = await other.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
        for (let i = 0; i < 500 && indexedThrough(other.db) < rowId(id)!; i++) await sleep(10);
        assert.equal(indexedThrough(other.db), rowId(id)!);
        for (let i = 0; i < 500 && (backlog.read()?.backlog ?? 0) > 0; i++) await sleep(10);
        assert.equal(backlog.read()?.backlog, 0, 'checkpointed once past the configured pages');
        assert.ok(polling.maintenance!.checkpoints >= 1);
      } finally {
        backlog.close();
        await other.close();
        await polling.close();
      }
    }));
});
