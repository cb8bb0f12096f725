/**
 * What the storage keeps per message for OBJECTID, SAVEDATE and PREVIEW (RFC 8474, 8514, 8970), on both backends:
 * the email id (shared by copies, kept by MOVE), the thread id, the save date (append, COPY and MOVE set it), the
 * stored preview (storage/mime/preview.ts), and SearchPort.matchMeta over them. Then data written before they were:
 * SQLite's migration 15 and MongoDB documents without the fields.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingestMessage } from '../storage/mime/index.ts';
import { makePreview, previewOf } from '../storage/mime/preview.ts';
import type { StoragePorts } from '../storage/ports.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import { DATABASE_FILE, openSqliteStorage } from '../storage/sqlite/index.ts';
import { openMongoStorage } from '../storage/mongodb/index.ts';
import { copyStore } from '../storage/copy.ts';
import { objectId as mongoObjectId } from '../storage/mongodb/ids.ts';
import { sharedMongo, stopSharedMongo } from './helpers/mongo-server.ts';
import { simpleMessage } from './helpers/fake-message.ts';

after(() => stopSharedMongo());

const DAY = 86_400_000;
const WANTED = { ids: true, savedDate: true, preview: true };

async function store(s: StoragePorts, userId: string, mailboxId: string, raw: string, internalDate: number) {
  const message = await ingestMessage(new TextEncoder().encode(raw), s.blobs);
  return s.messages.append({ userId, mailboxId, flags: [], internalDate, message });
}

/**
 * The behaviour both backends share. `clock` is what the backend reads as the time now, when the test controls it
 * (SQLite's `now` option); null when the backend reads the host's clock (MongoDB): then save dates are only checked
 * to be taken at the copy and move, in order, and the day terms against the dates stored.
 */
function metadataContract(open: () => Promise<{ s: StoragePorts; clock: { now: number } | null; close(): Promise<void> }>): void {
  it('keeps the email id across COPY and MOVE, sets the save date on each, and answers matchMeta', async () => {
    const { s, clock, close } = await open();
    try {
      const user = await s.users.create({ username: 'meta', passwordHash: null });
      const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
      const archive = await s.mailboxes.create(user.id, { path: 'Archive' });
      const old = Date.UTC(2020, 0, 1);
      const first = await store(s, user.id, inbox.id, simpleMessage({ subject: 'one', messageId: '<one@x>', body: 'First line.\r\n> quoted\r\n' }), old);
      const reply = await store(s, user.id, inbox.id, simpleMessage({ subject: 'Re: one', inReplyTo: '<one@x>', body: 'Reply.\r\n' }), old);
      const saved = clock?.now ?? Date.now();
      let [a, b] = await s.messages.parts(inbox.id, [1, 2], WANTED);
      assert.equal(a!.emailId, first.id);
      assert.equal(a!.threadId, first.threadId);
      assert.equal(b!.threadId, first.threadId, 'a reply is in its parent thread');
      assert.notEqual(b!.emailId, a!.emailId);
      assert.equal(a!.preview, 'First line.');
      assert.ok(Math.abs(a!.savedDate! - saved) < DAY && a!.savedDate !== old, 'saved now, not at the internal date');
      void reply;

      if (clock) clock.now += 3 * DAY;
      await s.messages.copy(inbox.id, [1], archive.id);
      const [copy] = await s.messages.parts(archive.id, [1], WANTED);
      assert.equal(copy!.emailId, first.id, 'a copy shares the email id');
      assert.equal(copy!.threadId, first.threadId);
      assert.equal(copy!.preview, 'First line.');
      assert.ok(clock ? copy!.savedDate! > a!.savedDate! + 2 * DAY : copy!.savedDate! >= a!.savedDate!, 'the copy has its own save date');

      if (clock) clock.now += 3 * DAY;
      await s.messages.move(inbox.id, [2], archive.id);
      const [moved] = await s.messages.parts(archive.id, [2], WANTED);
      assert.equal(moved!.emailId, b!.emailId, 'MOVE keeps the email id');
      assert.ok(clock ? moved!.savedDate! > copy!.savedDate! + 2 * DAY : moved!.savedDate! >= copy!.savedDate!, 'MOVE sets a new save date');

      const day = (t: number) => Math.floor(t / DAY) * DAY;
      const answers = await s.search.matchMeta(archive.id, [
        { field: 'emailid', id: first.id },
        { field: 'emailid', id: b!.emailId! },
        { field: 'threadid', id: first.threadId },
        { field: 'savedate', op: 'on', day: day(copy!.savedDate!) },
        { field: 'savedate', op: 'before', day: day(moved!.savedDate!) },
        { field: 'savedate', op: 'since', day: day(moved!.savedDate!) },
      ]);
      const sameDay = day(copy!.savedDate!) === day(moved!.savedDate!);
      assert.ok(clock === null || !sameDay);
      assert.deepEqual(answers, [[1], [2], [1, 2], sameDay ? [1, 2] : [1], sameDay ? [] : [1], sameDay ? [1, 2] : [2]]);
      [a, b] = await s.messages.parts(inbox.id, [1, 2], WANTED);
      assert.equal(b, undefined, 'moved away');
      assert.deepEqual(await s.search.matchMeta(inbox.id, [{ field: 'emailid', id: first.id }, { field: 'threadid', id: first.threadId }]), [[1], [1]]);
      assert.deepEqual(await s.search.matchMeta(inbox.id, [{ field: 'emailid', id: 'ffffffffffffffffffffffff' }]), [[]]);
      assert.deepEqual(await s.search.matchMeta('ffffffffffffffffffffffff', [{ field: 'threadid', id: first.threadId }]), [[]]);
    } finally {
      await close();
    }
  });
}

