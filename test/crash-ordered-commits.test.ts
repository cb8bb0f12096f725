/**
 * Changes that carry no new mail (flag changes, expunges, copies, moves) are acknowledged without an fsync of their
 * own (storage.sqlite.fsyncMode "optimized"). A power cut is simulated by copying the data directory with the WAL
 * cut back to what the last fsync covered (checkpoints off, so the database file holds nothing newer): at any moment
 * every message still referenced by the surviving database can be read, i.e. the file of an attachment an expunge
 * released is not deleted before that expunge is durable, and a move is either in its source or in its target.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncWal } from '../storage/sqlite/group-commit.ts';
import { DATABASE_FILE, openSqliteStorage, type SqliteStorage } from '../storage/sqlite/index.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { createUser } from '../storage/users.ts';
import { resolveConfig } from '../hooks/config.ts';

/** The WAL as the last fsync left it on disk; `hold` keeps the next fsyncs from finishing until released. */
class DiskModel {
  durableWal: Uint8Array | null = null;
  calls = 0;
  /** fsyncs finished. */
  done = 0;
  #held: Array<() => void> | null = null;

  fsync = async (dbPath: string): Promise<void> => {
    this.calls++;
    const wal = `${dbPath}-wal`;
    const bytes = existsSync(wal) ? readFileSync(wal) : null;
    if (this.#held) await new Promise<void>((resolve) => this.#held!.push(resolve));
    await fsyncWal(dbPath);
    this.durableWal = bytes;
    this.done++;
  };

  hold(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const resolve of held) resolve();
  }

  /** A copy of the data directory as a power cut now would leave it (blob files as they are: their moves are real). */
  cut(dataDir: string): string {
    const copy = mkdtempSync(join(tmpdir(), 'wd-powercut-'));
    cpSync(dataDir, copy, { recursive: true });
    rmSync(join(copy, `${DATABASE_FILE}-shm`), { force: true });
    if (this.durableWal) writeFileSync(join(copy, `${DATABASE_FILE}-wal`), this.durableWal);
    else rmSync(join(copy, `${DATABASE_FILE}-wal`), { force: true });
    return copy;
  }
}

const attachment = randomBytes(60_000).toString('base64').replace(/.{76}/g, '$&\r\n');
const raw = (i: number) =>
  new TextEncoder().encode(
    `Subject: m${i}\r\nMessage-ID: <p${i}@x>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nhello ${i}\r\n` +
      `--B\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}${i}\r\n--B--\r\n`,
  );

/** Opens a power-cut copy and returns what each mailbox path holds: subject line → bytes readable in full. */
async function survivors(copy: string): Promise<Map<string, string[]>> {
  const s = await openSqliteStorage({ dataDir: copy, walAutocheckpointPages: 0 });
  try {
    const out = new Map<string, string[]>();
    const user = (await s.users.getByUsername('cut'))!;
    for (const box of await s.mailboxes.list(user.id)) {
      const found: string[] = [];
      for (const { uid } of await s.messages.index(box.id)) {
        const record = (await s.messages.get(box.id, uid))!;
        const bytes = await readAll(readMessage((await s.messages.content(record.id))!, s.blobs));
        found.push(new TextDecoder().decode(bytes).split('\r\n', 1)[0]!);
      }
      out.set(box.path, found.sort());
    }
    return out;
  } finally {
    await s.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

describe('power cut after changes acknowledged without their own fsync', () => {
  it('an expunge is undone or kept, never leaves a message without its attachment; a move is in one of the two mailboxes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-ordered-'));
    const disk = new DiskModel();
    let s: SqliteStorage | null = await openSqliteStorage({ dataDir, walAutocheckpointPages: 0, fsyncWal: disk.fsync, orderedSyncDelayMs: 60_000 });
    try {
      const { user } = await createUser(s, resolveConfig({ dataDir }), { username: 'cut', password: null });
      const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX'))!;
      const archive = await s.mailboxes.create(user.id, { path: 'Archive' });
      const uids: number[] = [];
      for (const i of [1, 2, 3]) {
        const message = await ingestMessage(raw(i), s.blobs);
        uids.push((await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })).uid);
      }
      assert.ok(disk.calls > 0, 'appends are fsynced before their acknowledgement');
      const before = await survivors(disk.cut(dataDir));
      assert.deepEqual(before.get('INBOX'), ['Subject: m1', 'Subject: m2', 'Subject: m3']);

      disk.hold();
      const calls = disk.calls;
      await s.messages.setFlags(inbox.id, [uids[0]!], { action: 'add', flags: ['\\Seen'] });
      await s.messages.expunge(inbox.id, [uids[0]!]); // releases m1's attachment: its file goes to trash/
      await s.messages.move(inbox.id, [uids[1]!], archive.id);
      await s.blobs.settle();
      // the power goes now: nothing of the three changes is durable, and m1's attachment must still be there
      const cut = await survivors(disk.cut(dataDir));
      assert.deepEqual(cut.get('INBOX'), ['Subject: m1', 'Subject: m2', 'Subject: m3'], 'all undone, every message readable');
      assert.deepEqual(cut.get('Archive'), []);
      assert.equal(disk.calls, calls + 1, 'acknowledged with no fsync; one started for the blob file to unlink');

      disk.release();
      for (const start = Date.now(); disk.done < disk.calls; await new Promise((r) => setTimeout(r, 5))) {
        assert.ok(Date.now() - start < 10_000, 'the held fsync finishes');
      }
      await new Promise((r) => setTimeout(r, 20));
      await s.blobs.settle(); // the fsync finished: the released file is unlinked now
      // that fsync started after the expunge, before the move: a prefix of the changes survives
      const after = await survivors(disk.cut(dataDir));
      assert.deepEqual(after.get('INBOX'), ['Subject: m2', 'Subject: m3']);
      assert.deepEqual(after.get('Archive'), []);
      // the next new message's fsync makes everything before it durable
      const message = await ingestMessage(raw(4), s.blobs);
      await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
      const last = await survivors(disk.cut(dataDir));
      assert.deepEqual(last.get('INBOX'), ['Subject: m3', 'Subject: m4']);
      assert.deepEqual(last.get('Archive'), ['Subject: m2']);
      await s.close();
      s = null;
    } finally {
      await s?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
