/** The storage contract on the embedded SQLite backend, plus what only this backend has: files on disk, recovery. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MMAP_BYTES, openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SqliteStorage, SqliteStorageOptions } from '../storage/sqlite/index.ts';
import { SCHEMA_VERSION } from '../storage/sqlite/schema.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import { rowId } from '../storage/sqlite/common.ts';
import type { StoragePorts } from '../storage/ports.ts';
import { storageContract } from './helpers/storage-contract.ts';
import { collect, fakeMessage, messageBytes, simpleMessage, text } from './helpers/fake-message.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'wd-sqlite-'));
}

function open(dataDir: string, extra: Partial<SqliteStorageOptions> = {}): Promise<SqliteStorage> {
  return openSqliteStorage({ dataDir, synchronous: 'normal', ...extra });
}

storageContract('sqlite', async () => {
  const dataDir = tempDir();
  let storage: StoragePorts = await open(dataDir);
  const handle = {
    storage,
    async cleanup() {
      await handle.storage.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
    async reopen() {
      await handle.storage.close();
      storage = await open(dataDir);
      handle.storage = storage;
      return storage;
    },
  };
  return handle;
});

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

async function setup(dataDir: string, extra: Partial<SqliteStorageOptions> = {}) {
  const s = await open(dataDir, extra);
  const user = (await s.users.getByUsername('alice')) ?? (await s.users.create({ username: 'alice', passwordHash: null }));
  const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX')) ?? (await s.mailboxes.create(user.id, { path: 'INBOX' }));
  const append = async (body: string, blobBody = true) => {
    const raw = simpleMessage({ body });
    const message = await fakeMessage(s.blobs, raw, { blobBody });
    const r = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
    return { ...r, raw, hash: message.content.segments[1]?.blob };
  };
  return { s, user, inbox, append };
}

describe('sqlite backend specifics', () => {
  it('keeps one database file, WAL, the current schema version', async () => {
    const dir = tempDir();
    try {
      const { s } = await setup(dir);
      assert.ok(existsSync(join(dir, 'wildduck.sqlite')));
      assert.equal(s.db.get<{ journal_mode: string }>('PRAGMA journal_mode')?.journal_mode, 'wal');
      assert.equal(Number(s.db.get<{ user_version: number }>('PRAGMA user_version')?.user_version), SCHEMA_VERSION);
      assert.equal(Number(s.db.get<{ foreign_keys: number }>('PRAGMA foreign_keys')?.foreign_keys), 1);
      await s.ping();
      await s.close();
      const d = await openSqliteStorage({ dataDir: dir });
      assert.equal(Number(d.db.get<{ synchronous: number }>('PRAGMA synchronous')?.synchronous), 2, 'FULL by default');
      assert.equal(Number(d.db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')?.wal_autocheckpoint), 1_000);
      assert.equal(Number(d.db.get<{ mmap_size: number }>('PRAGMA mmap_size')?.mmap_size), DEFAULT_MMAP_BYTES, 'memory-mapped reads by default');
      await d.close();
      const e = await openSqliteStorage({ dataDir: dir, walAutocheckpointPages: 500, mmapBytes: 0 });
      assert.equal(Number(e.db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')?.wal_autocheckpoint), 500);
      assert.equal(Number(e.db.get<{ mmap_size: number }>('PRAGMA mmap_size')?.mmap_size), 0);
      await e.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores identical content 100 times as one compressed file under blobs/ab/cd/<hash>', async () => {
    const dir = tempDir();
    try {
      const { s, inbox, append } = await setup(dir);
      const body = 'The same attachment line, compressible.\r\n'.repeat(5000);
      const results = [];
      for (let i = 0; i < 100; i++) results.push(await append(body));
      const hash = results[0].hash!;
      assert.ok(results.every((r) => r.hash === hash));
      const files = filesUnder(join(dir, 'blobs'));
      assert.deepEqual(files, [join(dir, 'blobs', hash.slice(0, 2), hash.slice(2, 4), hash)]);
      const stats = await s.blobs.stats();
      assert.equal(stats.count, 1);
      assert.equal(stats.size, body.length);
      assert.ok(stats.storedSize < body.length / 10, `compressed to ${stats.storedSize}`);
      assert.equal(stats.storedSize, statSync(files[0]).size);
      await s.blobs.settle(); // staged duplicates are unlinked in the background after each commit
      assert.deepEqual(filesUnder(join(dir, 'tmp')), [], 'staged copies dropped');
      assert.equal(Number(s.db.get<{ refcount: number }>('SELECT refcount FROM blobs WHERE hash = ?', hash)?.refcount), 100);

      await s.messages.expunge(inbox.id, results.slice(0, 99).map((r) => r.uid));
      assert.equal((await s.blobs.stats()).count, 1);
      await s.messages.expunge(inbox.id, [results[99].uid]);
      await s.blobs.collect();
      await s.blobs.settle();
      assert.deepEqual(filesUnder(join(dir, 'blobs')), []);
      assert.deepEqual(filesUnder(join(dir, 'trash')), []);
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('deflates inline bytes transparently', async () => {
    const dir = tempDir();
    try {
      const { s, append } = await setup(dir);
      const r = await append('compress me please '.repeat(2000) + '\r\n', false);
      const row = s.db.get<{ inline: Uint8Array; inline_codec: number }>('SELECT inline, inline_codec FROM messages WHERE id = ?', rowId(r.id))!;
      assert.equal(Number(row.inline_codec), 1);
      assert.ok(row.inline instanceof Uint8Array);
      assert.equal(row.inline.constructor, Uint8Array);
      assert.ok(row.inline.length < r.raw.length / 10);
      assert.equal(text(await messageBytes((await s.messages.content(r.id))!, s.blobs)), r.raw);
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('collect() removes orphan files, zero-reference rows and stale staging files', async () => {
    const dir = tempDir();
    try {
      const { s, append } = await setup(dir);
      const kept = await append('kept '.repeat(100));
      // an orphan: a blob file with no row (as after a crash between rename and commit)
      const orphan = 'ab'.repeat(32);
      mkdirSync(join(dir, 'blobs', 'ab', 'ab'), { recursive: true });
      writeFileSync(join(dir, 'blobs', 'ab', 'ab', orphan), 'junk');
      // a row with no references left
      const zero = 'cd'.repeat(32);
      s.db.run('INSERT INTO blobs (hash, size, stored_size, refcount, created) VALUES (?, 1, 1, 0, 0)', zero);
      // a staging file nobody knows
      writeFileSync(join(dir, 'tmp', 'leftover.stage'), 'x');
      await s.close();

      const s2 = await open(dir, { stagingMaxAgeMs: 0 });
      assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'tmp cleared at open');
      const freed = await s2.blobs.collect();
      assert.ok(freed >= 2, `freed ${freed}`);
      assert.equal(existsSync(join(dir, 'blobs', 'ab', 'ab', orphan)), false);
      assert.equal(s2.db.get('SELECT 1 AS x FROM blobs WHERE hash = ?', zero), undefined);
      // the live blob survives
      assert.equal(text(await messageBytes((await s2.messages.content(kept.id))!, s2.blobs)), kept.raw);
      await s2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finishes trash at open, putting back a file whose row is still live', async () => {
    const dir = tempDir();
    try {
      const { s, append } = await setup(dir);
      const live = await append('live '.repeat(100));
      const gone = await append('gone '.repeat(100));
      await s.close();
      // crash simulation: both files were moved to trash but only `gone` lost its row
      const livePath = join(dir, 'blobs', live.hash!.slice(0, 2), live.hash!.slice(2, 4), live.hash!);
      const gonePath = join(dir, 'blobs', gone.hash!.slice(0, 2), gone.hash!.slice(2, 4), gone.hash!);
      renameSync(livePath, join(dir, 'trash', `${live.hash}.crash`));
      renameSync(gonePath, join(dir, 'trash', `${gone.hash}.crash`));
      const s2 = await open(dir);
      assert.deepEqual(readdirSync(join(dir, 'trash')), []);
      assert.ok(existsSync(livePath), 'live blob restored');
      assert.equal(text(await messageBytes((await s2.messages.content(live.id))!, s2.blobs)), live.raw);
      await s2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rolls back blob file moves when the commit fails', async () => {
    const dir = tempDir();
    try {
      const { s, user, inbox } = await setup(dir);
      const message = await fakeMessage(s.blobs, simpleMessage({ body: 'rollback '.repeat(200) }), { blobBody: true });
      const hash = message.content.segments[1].blob!;
      // a second, unknown blob makes the commit fail after the first file was moved into place
      message.content.segments.push({ length: 3, blob: 'ef'.repeat(32) });
      await assert.rejects(s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 0, message }));
      assert.equal(existsSync(join(dir, 'blobs', hash.slice(0, 2), hash.slice(2, 4), hash)), false);
      assert.equal((await s.blobs.stats()).count, 0);
      // the staged blob is still usable after the failed attempt
      message.content.segments.pop();
      const r = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 0, message });
      assert.equal(r.uid, 1);
      assert.equal((await s.blobs.stats()).count, 1);
      await collect(s.blobs.read(hash));
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('recalculateUsage repairs drifted user and mailbox counters', async () => {
    const dir = tempDir();
    try {
      const { s, user, inbox, append } = await setup(dir);
      const a = await append('one', false);
      const b = await append('two two', false);
      const size = new TextEncoder().encode(a.raw).length + new TextEncoder().encode(b.raw).length;
      s.db.run('UPDATE users SET storage_used = 12345, messages_used = 99 WHERE id = ?', rowId(user.id));
      s.db.run('UPDATE mailboxes SET message_count = 7, unseen_count = 7, total_size = 1 WHERE id = ?', rowId(inbox.id));
      const fixed = await s.users.recalculateUsage(user.id);
      assert.equal(fixed.storageUsed, size);
      assert.equal(fixed.messagesUsed, 2);
      assert.deepEqual(await s.mailboxes.counters(inbox.id), { messages: 2, unseen: 2, size });
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets two handles on the same directory write alternately (as a CLI beside the server would)', async () => {
    const dir = tempDir();
    try {
      const a = await setup(dir);
      const b = await setup(dir);
      const results = await Promise.all([a.append('same body '.repeat(50)), b.append('same body '.repeat(50)), a.append('x'), b.append('y')]);
      assert.deepEqual(results.map((r) => r.uid).sort((x, y) => x - y), [1, 2, 3, 4]);
      assert.equal((await a.s.blobs.stats()).count, 3);
      assert.equal(Number(a.s.db.get<{ refcount: number }>('SELECT refcount FROM blobs WHERE hash = ?', results[0].hash)?.refcount), 2);
      assert.equal((await b.s.users.get(a.user.id))!.messagesUsed, 4);
      await a.s.close();
      await b.s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('announces changes committed by another process to local subscribers', async () => {
    const dir = tempDir();
    try {
      const a = await setup(dir, { changePollMs: 20 });
      const b = await setup(dir);
      const heard: number[] = [];
      const off = a.s.changes.subscribe(a.user.id, (id) => heard.push(id));
      await b.append('from the other process', false);
      const latest = await b.s.changes.latest(a.user.id);
      for (let i = 0; i < 50 && !heard.includes(latest); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(heard.includes(latest), `heard ${heard.join(',')}, latest ${latest}`);
      // own commits are not announced twice by the poller
      const n = heard.length;
      await a.append('local', false);
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(heard.length, n + 1);
      off();
      await a.s.close();
      await b.s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite driver', () => {
  it('binds booleans and undefined, returns plain Uint8Array blobs, caches statements', async () => {
    const db = await openDb(':memory:');
    try {
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, f INTEGER, n TEXT)');
      const r = db.run('INSERT INTO t (b, f, n) VALUES (?, ?, ?)', new Uint8Array([1, 2, 3]), true, undefined);
      assert.equal(r.changes, 1);
      assert.equal(r.lastInsertRowid, 1);
      const row = db.get<{ b: Uint8Array; f: number; n: null }>('SELECT b, f, n FROM t WHERE id = ?', 1)!;
      assert.equal(row.b.constructor, Uint8Array);
      assert.deepEqual([...row.b], [1, 2, 3]);
      assert.equal(row.f, 1);
      assert.equal(row.n, null);
      assert.equal(db.get('SELECT * FROM t WHERE id = ?', 99), undefined);
      assert.deepEqual(db.all<{ id: number }>('SELECT id FROM t').map((x) => x.id), [1]);
    } finally {
      db.close();
    }
  });

  it('runs transactions: commit, rollback with undo hooks, nested calls join', async () => {
    const db = await openDb(':memory:');
    try {
      db.exec('CREATE TABLE t (x INTEGER)');
      const events: string[] = [];
      db.transaction(() => {
        db.run('INSERT INTO t VALUES (1)');
        db.afterCommit(() => events.push('committed'));
        db.onRollback(() => events.push('undone'));
        db.transaction(() => db.run('INSERT INTO t VALUES (2)'));
      });
      assert.deepEqual(events, ['committed']);
      assert.throws(() =>
        db.transaction(() => {
          db.run('INSERT INTO t VALUES (3)');
          db.onRollback(() => events.push('undo 1'));
          db.onRollback(() => events.push('undo 2'));
          db.afterCommit(() => events.push('never'));
          throw new Error('boom');
        }),
      );
      assert.deepEqual(events, ['committed', 'undo 2', 'undo 1']);
      assert.deepEqual(db.all<{ x: number }>('SELECT x FROM t ORDER BY x').map((r) => r.x), [1, 2]);
      assert.equal(db.inTransaction, false);
      assert.throws(() => db.afterCommit(() => undefined));
    } finally {
      db.close();
    }
  });
});