describe('message metadata on SQLite', () => {
  metadataContract(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-meta-'));
    const clock = { now: Date.UTC(2026, 5, 1, 12) };
    const s = await openSqliteStorage({ dataDir, now: () => clock.now });
    return {
      s,
      clock,
      close: async () => {
        await s.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  });

  it('migration 15: older rows get their own id as email id, their internal date as save date, a preview from their search text', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-meta-'));
    try {
      let s = await openSqliteStorage({ dataDir });
      const user = await s.users.create({ username: 'old', passwordHash: null });
      const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
      const internal = Date.UTC(2021, 2, 3, 4, 5, 6);
      const stored = await store(s, user.id, inbox.id, simpleMessage({ body: 'Written   before\r\nthe upgrade.\r\n' }), internal);
      await s.close();
      // the database as version 14 left it: no email_id, saved_date, preview columns
      const db = await openDb(join(dataDir, DATABASE_FILE));
      db.exec('ALTER TABLE messages DROP COLUMN email_id; ALTER TABLE messages DROP COLUMN saved_date; ALTER TABLE messages DROP COLUMN preview; PRAGMA user_version = 14');
      db.close();
      s = await openSqliteStorage({ dataDir });
      try {
        const [parts] = await s.messages.parts(inbox.id, [1], WANTED);
        assert.deepEqual(parts, { uid: 1, emailId: stored.id, threadId: stored.threadId, savedDate: internal, preview: 'Written before the upgrade.' });
        assert.deepEqual(await s.search.matchMeta(inbox.id, [{ field: 'emailid', id: stored.id }, { field: 'savedate', op: 'on', day: Date.UTC(2021, 2, 3) }]), [[1], [1]]);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('storage copy keeps save dates', () => {
  it('SQLite to MongoDB: a message copied across keeps its save date, not the time of the copy', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-meta-'));
    const server = await sharedMongo();
    const database = await server.database();
    const source = await openSqliteStorage({ dataDir, now: () => Date.UTC(2022, 4, 5, 6, 7, 8) });
    const target = await openMongoStorage({ url: database.url, database: database.name });
    try {
      const user = await source.users.create({ username: 'moving', passwordHash: null });
      const inbox = await source.mailboxes.create(user.id, { path: 'INBOX' });
      await store(source, user.id, inbox.id, simpleMessage({ body: 'Carried over.\r\n' }), Date.UTC(2020, 0, 1));
      await copyStore(source, target);
      const copied = await target.users.getByUsername('moving');
      const box = await target.mailboxes.getByPath(copied!.id, 'INBOX');
      const [parts] = await target.messages.parts(box!.id, [1], WANTED);
      assert.equal(parts!.savedDate, Date.UTC(2022, 4, 5, 6, 7, 8));
      assert.equal(parts!.preview, 'Carried over.');
    } finally {
      await source.close();
      await target.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('message metadata on MongoDB', () => {
  const withDb = async () => {
    const server = await sharedMongo();
    const database = await server.database();
    const url = /serverMonitoringMode=/.test(database.url) ? database.url : `${database.url}${database.url.includes('?') ? '&' : '?'}serverMonitoringMode=poll`;
    const s = await openMongoStorage({ url, database: database.name });
    return {
      s,
      close: async () => {
        await s.close();
        await database.drop();
      },
    };
  };

  // MongoDB reads the host's clock
  metadataContract(async () => ({ ...(await withDb()), clock: null }));

  it('documents written before the fields: own id as email id, internal date as save date, preview from the search text', async () => {
    const { s, close } = await withDb();
    try {
      const user = await s.users.create({ username: 'old', passwordHash: null });
      const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
      const internal = Date.UTC(2021, 2, 3, 4, 5, 6);
      const stored = await store(s, user.id, inbox.id, simpleMessage({ body: 'Written before\r\n\r\nthe upgrade.\r\n' }), internal);
      await s.collections.messages.updateOne({ _id: mongoObjectId(stored.id)! }, { $unset: { emailId: '', savedDate: '', preview: '' } });
      const [parts] = await s.messages.parts(inbox.id, [1], WANTED);
      assert.deepEqual(parts, { uid: 1, emailId: stored.id, threadId: stored.threadId, savedDate: internal, preview: 'Written before the upgrade.' });
      assert.deepEqual(await s.search.matchMeta(inbox.id, [{ field: 'emailid', id: stored.id }, { field: 'savedate', op: 'on', day: Date.UTC(2021, 2, 3) }]), [[1], [1]]);
      // a copy of such a message shares its email id
      const archive = await s.mailboxes.create(user.id, { path: 'Archive' });
      await s.messages.copy(inbox.id, [1], archive.id);
      assert.deepEqual(await s.search.matchMeta(archive.id, [{ field: 'emailid', id: stored.id }]), [[1]]);
    } finally {
      await close();
    }
  });
});

describe('previews (storage/mime/preview.ts)', () => {
  it('collapses white space, leaves out quotes and the signature, cuts at 256 characters', () => {
    assert.equal(previewOf('  Hello\r\n\r\n\tthere,  friend.\r\n'), 'Hello there, friend.');
    assert.equal(previewOf('On Monday Bob wrote:\n> old text\n>> older\nMy answer.\n-- \nBob\nExample Corp'), 'On Monday Bob wrote: My answer.');
    const long = 'word '.repeat(100);
    assert.equal(previewOf(long).length, 256);
    assert.equal(Array.from(previewOf('😀'.repeat(300))).length, 256, 'code points, never half a surrogate pair');
    assert.equal(previewOf('a\u0000b\u0007c'), 'a b c');
    assert.equal(makePreview(['', '   ', 'Second part']), 'Second part');
    assert.equal(makePreview([]), '');
  });

  it('is made at ingest from the text part (text/plain of an alternative, HTML as text), never the attachment names', async () => {
    const { MemoryBlobs } = await import('./helpers/memory-blobs.ts');
    const ingest = async (raw: string) => (await ingestMessage(new TextEncoder().encode(raw), new MemoryBlobs())).preview;
    const alternative =
      'Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n' +
      'Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nPlain   version\r\n--a\r\n' +
      'Content-Type: text/html\r\n\r\n<p>HTML version</p>\r\n--a--\r\n--m\r\nContent-Type: application/pdf; name=report.pdf\r\n' +
      'Content-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--m--\r\n';
    assert.equal(await ingest(alternative), 'Plain version');
    assert.equal(await ingest('Subject: h\r\nContent-Type: text/html\r\n\r\n<html><body><h1>Title</h1><p>Some <b>bold</b> text</p></body></html>\r\n'), 'TITLE Some bold text');
    assert.equal(await ingest('Subject: q\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n'), 'Grüße');
    assert.equal(await ingest('Subject: none\r\nContent-Type: image/png\r\n\r\nxxxx\r\n'), '');
  });
});
