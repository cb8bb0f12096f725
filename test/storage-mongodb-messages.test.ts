/**
 * The MongoDB backend's messages, blobs and search (storage/mongodb/messages.ts, blobs.ts, search.ts) on the stand-in
 * (or the server WILDDUCK_TEST_MONGODB_URL names): the message, blob, search and page parts of the storage contract,
 * and what only this backend has: writers on two port instances sharing one database, blob pieces, write-once bytes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, ObjectId } from 'mongodb';
import type { Db } from 'mongodb';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';
import { StorageError } from '../storage/ports.ts';
import type { MailboxRecord, MailboxesPort, StoragePorts, UserRecord, UsersPort } from '../storage/ports.ts';
import { BLOB_PIECE_SIZE, MongoBlobs } from '../storage/mongodb/blobs.ts';
import type { MongoBlobsOptions } from '../storage/mongodb/blobs.ts';
import { MongoChangeLog } from '../storage/mongodb/changes.ts';
import { collections, ensureIndexes } from '../storage/mongodb/collections.ts';
import type { MailboxDoc, MongoCollections, UserDoc } from '../storage/mongodb/collections.ts';
import { idOf, objectId } from '../storage/mongodb/ids.ts';
import { MongoMessages } from '../storage/mongodb/messages.ts';
import { MongoSearch } from '../storage/mongodb/search.ts';
import { collect, fakeMessage, messageBytes, simpleMessage, text } from './helpers/fake-message.ts';
import { sharedMongo, stopSharedMongo } from './helpers/mongo-server.ts';
import { noise, storageContract } from './helpers/storage-contract.ts';

after(() => stopSharedMongo());

function toUser(d: UserDoc): UserRecord {
  return {
    id: idOf(d._id),
    username: d.username,
    name: d.name,
    passwordHash: d.passwordHash,
    quota: d.quota,
    storageUsed: d.storageUsed,
    messagesUsed: d.messagesUsed,
    disabled: d.disabled,
    tags: d.tags,
    created: d.created,
  };
}

function toMailbox(d: MailboxDoc): MailboxRecord {
  return {
    id: idOf(d._id),
    userId: idOf(d.user),
    path: d.path,
    specialUse: d.specialUse,
    subscribed: d.subscribed,
    uidValidity: d.uidValidity,
    uidNext: d.uidNext,
    highestModseq: d.modseq,
    created: d.created,
  };
}

const missing = (): never => {
  throw new Error('not in this harness (storage/mongodb users and mailboxes)');
};

/**
 * The message ports on one database with just enough users and mailboxes to test them (the accounts side is tested
 * with the whole backend in test/storage-mongodb.test.ts).
 */
function harness(c: MongoCollections, blobOptions: MongoBlobsOptions = {}): StoragePorts & { blobs: MongoBlobs } {
  const ephemeral = new MemoryEphemeral();
  const changes = new MongoChangeLog(c, ephemeral, { gapWaitMs: 2000 });
  const blobs = new MongoBlobs(c, blobOptions);
  const users = {
    async create(u) {
      if (await c.users.findOne({ username: u.username })) throw new StorageError('ALREADYEXISTS', 'taken');
      const doc: UserDoc = {
        _id: new ObjectId(),
        username: u.username,
        name: u.name ?? '',
        passwordHash: u.passwordHash,
        quota: { storage: null, messages: null },
        storageUsed: 0,
        messagesUsed: 0,
        disabled: false,
        tags: [],
        created: Date.now(),
        changeSeq: 0,
      };
      await c.users.insertOne(doc);
      return toUser(doc);
    },
    async get(id) {
      const oid = objectId(id);
      const d = oid ? await c.users.findOne({ _id: oid }) : null;
      return d ? toUser(d) : null;
    },
    async getByUsername(username) {
      const d = await c.users.findOne({ username });
      return d ? toUser(d) : null;
    },
  } as Partial<UsersPort> as UsersPort;
  let uidValidity = 1000;
  const mailboxes = {
    async create(userId, m) {
      const user = objectId(userId)!;
      const seq = await changes.reserve(user, 1);
      const doc: MailboxDoc = {
        _id: new ObjectId(),
        user,
        path: m.path,
        specialUse: m.specialUse ?? null,
        subscribed: m.subscribed ?? true,
        uidValidity: uidValidity++,
        uidNext: 1,
        modseq: 1,
        lastChange: seq,
        messages: 0,
        unseen: 0,
        size: 0,
        created: Date.now(),
      };
      await c.mailboxes.insertOne(doc);
      await changes.write(user, seq, [{ mailbox: doc._id, type: 'mailbox.create', modseq: 1, path: m.path }]);
      return toMailbox(doc);
    },
    async get(id) {
      const oid = objectId(id);
      const d = oid ? await c.mailboxes.findOne({ _id: oid }) : null;
      return d ? toMailbox(d) : null;
    },
    async getByPath(userId, path) {
      const d = await c.mailboxes.findOne({ user: objectId(userId)!, path });
      return d ? toMailbox(d) : null;
    },
    async counters(id) {
      const d = (await c.mailboxes.findOne({ _id: objectId(id)! }))!;
      return { messages: d.messages, unseen: d.unseen, size: d.size };
    },
  } as Partial<MailboxesPort> as MailboxesPort;
  return {
    name: 'mongodb-messages',
    users,
    mailboxes,
    documents: missing as never,
    messages: new MongoMessages(c, changes, blobs),
    search: new MongoSearch(c),
    blobs,
    changes,
    ephemeral,
    ping: async () => undefined,
    close: async () => {
      await blobs.close();
    },
  };
}

