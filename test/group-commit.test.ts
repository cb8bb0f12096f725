/**
 * Group commit (storage/sqlite/group-commit.ts): appends arriving together share one transaction, each in its own
 * savepoint; a failing one fails alone and leaves no trace; nothing resolves (and no change is announced) before the
 * WAL fsync that covers it has finished; a failed fsync fails the whole group; a write lock held by another
 * connection is waited for with the event loop free. Ordered writes (flag changes, expunges, copies, moves) resolve
 * without an fsync of their own; what must wait for durability (unlinking a released blob file) waits for the next.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDb } from '../storage/sqlite/driver.ts';
import type { Db } from '../storage/sqlite/driver.ts';
import { GroupCommit, fsyncWal, keptWalFile } from '../storage/sqlite/group-commit.ts';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { createUser } from '../storage/users.ts';
import { resolveConfig } from '../hooks/config.ts';

async function withDb(fn: (db: Db) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wd-group-'));
  const db = await openDb(join(dir, 'g.sqlite'));
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
    await fn(db);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const values = (db: Db) => db.all<{ v: number }>('SELECT v FROM t ORDER BY v').map((r) => Number(r.v));

describe('group commit', () => {
  it('commits what arrives together in one transaction; a failing store fails alone, its undo and after-commit work too', async () => {
    await withDb(async (db) => {
      const group = new GroupCommit(db, { durable: true });
      const events: string[] = [];
      const store = (v: number, failAfterWrite = false) =>
        group.run(() => {
          db.run('INSERT INTO t (v) VALUES (?)', v);
          db.onRollback(() => events.push(`undo ${v}`));
          db.afterCommit(() => events.push(`after ${v}`));
          if (failAfterWrite) throw new Error(`store ${v} failed`);
          return v;
        });
      const results = await Promise.allSettled([store(1), store(2, true), store(3), store(1) /* UNIQUE violation */, store(4)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
      );
      assert.deepEqual(values(db), [1, 3, 4]);
      assert.deepEqual(events.sort(), ['after 1', 'after 3', 'after 4', 'undo 2']);
      assert.equal(db.inTransaction, false);
      assert.equal(Number(db.get<{ synchronous: number }>('PRAGMA synchronous')!.synchronous), 2, 'back to FULL for everything else');
    });
  });

  it('resolves and runs after-commit work only once the WAL fsync covering it has finished', async () => {
    await withDb(async (db) => {
      let release: () => void = () => {};
      const syncs: string[] = [];
      const group = new GroupCommit(db, {
        durable: true,
        fsync: (path) => {
          syncs.push(path);
          return new Promise<void>((resolve) => (release = resolve)).then(() => fsyncWal(path));
        },
      });
      let resolved = false;
      let announced = false;
      const p = group.run(() => {
        db.run('INSERT INTO t (v) VALUES (1)');
        db.afterCommit(() => (announced = true));
      }).then(() => (resolved = true));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(values(db), [1], 'committed (WAL written)');
      assert.equal(syncs.length, 1);
      assert.equal(resolved, false, 'not acknowledged before the fsync');
      assert.equal(announced, false, 'not announced before the fsync');
      release();
      await p;
      assert.equal(announced, true);
      assert.equal(syncs[0], db.path);
    });
  });

  it('a failed fsync fails every store of the group', async () => {
    await withDb(async (db) => {
      const group = new GroupCommit(db, { durable: true, fsync: async () => Promise.reject(new Error('EIO')) });
      const results = await Promise.allSettled([1, 2].map((v) => group.run(() => db.run('INSERT INTO t (v) VALUES (?)', v))));
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    });
  });

  it('waits for another connection\'s write lock without blocking the event loop, then commits what arrived meanwhile', async () => {
    await withDb(async (db) => {
      db.exec('PRAGMA busy_timeout = 60000'); // a blocking BEGIN would stall the event loop until the other commits
      const other = await openDb(db.path);
      try {
        other.exec('BEGIN IMMEDIATE');
        other.run('INSERT INTO t (v) VALUES (?)', 10);
        const group = new GroupCommit(db, { durable: true });
        const first = group.run(() => db.run('INSERT INTO t (v) VALUES (?)', 1).changes);
        let settled = false;
        void first.then(() => (settled = true));
        // timers fire while the store waits: the event loop is free
        await new Promise<void>((resolve) => setTimeout(resolve, 20));
        assert.equal(settled, false, 'nothing committed while the other connection holds the lock');
        const second = group.run(() => db.run('INSERT INTO t (v) VALUES (?)', 2).changes);
        other.exec('COMMIT');
        assert.deepEqual(await Promise.all([first, second]), [1, 1]);
        assert.deepEqual(values(db), [1, 2, 10]);
        assert.equal(Number(db.get<{ timeout: number }>('PRAGMA busy_timeout')!.timeout), 60000, 'busy timeout restored');
      } finally {
        other.close();
      }
    });
  });

  /** A fake fsync that holds every call until released, then fsyncs for real. */
  function heldFsync(): { fsync: (path: string) => Promise<void>; calls: () => number; release: () => void } {
    let calls = 0;
    let waiting: Array<() => void> = [];
    return {
      fsync: (path) => {
        calls++;
        return new Promise<void>((resolve) => waiting.push(resolve)).then(() => fsyncWal(path));
      },
      calls: () => calls,
      release: () => {
        const w = waiting;
        waiting = [];
        for (const resolve of w) resolve();
      },
    };
  }
  const tick = () => new Promise((r) => setTimeout(r, 30));
  /** Waits until `cond` holds (a loaded machine may take a while to finish an fsync), failing after 10 s. */
  const until = async (cond: () => boolean, what: string) => {
    for (const start = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 5))) {
      if (Date.now() - start > 10_000) assert.fail(`timed out waiting: ${what}`);
    }
  };

  it('ordered writes resolve once committed, without an fsync; a group holding a durable write waits for it, ordered ones with it', async () => {
    await withDb(async (db) => {
      const sync = heldFsync();
      const group = new GroupCommit(db, { durable: true, fsync: sync.fsync, syncDelayMs: -1 });
      let announced = false;
      await group.runOrdered(() => {
        db.run('INSERT INTO t (v) VALUES (1)');
        db.afterCommit(() => (announced = true));
      });
      assert.equal(sync.calls(), 0, 'no fsync for an ordered write');
      assert.equal(announced, true, 'its after-commit work ran at once');
      const states: string[] = [];
      const durable = group.run(() => db.run('INSERT INTO t (v) VALUES (2)')).then(() => states.push('durable'));
      const ordered = group.runOrdered(() => db.run('INSERT INTO t (v) VALUES (3)')).then(() => states.push('ordered'));
      await until(() => sync.calls() === 1, 'the group fsync');
      await tick();
      assert.deepEqual(values(db), [1, 2, 3]);
      assert.equal(sync.calls(), 1);
      assert.deepEqual(states, [], 'the group waits for its fsync');
      sync.release();
      await Promise.all([durable, ordered]);
      assert.deepEqual(states.sort(), ['durable', 'ordered']);
    });
  });

  it('with ordered commits off (fsyncMode "always"), an ordered write waits for its fsync', async () => {
    await withDb(async (db) => {
      const sync = heldFsync();
      const group = new GroupCommit(db, { durable: true, ordered: false, fsync: sync.fsync });
      let resolved = false;
      const p = group.runOrdered(() => db.run('INSERT INTO t (v) VALUES (1)')).then(() => (resolved = true));
      await until(() => sync.calls() === 1, 'the fsync');
      await tick();
      assert.equal(resolved, false);
      sync.release();
      await p;
    });
  });

  it('after-durable work of an ordered write waits for an fsync that started after its commit', async () => {
    await withDb(async (db) => {
      const sync = heldFsync();
      const group = new GroupCommit(db, { durable: true, fsync: sync.fsync, syncDelayMs: -1 });
      const events: string[] = [];
      // an fsync in flight from before: it may not cover the ordered commit
      const earlier = group.run(() => db.run('INSERT INTO t (v) VALUES (1)'));
      await until(() => sync.calls() === 1, 'the first fsync');
      await group.runOrdered(() => {
        db.run('INSERT INTO t (v) VALUES (2)');
        db.afterCommit(() => events.push('committed'));
        db.afterDurable(() => events.push('durable'));
      });
      assert.deepEqual(events, ['committed'], 'acknowledged before any fsync covers it');
      sync.release();
      await earlier;
      await until(() => sync.calls() === 2, 'the next fsync');
      assert.deepEqual(events, ['committed'], 'the fsync that was running does not count');
      sync.release();
      await until(() => events.length === 2, 'the after-durable work');
      assert.deepEqual(events, ['committed', 'durable']);
    });
  });

  it('fsyncWal keeps one descriptor of the live WAL file: across checkpoints, and a fresh one once the file is replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-walfd-'));
    const path = join(dir, 'w.sqlite');
    const live = () => {
      const st = statSync(`${path}-wal`);
      return { dev: st.dev, ino: st.ino };
    };
    try {
      let db = await openDb(path);
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('CREATE TABLE t (v INTEGER)');
      db.run('INSERT INTO t (v) VALUES (1)');
      await fsyncWal(path);
      const first = keptWalFile(path);
      assert.deepEqual(first, live());
      for (const mode of ['RESTART', 'TRUNCATE', 'PASSIVE']) {
        db.exec(`PRAGMA wal_checkpoint(${mode})`);
        db.run('INSERT INTO t (v) VALUES (2)');
        await fsyncWal(path);
        assert.deepEqual(keptWalFile(path), live(), `the live WAL after a ${mode} checkpoint`);
      }
      db.close(); // the last connection removes the WAL file
      await fsyncWal(path); // no WAL: the database file is synced
      db = await openDb(path);
      db.exec('PRAGMA journal_mode = WAL');
      db.run('INSERT INTO t (v) VALUES (3)');
      await fsyncWal(path);
      assert.deepEqual(keptWalFile(path), live(), 'a fresh descriptor of the new WAL file');
      assert.notDeepEqual(keptWalFile(path), first, 'the old one pins its deleted inode: the new file cannot share its number');
      assert.deepEqual(values(db), [1, 2, 2, 2, 3]);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an ordered write no durable one follows is fsynced after syncDelayMs, and by settle()', async () => {
    await withDb(async (db) => {
      let calls = 0;
      const counting = (path: string) => {
        calls++;
        return fsyncWal(path);
      };
      const lazy = new GroupCommit(db, { durable: true, fsync: counting, syncDelayMs: 20 });
      await lazy.runOrdered(() => db.run('INSERT INTO t (v) VALUES (1)'));
      await lazy.runOrdered(() => db.run('INSERT INTO t (v) VALUES (2)'));
      assert.equal(calls, 0);
      await until(() => calls > 0, 'the delayed fsync');
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(calls, 1, 'one fsync for both');
      const never = new GroupCommit(db, { durable: true, fsync: counting, syncDelayMs: -1 });
      await never.runOrdered(() => db.run('INSERT INTO t (v) VALUES (3)'));
      assert.equal(calls, 1);
      await never.settle();
      assert.equal(calls, 2, 'settle() (close) makes it durable');
      await never.settle();
      assert.equal(calls, 2, 'nothing left to sync');
    });
  });

  it('concurrent appends into one mailbox: a failing one takes nothing with it and leaves no UID, count or usage behind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-group-store-'));
    const s = await openSqliteStorage({ dataDir });
    try {
      const { user } = await createUser(s, resolveConfig({ dataDir }), { username: 'grouped', password: null });
      const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX'))!;
      const attachment = randomBytes(60_000).toString('base64').replace(/.{76}/g, '$&\r\n');
      const raw = (i: number) =>
        new TextEncoder().encode(
          `Subject: m${i}\r\nMessage-ID: <g${i}@x>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nhello ${i}\r\n` +
            `--B\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}${i}\r\n--B--\r\n`,
        );
      const messages = await Promise.all([0, 1, 2, 3].map((i) => ingestMessage(raw(i), s.blobs)));
      // message 2 names a blob that was never staged: its commit fails after its rows are written
      messages[2]!.content.segments.push({ length: 10, blob: 'f'.repeat(64) });
      const results = await Promise.allSettled(
        messages.map((message) => s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })),
      );
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      const uids = results.map((r) => (r.status === 'fulfilled' ? r.value.uid : 0));
      assert.deepEqual(uids.filter((u) => u > 0).sort(), [1, 2, 3], 'no UID burnt by the failed one');
      const box = (await s.mailboxes.get(inbox.id))!;
      assert.equal(box.uidNext, 4);
      assert.equal((await s.users.get(user.id))!.messagesUsed, 3);
      assert.equal((await s.blobs.stats()).count, 3, 'the failed message took no blob reference');
      for (const i of [0, 1, 3]) {
        const record = (await s.messages.get(inbox.id, uids[i]!))!;
        assert.deepEqual(await readAll(readMessage((await s.messages.content(record.id))!, s.blobs)), raw(i));
      }
      await s.blobs.discard(messages[2]!.blobs);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
