/**
 * Attachment de-duplication, measured on disk: 100 messages carrying the same 1 MB attachment grow the data
 * directory by about 1 MB plus metadata, and expunging all of them frees it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { createUser } from '../storage/users.ts';
import { resolveConfig } from '../hooks/config.ts';
import { dirSize } from './helpers/dir-size.ts';

const MB = 1024 * 1024;

function messageWith(attachment: string, i: number): Uint8Array {
  return new TextEncoder().encode(
    `From: a@example.com\r\nTo: b@example.com\r\nSubject: copy ${i}\r\nMessage-ID: <copy-${i}@example.com>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n` +
      `--XX\r\nContent-Type: text/plain\r\n\r\nCopy number ${i}\r\n` +
      `--XX\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--XX--\r\n`,
  );
}

describe('attachment de-duplication on disk', () => {
  it('stores one copy of a 1 MB attachment shared by 100 messages and frees it on expunge', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-dedup-'));
    try {
      const config = resolveConfig({ dataDir });
      let storage = await openSqliteStorage({ dataDir });
      const { user } = await createUser(storage, config, { username: 'dedup', password: null });
      const inbox = (await storage.mailboxes.getByPath(user.id, 'INBOX'))!;
      await storage.close();
      const baseline = dirSize(dataDir);

      const attachment = randomBytes(MB).toString('base64').replace(/.{76}/g, '$&\r\n');
      storage = await openSqliteStorage({ dataDir });
      const uids: number[] = [];
      for (let i = 0; i < 100; i++) {
        const message = await ingestMessage(messageWith(attachment, i), storage.blobs, { blobThreshold: config.limits.blobThreshold });
        uids.push((await storage.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })).uid);
      }
      const stats = await storage.blobs.stats();
      assert.equal(stats.count, 1, 'one distinct blob');
      // every copy still reads back byte for byte
      for (const i of [0, 57, 99]) {
        const record = (await storage.messages.get(inbox.id, uids[i]!))!;
        const bytes = await readAll(readMessage((await storage.messages.content(record.id))!, storage.blobs));
        assert.deepEqual(Buffer.from(bytes), Buffer.from(messageWith(attachment, i)));
      }
      await storage.close();

      const grown = dirSize(dataDir) - baseline;
      assert.ok(grown > 0.9 * MB, `grew only ${grown} bytes: the attachment must be stored once`);
      assert.ok(grown < 2.5 * MB, `grew ${(grown / MB).toFixed(2)} MB for 100 copies of a 1 MB attachment`);

      storage = await openSqliteStorage({ dataDir });
      await storage.messages.expunge(inbox.id, uids);
      await storage.blobs.collect();
      assert.equal((await storage.blobs.stats()).count, 0);
      const usage = (await storage.users.get(user.id))!;
      assert.equal(usage.storageUsed, 0);
      assert.equal(usage.messagesUsed, 0);
      await storage.close();
      const after = dirSize(dataDir) - baseline;
      assert.ok(after < 0.5 * MB, `${after} bytes still held after expunging every copy`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
