/**
 * `wildduck storage copy` to and from MongoDB: the copy contract (test/helpers/copy-contract.ts) embedded → MongoDB and
 * MongoDB → embedded; the ids a MongoDB target keeps; a session opened on the copy sees exactly the copied state and
 * later writes come after it; a copy into MongoDB that crashed between two writes, resumed without duplicates or
 * losses; the command line `--to mongodb://…` stopped, killed and run again; and an mbsync client that downloads
 * nothing after the server moved from the embedded store to MongoDB. MongoDB is the server WILDDUCK_TEST_MONGODB_URL
 * names, else the stand-in (test/helpers/mongo-server.ts).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyStore, verifyCopy } from '../storage/copy.ts';
import { openMongoStorage } from '../storage/mongodb/index.ts';
import type { MongoStorage } from '../storage/mongodb/index.ts';
import type { StoragePorts } from '../storage/ports.ts';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';
import { append, copyContract } from './helpers/copy-contract.ts';
import { interruptedCopy, mbsyncAfterMove } from './helpers/copy-moves.ts';
import { generatedMessage } from './helpers/generated-mail.ts';
import { haveMbsync } from './helpers/mbsync.ts';
import { sharedMongo, stopSharedMongo } from './helpers/mongo-server.ts';
import { runTs } from './helpers/spawn-ts.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);

after(() => stopSharedMongo());

/** Opens MongoDB stores by name: a fresh database the first time, the same database again for the same name. */
function mongoStores(): { open(name: string): Promise<MongoStorage>; database(name: string): Promise<{ url: string; name: string }> } {
  const names = new Map<string, Promise<{ url: string; name: string }>>();
  const database = (name: string) => {
    let db = names.get(name);
    if (!db) {
      db = sharedMongo().then((server) => server.database());
      names.set(name, db);
    }
    return db;
  };
  return {
    database,
    open: async (name) => {
      const db = await database(name);
      return openMongoStorage({ url: db.url, database: db.name });
    },
  };
}

/** The connection string naming this database (the server's options kept). */
function urlWithDatabase(url: string, name: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]*)\/?[^?]*(\?.*)?$/.exec(url);
  if (!m) throw new Error(`not a MongoDB connection string: ${url}`);
  return `${m[1]}/${name}${m[2] ?? ''}`;
}

/** Makes the `nth` call of `method` on `target` whose arguments `matches` accepts fail like a crash there; returns the undo. */
function crashAt(target: object, method: string, nth: number, matches: (...args: unknown[]) => boolean = () => true): () => void {
  const own = target as Record<string, unknown>;
  const original = own[method] as (...args: unknown[]) => unknown;
  let seen = 0;
  own[method] = function (this: unknown, ...args: unknown[]) {
    if (matches(...args) && ++seen === nth) return Promise.reject(new Error(`crashed in ${method}`));
    return original.apply(this, args);
  };
  return () => void delete own[method];
}

