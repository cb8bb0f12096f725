/**
 * Blob staging in the embedded store (storage/sqlite/blobs.ts): an attachment already stored is recognised by its
 * hash before anything is compressed or written; what was held in memory for it is released at commit; a stored
 * copy that disappears between staging and commit is written by the commit; past the memory budget blobs stream
 * to staging files. Every message still reads back byte for byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SqliteStorage } from '../storage/sqlite/index.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { createUser } from '../storage/users.ts';
import { resolveConfig } from '../hooks/config.ts';
import type { Id } from '../storage/ports.ts';

const attachment = randomBytes(300_000).toString('base64').replace(/.{76}/g, '$&\r\n');

function messageWith(i: number): Uint8Array {
  return new TextEncoder().encode(
    `From: a@example.com\r\nTo: b@example.com\r\nSubject: copy ${i}\r\nMessage-ID: <stage-${i}@example.com>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n` +
      `--XX\r\nContent-Type: text/plain\r\n\r\nCopy number ${i}\r\n` +
      `--XX\r\nContent-Type: application/zip; name=a.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--XX--\r\n`,
  );
}

async function withStore(options: { blobMemoryBytes?: number }, fn: (s: SqliteStorage, user: Id, inbox: Id) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-staging-'));
  const s = await openSqliteStorage({ dataDir, synchronous: 'normal', ...options });
  try {
    const { user } = await createUser(s, resolveConfig({ dataDir }), { username: 'stager', password: null });
    const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX'))!;
    await fn(s, user.id, inbox.id);
  } finally {
    await s.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function deliver(s: SqliteStorage, user: Id, inbox: Id, i: number) {
  const message = await ingestMessage(messageWith(i), s.blobs);
  return { message, append: () => s.messages.append({ userId: user, mailboxId: inbox, flags: [], internalDate: Date.now(), message }) };
}

async function assertReadsBack(s: SqliteStorage, inbox: Id, uid: number, i: number): Promise<void> {
  const record = (await s.messages.get(inbox, uid))!;
  const bytes = await readAll(readMessage((await s.messages.content(record.id))!, s.blobs));
  assert.deepEqual(Buffer.from(bytes), Buffer.from(messageWith(i)));
}

describe('blob staging', () => {
  it('an attachment already stored is neither written nor staged again, and its held bytes go at commit', async () => {
    await withStore({}, async (s, user, inbox) => {
      const first = await (await deliver(s, user, inbox, 1)).append();
      assert.equal(s.blobs.heldBytes, 0);
      const second = await deliver(s, user, inbox, 2);
      assert.deepEqual(readdirSync(s.blobs.tmpDir), [], 'no staging file for a blob that is stored');
      assert.ok(s.blobs.heldBytes >= attachment.length, 'its bytes are held until the commit');
      const r = await second.append();
      assert.equal(s.blobs.heldBytes, 0);
      assert.equal((await s.blobs.stats()).count, 1);
      await assertReadsBack(s, inbox, first.uid, 1);
      await assertReadsBack(s, inbox, r.uid, 2);
    });
  });

  it('a stored copy deleted between staging and commit is written by the commit', async () => {
    await withStore({}, async (s, user, inbox) => {
      const first = await (await deliver(s, user, inbox, 1)).append();
      const second = await deliver(s, user, inbox, 2); // sees the blob stored: holds the bytes
      await s.messages.expunge(inbox, [first.uid]);
      await s.blobs.settle();
      assert.equal((await s.blobs.stats()).count, 0, 'the only stored copy is gone');
      const r = await second.append();
      assert.equal((await s.blobs.stats()).count, 1);
      assert.equal(s.blobs.heldBytes, 0);
      await assertReadsBack(s, inbox, r.uid, 2);
    });
  });

  it('discarding a held blob releases its memory', async () => {
    await withStore({}, async (s, user, inbox) => {
      await (await deliver(s, user, inbox, 1)).append();
      const second = await deliver(s, user, inbox, 2);
      assert.ok(s.blobs.heldBytes > 0);
      await s.blobs.discard(second.message.blobs);
      assert.equal(s.blobs.heldBytes, 0);
    });
  });

  it('past the memory budget blobs stream to staging files, and still de-duplicate', async () => {
    await withStore({ blobMemoryBytes: 0 }, async (s, user, inbox) => {
      const a = await (await deliver(s, user, inbox, 1)).append();
      const second = await deliver(s, user, inbox, 2);
      assert.equal(readdirSync(s.blobs.tmpDir).length, 1, 'staged in a file');
      const b = await second.append();
      await s.blobs.settle();
      assert.deepEqual(readdirSync(s.blobs.tmpDir), [], 'the duplicate staging file is removed after commit');
      assert.equal((await s.blobs.stats()).count, 1);
      await assertReadsBack(s, inbox, a.uid, 1);
      await assertReadsBack(s, inbox, b.uid, 2);
    });
  });
});