interface Opened {
  client: MongoClient;
  db: Db;
  c: MongoCollections;
  close(): Promise<void>;
}

async function openDb(): Promise<Opened> {
  const server = await sharedMongo();
  const database = await server.database();
  const client = new MongoClient(database.url, { serverMonitoringMode: 'poll' });
  await client.connect();
  const db = client.db(database.name);
  const c = collections(db);
  await ensureIndexes(c);
  return {
    client,
    db,
    c,
    async close() {
      await client.close();
      await database.drop();
    },
  };
}

// The contract's message, blob, change-log, search and page tests (the accounts side waits for users.ts / mailboxes.ts).
storageContract('mongodb (messages harness)', async () => {
  const o = await openDb();
  const storage = harness(o.c);
  return {
    storage,
    async cleanup() {
      await storage.close();
      await o.close();
    },
  };
});

/** Runs `fn` on a fresh database, dropped after. */
async function withDb(fn: (o: Opened) => Promise<void>): Promise<void> {
  const o = await openDb();
  try {
    await fn(o);
  } finally {
    await o.close();
  }
}

/** Bytes as a base64 body in 76-character lines (how attachments arrive). */
function base64Body(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n';
}

async function setup(o: Opened, s: StoragePorts = harness(o.c)) {
  const user = await s.users.create({ username: 'alice', passwordHash: null });
  const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
  return { s, user, inbox };
}

