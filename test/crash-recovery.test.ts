/**
 * A writer killed with SIGKILL in the middle of a burst of appends: on reopen every acknowledged message is
 * present and byte-identical, no half-written message is visible, UIDNEXT never goes back and no UID is
 * reused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { createUser } from '../storage/users.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { resolveConfig } from '../hooks/config.ts';
import { generatedMessage, generatedIndex } from './helpers/generated-mail.ts';
import { spawnTs } from './helpers/spawn-ts.ts';

interface Ack {
  index: number;
  uid: number;
}

function killMidBurst(dataDir: string, userId: string, mailboxId: string, first: number, acksBeforeKill: number): Promise<Ack[]> {
  const child = spawnTs(new URL('./helpers/crash-writer.ts', import.meta.url), [dataDir, userId, mailboxId, String(first)]);
  const acks: Ack[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer produced ${acks.length} acks in 60 s; stderr: ${stderr}`));
    }, 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = /^ACK (\d+) (\d+)$/.exec(line.trim());
        if (m) acks.push({ index: Number(m[1]), uid: Number(m[2]) });
        if (acks.length === acksBeforeKill) child.kill('SIGKILL');
      }
    });
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && acks.length < acksBeforeKill) reject(new Error(`writer exited early; stderr: ${stderr}`));
      else resolve(acks);
    });
  });
}

describe('crash recovery (embedded storage)', () => {
  it('keeps every acknowledged message after SIGKILL mid-burst, twice over, and never reuses a UID', { timeout: 180_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-crash-'));
    try {
      const config = resolveConfig({ dataDir });
      let storage = await openSqliteStorage({ dataDir });
      const { user } = await createUser(storage, config, { username: 'crash', password: null });
      const inbox = (await storage.mailboxes.getByPath(user.id, 'INBOX'))!;
      await storage.close();

      const allAcks: Ack[] = [];
      let next = 0;
      for (const round of [25, 40]) {
        const acks = await killMidBurst(dataDir, user.id, inbox.id, next, round);
        assert.ok(acks.length >= round, `round got ${acks.length} acks`);
        allAcks.push(...acks);
        next = acks[acks.length - 1]!.index + 1000; // indexes of unacknowledged in-flight writes are never reused

        storage = await openSqliteStorage({ dataDir, searchIndexer: { delayMs: 3_600_000 } });
        // every acknowledged message is found by search, before its search row is indexed and after
        const terms = allAcks.map((a) => ({ field: 'subject' as const, value: `generated ${a.index}` }));
        const found = async (when: string) => {
          const answers = await storage.search.match(inbox.id, terms);
          allAcks.forEach((a, i) => assert.ok(answers[i]!.includes(a.uid), `uid ${a.uid} not found by search ${when}`));
        };
        await found('before indexing');
        storage.searchIndexer.flush();
        await found('after indexing');
        const index = await storage.messages.index(inbox.id);
        const byUid = new Map(index.map((e) => [e.uid, e]));
        // every acknowledged message is there, intact
        for (const ack of allAcks) {
          const record = await storage.messages.get(inbox.id, ack.uid);
          assert.ok(record, `acknowledged uid ${ack.uid} is missing`);
          assert.equal(generatedIndex(record.subject), ack.index);
          const bytes = await readAll(readMessage((await storage.messages.content(record.id))!, storage.blobs));
          assert.deepEqual(Buffer.from(bytes), Buffer.from(generatedMessage(ack.index)), `uid ${ack.uid} bytes differ`);
        }
        // nothing half-written: every visible message is complete
        for (const entry of index) {
          const record = (await storage.messages.get(inbox.id, entry.uid))!;
          const i = generatedIndex(record.subject);
          assert.ok(i >= 0, `unexpected message at uid ${entry.uid}`);
          const bytes = await readAll(readMessage((await storage.messages.content(record.id))!, storage.blobs));
          assert.deepEqual(Buffer.from(bytes), Buffer.from(generatedMessage(i)), `visible uid ${entry.uid} is not intact`);
          assert.equal(entry.size, bytes.length);
        }
        // UIDs are unique and UIDNEXT is past every UID ever acknowledged
        assert.equal(byUid.size, index.length);
        const mailbox = (await storage.mailboxes.get(inbox.id))!;
        const maxAcked = Math.max(...allAcks.map((a) => a.uid));
        assert.ok(mailbox.uidNext > maxAcked, `uidNext ${mailbox.uidNext} <= acknowledged uid ${maxAcked}`);
        // counters agree with the index
        const counters = await storage.mailboxes.counters(inbox.id);
        assert.equal(counters.messages, index.length);
        assert.equal(counters.size, index.reduce((s, e) => s + e.size, 0));
        await storage.close();
      }

      // a fresh append after the crashes gets a UID above everything seen before
      storage = await openSqliteStorage({ dataDir });
      const before = (await storage.mailboxes.get(inbox.id))!;
      const result = await storage.messages.append({
        userId: user.id,
        mailboxId: inbox.id,
        flags: [],
        internalDate: Date.now(),
        message: await ingestMessage(generatedMessage(99_999), storage.blobs, { blobThreshold: 1024 }),
      });
      assert.ok(result.uid >= before.uidNext);
      assert.ok(result.uid > Math.max(...allAcks.map((a) => a.uid)));
      // blobs referenced by surviving messages survive garbage collection
      await storage.blobs.collect();
      for (const entry of await storage.messages.index(inbox.id)) {
        const record = (await storage.messages.get(inbox.id, entry.uid))!;
        const bytes = await readAll(readMessage((await storage.messages.content(record.id))!, storage.blobs));
        assert.equal(bytes.length, entry.size);
      }
      await storage.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