describe('wildduck storage copy (embedded to MongoDB)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-copy-mongo-'));
  const mongo = mongoStores();
  const source = copyContract({ openSource: () => openSqliteStorage({ dataDir: join(dir, 'source') }), openTarget: mongo.open });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the source's ids; a session on the copy sees the copied state and later writes come after it", { timeout: 120_000 }, async () => {
    const target = await mongo.open('ids');
    try {
      await copyStore(source(), target);
      for (const username of ['alice', 'bob']) {
        const [a, b] = [(await source().users.getByUsername(username))!, (await target.users.getByUsername(username))!];
        assert.equal(b.id, a.id, `${username}: user id`);
        assert.deepEqual((await target.users.listAddresses(b.id)).map((x) => x.id), (await source().users.listAddresses(a.id)).map((x) => x.id), `${username}: address ids`);
        assert.deepEqual((await target.mailboxes.list(b.id)).map((m) => m.id), (await source().mailboxes.list(a.id)).map((m) => m.id), `${username}: mailbox ids`);
        assert.deepEqual((await target.documents.listAll(b.id)).map((d) => [d.kind, d.id, d.data]), (await source().documents.listAll(a.id)).map((d) => [d.kind, d.id, d.data]), `${username}: documents`);
      }
      assert.equal((await target.users.getByLoginName('Alice@Example.com'))?.username, 'alice', 'login keys claimed');

      // a session opened now: its change-log cursor covers every copied message
      const alice = (await target.users.getByUsername('alice'))!;
      const inbox = (await target.mailboxes.getByPath(alice.id, 'INBOX'))!;
      const latest = await target.changes.latest(alice.id);
      const seen = await target.messages.indexColumns(inbox.id, { throughChange: latest });
      const all = await source().messages.indexColumns((await source().mailboxes.getByPath(alice.id, 'INBOX'))!.id);
      assert.deepEqual([...seen.uids], [...all.uids]);
      // later writes: a UID and modseq above the copied ones, announced through the change log
      const appended = await append(target, alice.id, inbox.id, generatedMessage(200));
      assert.equal(appended, inbox.uidNext);
      const flagged = await target.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Flagged'] });
      assert.ok(flagged.changed[0]!.modseq > inbox.highestModseq);
      const entries = await target.changes.since(alice.id, latest, { mailboxId: inbox.id });
      assert.deepEqual(entries.map((e) => [e.type, e.uid]), [['exists', appended], ['flags', 1]]);
      const next = await target.messages.indexColumns(inbox.id, { throughChange: entries[entries.length - 1]!.id });
      assert.equal(next.count, seen.count + 1);
    } finally {
      await target.close();
    }
  });

  it('resumes a copy that crashed between two writes: nothing duplicated, nothing lost, counters right', { timeout: 120_000 }, async () => {
    let target = (await mongo.open('crashed')) as MongoStorage;
    try {
      const c = target.collections;
      // after a message's search document and content, before its message document
      let undo = crashAt(c.messages, 'insertOne', 10);
      await assert.rejects(copyStore(source(), target, { parallel: 1 }), /crashed in insertOne/);
      undo();
      // after a message document, before its counters
      undo = crashAt(c.mailboxes, 'updateOne', 5, (_filter, update) => (update as { $inc?: { messages?: number } }).$inc?.messages !== undefined);
      await assert.rejects(copyStore(source(), target, { parallel: 1 }), /crashed in updateOne/);
      undo();
      // a user whose login keys were never claimed
      const alice = (await target.users.getByUsername('alice'))!;
      await c.loginKeys.deleteMany({});
      assert.equal(await target.users.getByLoginName('alice@example.com'), null);
      await target.close();

      target = (await mongo.open('crashed')) as MongoStorage;
      const resumed = await copyStore(source(), target);
      assert.equal(resumed.stopped, false);
      assert.deepEqual((await verifyCopy(source(), target)).mismatches, []);
      const [a, b] = [(await source().users.getByUsername('alice'))!, (await target.users.getByUsername('alice'))!];
      assert.equal(b.messagesUsed, a.messagesUsed);
      assert.equal((await target.users.getByLoginName('alice@example.com'))?.id, alice.id);
      const d = target.collections;
      const messages = await d.messages.countDocuments({});
      assert.equal(messages, a.messagesUsed + (await source().users.getByUsername('bob'))!.messagesUsed);
      assert.equal(await d.messageSearch.countDocuments({}), messages, 'one search document per message');
      const owners = new Set((await d.messageContent.distinct('message')).map(String));
      const ids = new Set((await d.messages.find({}, { projection: { _id: 1 } }).toArray()).map((m) => String(m._id)));
      assert.ok([...owners].every((o) => ids.has(o)), 'no content of a message never written');
      assert.equal((await target.blobs.stats()).count, (await source().blobs.stats()).count);
      const inbox = (await target.mailboxes.getByPath(alice.id, 'INBOX'))!;
      assert.deepEqual((await target.search.match(inbox.id, [{ field: 'subject', value: 'generated 9' }]))[0], [4]);
    } finally {
      await target.close();
    }
  });

  it('runs as `wildduck storage copy --to mongodb://…`, stopped, killed midway and run again', { timeout: 180_000 }, async () => {
    const db = await mongo.database('cli');
    const to = urlWithDatabase(db.url, db.name);
    const env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'source'), WILDDUCK_LOG_FORMAT: 'json' };
    // stopped once the copy has started (messages in the target)
    const watch = await mongo.open('cli');
    try {
      const started = async () => (await watch.collections.messages.countDocuments({})) > 3;
      await interruptedCopy(CLI, { to, cwd: dir, env, signal: 'SIGINT', started });
      await interruptedCopy(CLI, { to, cwd: dir, env, signal: 'SIGKILL', started });
    } finally {
      await watch.close();
    }

    const r = await runTs(CLI, ['storage', 'copy', '--to', to], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^target mongodb:\/\//m);
    assert.match(r.stdout, /verified: 2 users, 5 mailboxes, \d+ messages .*, 0 differences/);
    const copy = await mongo.open('cli');
    try {
      const alice = (await copy.users.getByUsername('alice'))!;
      assert.equal(alice.messagesUsed, (await source().users.getByUsername('alice'))!.messagesUsed);
      assert.equal(alice.id, (await source().users.getByUsername('alice'))!.id);
    } finally {
      await copy.close();
    }
  });
});

describe('wildduck storage copy (MongoDB to embedded)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-copy-from-mongo-'));
  const mongo = mongoStores();
  const source = copyContract({ openSource: () => mongo.open('source'), openTarget: (name) => openSqliteStorage({ dataDir: join(dir, name) }) });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the documents' ids; the filter names the embedded copy's mailbox", { timeout: 120_000 }, async () => {
    const target: StoragePorts = await openSqliteStorage({ dataDir: join(dir, 'ids') });
    try {
      await copyStore(source(), target);
      const [a, b] = [(await source().users.getByUsername('alice'))!, (await target.users.getByUsername('alice'))!];
      assert.deepEqual((await target.documents.listAll(b.id)).map((d) => [d.kind, d.id]), (await source().documents.listAll(a.id)).map((d) => [d.kind, d.id]));
      const filterOf = async (storage: StoragePorts, userId: string) => (await storage.documents.list<{ action: { mailbox: string } }>(userId, 'filter'))[0]!.data.action.mailbox;
      const path = (await source().mailboxes.get(await filterOf(source(), a.id)))!.path;
      assert.equal(await filterOf(target, b.id), (await target.mailboxes.getByPath(b.id, path))!.id);
    } finally {
      await target.close();
    }
  });
});

describe('mbsync after the move to MongoDB', { skip: haveMbsync ? false : 'mbsync is not installed (apt-get install isync)' }, () => {
  const mongo = mongoStores();
  it('a client synced against the embedded store finds nothing to download from the MongoDB copy', { timeout: 180_000 }, async () => {
    const db = await mongo.database('mbsync');
    await mbsyncAfterMove({
      open: () => mongo.open('mbsync'),
      config: (dataDir) => ({ dataDir, storage: { backend: 'mongodb', mongodb: { url: db.url, database: db.name } } }),
    });
  });
});
