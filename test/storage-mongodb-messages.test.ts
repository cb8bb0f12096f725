/**
 * What only the MongoDB backend's messages, blobs and search have (the storage contract runs in
 * storage-mongodb.test.ts): writers on two instances sharing one database, blobs stored once in pieces and read by
 * range, bytes in write-once documents. On the stand-in, or the server WILDDUCK_TEST_MONGODB_URL names.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Binary, ObjectId } from 'mongodb';
import type { StoragePorts } from '../storage/ports.ts';
import { BLOB_PIECE_SIZE, MongoBlobs } from '../storage/mongodb/blobs.ts';
import { openMongoStorage } from '../storage/mongodb/index.ts';
import type { MongoStorage } from '../storage/mongodb/index.ts';
import { objectId } from '../storage/mongodb/ids.ts';
import { collect, fakeMessage, messageBytes, simpleMessage, text } from './helpers/fake-message.ts';
import { sharedMongo, stopSharedMongo } from './helpers/mongo-server.ts';
import { noise } from './helpers/storage-contract.ts';

after(() => stopSharedMongo());

interface Instances {
  /** A storage on the database, as one server instance opens it. */
  open(): Promise<MongoStorage>;
}

/** Runs `fn` on a fresh database, where any number of instances may open a storage; all closed and dropped after. */
async function withDb(fn: (db: Instances) => Promise<void>): Promise<void> {
  const server = await sharedMongo();
  const database = await server.database();
  const opened: MongoStorage[] = [];
  try {
    await fn({
      async open() {
        // the stand-in answers no streaming heartbeat: polled, or the driver clears its pool (fails what is in flight)
        const url = /serverMonitoringMode=/.test(database.url) ? database.url : `${database.url}${database.url.includes('?') ? '&' : '?'}serverMonitoringMode=poll`;
        const s = await openMongoStorage({ url, database: database.name, gapWaitMs: 2000 });
        opened.push(s);
        return s;
      },
    });
  } finally {
    for (const s of opened) await s.close();
    await database.drop();
  }
}

/** Bytes as a base64 body in 76-character lines (how attachments arrive). */
function base64Body(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n';
}

async function setup(s: StoragePorts) {
  const user = await s.users.create({ username: 'alice', passwordHash: null });
  const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
  return { user, inbox };
}

describe('mongodb messages: what only this backend has', () => {
  it('orders concurrent appends of two port instances on one database: UIDs seen in order through the change log', () =>
    withDb(async (db) => {
      const a = await db.open();
      const b = await db.open();
      const { user, inbox } = await setup(a);
      const rounds = 3;
      const before = await a.changes.latest(user.id);
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
      // a cursor from before the writes covers none of their messages, the latest all of them
      assert.equal((await b.messages.indexColumns(inbox.id, { throughChange: before })).count, 0);
      assert.equal((await b.messages.indexColumns(inbox.id, { throughChange: await b.changes.latest(user.id) })).count, rounds * 10);
    }));

  it('stores a blob two messages share once, and frees it only in collect after the last reference goes', () =>
    withDb(async (db) => {
      const s = await db.open();
      const o = { c: s.collections };
      const { user, inbox } = await setup(s);
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

  it('collect deletes pieces whose blob document is gone and keeps the pieces of live blobs', () =>
    withDb(async (db) => {
      const s = await db.open();
      const o = { c: s.collections };
      const { user, inbox } = await setup(s);
      const m = await fakeMessage(s.blobs, simpleMessage({ subject: 'kept', body: base64Body(noise(300_000, 6)) }), { blobBody: true });
      await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1, message: m });
      const live = (await o.c.blobs.findOne({}))!;
      // a crash between deleting a freed blob's document and its pieces leaves these
      const gone = [new ObjectId(), new ObjectId()];
      for (const blob of gone) await o.c.blobPieces.insertMany([0, 1].map((n) => ({ _id: new ObjectId(), blob, n, data: new Binary(new Uint8Array([n])) })));
      assert.equal(await s.blobs.collect(), 0);
      assert.equal(await o.c.blobPieces.countDocuments({ blob: { $in: gone } }), 0, 'orphaned pieces removed');
      assert.equal(await o.c.blobPieces.countDocuments({ blob: live._id }), live.pieces, 'the live blob keeps its pieces');
    }));

  it('reads a byte range from the pieces that hold it, never the whole blob', () =>
    withDb(async (db) => {
      const s = await db.open();
      const o = { c: s.collections };
      const { user, inbox } = await setup(s);
      const reads: number[] = [];
      // a reader of the same database that counts the pieces it fetches
      const reader = new MongoBlobs(o.c, { onPiecesRead: (_, n) => reads.push(n) });
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
      assert.deepEqual(await collect(reader.read(staged.hash, start, start + 1000)), data.slice(start, start + 1000));
      const fetched = reads.reduce((sum, n) => sum + n, 0);
      assert.ok(fetched <= 3, `fetched ${fetched} pieces (the footer's and the chunk's) of ${doc.pieces}`);
      reads.length = 0;
      assert.deepEqual(await collect(reader.read(staged.hash)), data);
      assert.equal(reads.reduce((sum, n) => sum + n, 0), doc.pieces, 'the whole blob: each piece fetched once');
    }));

  it('keeps bytes in write-once documents: a flag change or a copy rewrites no content piece', () =>
    withDb(async (db) => {
      const s = await db.open();
      const o = { c: s.collections };
      const { user, inbox } = await setup(s);
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
    withDb(async (db) => {
      const a = await db.open();
      const b = await db.open();
      const { user, inbox } = await setup(a);
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