describe('mongodb messages: what only this backend has', () => {
  it('orders concurrent appends of two port instances on one database: UIDs seen in order through the change log', () =>
    withDb(async (o) => {
      const a = harness(o.c);
      const b = harness(o.c);
      const { user, inbox } = await setup(o, a);
      const rounds = 3;
      const seen: number[] = [];
      let cursor = 0;
      let loadedThrough = 0;
      // a reader that follows the log as the shared mailbox index does: entries since its cursor, then the
      // messages its cursor covers above what it loaded
      const follow = async (): Promise<void> => {
        const entries = await a.changes.since(user.id, cursor, { mailboxId: inbox.id });
        if (entries.length > 0) cursor = entries[entries.length - 1]!.id;
        const cols = await a.messages.indexColumns(inbox.id, { afterUid: loadedThrough, throughChange: cursor });
        for (let i = 0; i < cols.count; i++) seen.push(cols.uids[i]!);
        if (cols.count > 0) loadedThrough = cols.uids[cols.count - 1]!;
        const exists = entries.filter((e) => e.type === 'exists').map((e) => e.uid!);
        assert.ok(exists.every((uid) => uid <= loadedThrough), 'every exists entry read has its message loaded');
      };
      for (let r = 0; r < rounds; r++) {
        const writes = Array.from({ length: 10 }, async (_, i) => {
          const s = i % 2 ? a : b;
          const message = await fakeMessage(s.blobs, simpleMessage({ subject: `r${r} m${i}` }));
          return s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
        });
        // the reader runs while the writers do
        const reading = (async () => {
          for (let k = 0; k < 5; k++) {
            await follow();
            await new Promise((r) => setTimeout(r, 1));
          }
        })();
        await Promise.all([...writes, reading]);
      }
      await follow();
      assert.deepEqual(seen, Array.from({ length: rounds * 10 }, (_, i) => i + 1), 'each UID once, in order, none missed');
    }));

  it('stores a blob two messages share once, and frees it only in collect after the last reference goes', () =>
    withDb(async (o) => {
      const { s, user, inbox } = await setup(o);
      const body = noise(300_000, 5);
      const raw = (subject: string) => simpleMessage({ subject, body: base64Body(body) });
      const m1 = await fakeMessage(s.blobs, raw('one'), { blobBody: true });
      const m2 = await fakeMessage(s.blobs, raw('two'), { blobBody: true });
      await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1, message: m1 });
      await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 2, message: m2 });
      const docs = await o.c.blobs.find({}).toArray();
      assert.equal(docs.length, 1, 'the second staged copy was dropped at commit');
      assert.equal(docs[0]!.refs, 2);
      assert.equal(docs[0]!.state, 'live');
      assert.equal(await o.c.blobPieces.countDocuments({ blob: { $ne: docs[0]!._id } }), 0, 'no pieces of the dropped copy');
      assert.equal(await o.c.blobPieces.countDocuments({ blob: docs[0]!._id }), docs[0]!.pieces);
      await s.messages.expunge(inbox.id, [1, 2]);
      assert.equal((await o.c.blobs.findOne({ _id: docs[0]!._id }))?.refs, 0, 'released, not freed');
      assert.equal(await s.blobs.collect(), 1);
      assert.equal(await o.c.blobs.countDocuments({}), 0);
      assert.equal(await o.c.blobPieces.countDocuments({}), 0);
    }));

  it('reads a byte range from the pieces that hold it, never the whole blob', () =>
    withDb(async (o) => {
      const reads: number[] = [];
      const { s, user, inbox } = await setup(o, harness(o.c, { onPiecesRead: (_, n) => reads.push(n) }));
      const data = noise(1_200_000, 9); // incompressible: about five pieces
      const writer = s.blobs.stage();
      for (let at = 0; at < data.length; at += 100_000) await writer.write(data.slice(at, at + 100_000));
      const staged = await writer.finish();
      const message = await fakeMessage(s.blobs, simpleMessage());
      message.content.segments.push({ length: data.length, blob: staged.hash });
      message.blobs.push(staged);
      await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1, message });
      const doc = (await o.c.blobs.findOne({ hash: staged.hash }))!;
      assert.ok(doc.pieces >= 4, `${doc.pieces} pieces`);
      assert.equal(Math.ceil(doc.storedSize / BLOB_PIECE_SIZE), doc.pieces);

      reads.length = 0;
      const start = 600_000;
      assert.deepEqual(await collect(s.blobs.read(staged.hash, start, start + 1000)), data.slice(start, start + 1000));
      const fetched = reads.reduce((sum, n) => sum + n, 0);
      assert.ok(fetched <= 3, `fetched ${fetched} pieces (the footer's and the chunk's) of ${doc.pieces}`);
      reads.length = 0;
      assert.deepEqual(await collect(s.blobs.read(staged.hash)), data);
      assert.equal(reads.reduce((sum, n) => sum + n, 0), doc.pieces, 'the whole blob: each piece fetched once');
    }));

  it('keeps bytes in write-once documents: a flag change or a copy rewrites no content piece', () =>
    withDb(async (o) => {
      const { s, user, inbox } = await setup(o);
      const arch = await s.mailboxes.create(user.id, { path: 'Archive' });
      // base64 of noise: deflate keeps about 3/4 of it, so the inline bytes take two pieces
      const raw = simpleMessage({ body: base64Body(noise(1_200_000, 4)) });
      const message = await fakeMessage(s.blobs, raw);
      const r = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1, message });
      const doc = (await o.c.messages.findOne({ _id: objectId(r.id)! }))!;
      assert.equal(doc.inline.size, message.content.inline.byteLength);
      assert.equal(doc.inline.deflated, true);
      assert.equal(doc.inline.pieces, 2);
      assert.equal(await o.c.messageContent.countDocuments({ message: doc._id }), doc.inline.pieces);
      assert.equal(Object.values(doc).some((v) => v instanceof Uint8Array || (v as { _bsontype?: string } | null)?._bsontype === 'Binary'), false, 'no bytes in the message document');
      const before = await o.c.messageContent.find({ message: doc._id }).toArray();

      await s.messages.setFlags(inbox.id, [r.uid], { action: 'add', flags: ['\\Seen', 'Work'] });
      await s.messages.setFlags(inbox.id, [r.uid], { action: 'remove', flags: ['Work'] });
      await s.messages.copy(inbox.id, [r.uid], arch.id);
      const afterFlags = await o.c.messageContent.find({ message: doc._id }).toArray();
      assert.deepEqual(afterFlags, before, 'the pieces are as written');
      for (const [mailbox, uid] of [
        [inbox.id, r.uid],
        [arch.id, 1],
      ] as const) {
        const m = (await s.messages.get(mailbox, uid))!;
        assert.equal(text(await messageBytes((await s.messages.content(m.id))!, s.blobs)), raw);
      }
    }));

  it('concurrent flag changes of one message from two instances both apply, each under its own modseq', () =>
    withDb(async (o) => {
      const a = harness(o.c);
      const b = harness(o.c);
      const { user, inbox } = await setup(o, a);
      await a.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1, message: await fakeMessage(a.blobs, simpleMessage()) });
      const results = await Promise.all([
        a.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Seen'] }),
        b.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['Todo'] }),
        a.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Flagged'] }),
      ]);
      const m = (await a.messages.get(inbox.id, 1))!;
      assert.deepEqual([...m.flags].sort(), ['Todo', '\\Flagged', '\\Seen']);
      const modseqs = results.map((r) => r.changed[0]!.modseq);
      assert.equal(new Set(modseqs).size, 3);
      assert.equal(m.modseq, Math.max(...modseqs));
      assert.equal((await a.mailboxes.counters(inbox.id)).unseen, 0);
    }));
});
