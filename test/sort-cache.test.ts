/**
 * The shared SORT / THREAD data cache (storage/mailbox-index/sort-cache.ts): its bound and least-recently-used
 * eviction by mailbox, reads of only what it lacks, and (through the IMAP harness, on either backend) SORT and THREAD
 * answering the same from the cache as from storage.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SortDataCache } from '../storage/mailbox-index/sort-cache.ts';
import type { Id, MessageSortData, MessagesPort, SortDataWanted } from '../storage/ports.ts';
import { sortMessages, sortDataWanted, SORT_KEYS } from '../storage/sort/sort.ts';
import { formatThread, threadMessages, THREAD_ALGORITHMS } from '../storage/sort/thread.ts';
import { appendMessage, imapTestAppPerSuite, login } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';

/** A sortData port over `mailboxes` (id → highest UID, UIDs 1..n), recording every call. */
function fakePort(mailboxes: Record<string, number>) {
  const calls: Array<{ mailboxId: Id; uids: number[]; wanted: SortDataWanted }> = [];
  const port: Pick<MessagesPort, 'sortData'> = {
    sortData: async (mailboxId, uids, wanted = {}) => {
      calls.push({ mailboxId, uids: [...uids], wanted });
      const n = mailboxes[mailboxId] ?? 0;
      const out: MessageSortData[] = [];
      for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
        if (uid < 1 || uid > n) continue;
        const data: MessageSortData = { uid, internalDate: uid * 1000, size: 100 + uid };
        if (wanted.subject || wanted.threading) data.subject = `Subject ${uid % 3}`;
        if (wanted.date || wanted.threading) data.headerDate = 5000 - uid;
        if (wanted.from) data.from = { name: null, adl: null, mailbox: `u${uid}`, host: 'example.com' };
        if (wanted.threading) {
          data.messageId = `<${mailboxId}.${uid}@x>`;
          data.inReplyTo = null;
          data.references = uid > 1 ? `<${mailboxId}.${uid - 1}@x>` : null;
        }
        out.push(data);
      }
      return out;
    },
  };
  return { port, calls };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SortDataCache', () => {
  it('reads storage once per message and field group; later calls are served from memory', async () => {
    const { port, calls } = fakePort({ a: 10 });
    const cache = new SortDataCache(port, { maxMessages: 100 });
    const first = await cache.sortData('a', range(1, 10), { subject: true });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.uids, range(1, 10));
    assert.equal(cache.size, 10);
    const again = await cache.sortData('a', [3, 1, 2, 3], { subject: true });
    assert.equal(calls.length, 1, 'no storage read for held messages');
    assert.deepEqual(again.map((m) => m.uid), [1, 2, 3], 'ascending, each once, as sortData answers');
    assert.equal(again[0], first[0], 'the same object: keys derived for it are reused');
    // a field group not held yet: read for those messages only, added to the same objects
    const dated = await cache.sortData('a', [2, 4], { date: true });
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1]!.uids, [2, 4]);
    assert.equal(dated[0], first[1]);
    assert.equal(dated[0]!.headerDate, 4998);
    assert.equal(dated[0]!.subject, 'Subject 2', 'what it held stays');
    await cache.sortData('a', [2, 4], { subject: true, date: true });
    assert.equal(calls.length, 2, 'both groups held now');
  });

  it('leaves out UIDs storage does not have, and asks again for them', async () => {
    const { port, calls } = fakePort({ a: 3 });
    const cache = new SortDataCache(port, { maxMessages: 100 });
    assert.deepEqual((await cache.sortData('a', [2, 3, 4, 5])).map((m) => m.uid), [2, 3]);
    assert.deepEqual((await cache.sortData('a', [2, 3, 4])).map((m) => m.uid), [2, 3]);
    assert.deepEqual(calls[1]!.uids, [4]);
    assert.equal(cache.size, 2);
    assert.deepEqual(await cache.sortData('a', []), []);
  });

  it('stays within its bound by dropping whole mailboxes, least recently used first', async () => {
    const { port, calls } = fakePort({ a: 4, b: 4, c: 4 });
    const cache = new SortDataCache(port, { maxMessages: 8 });
    await cache.sortData('a', range(1, 4));
    await cache.sortData('b', range(1, 4));
    assert.equal(cache.size, 8);
    await cache.sortData('a', [1]); // a is now the most recently used
    await cache.sortData('c', range(1, 4));
    assert.equal(cache.size, 8);
    assert.deepEqual(cache.mailboxes(), ['a', 'c'], 'b, the least recently used, went');
    assert.equal(cache.held('b'), 0);
    const before = calls.length;
    await cache.sortData('a', range(1, 4));
    assert.equal(calls.length, before, 'a was kept');
    await cache.sortData('b', range(1, 2));
    assert.equal(calls.length, before + 1, 'b is read again');
    assert.deepEqual(cache.mailboxes(), ['a', 'b'], 'c, used before a, went this time');
  });

  it('holds only as much of a mailbox larger than the bound as fits, and still answers in full', async () => {
    const { port, calls } = fakePort({ big: 20, a: 2 });
    const cache = new SortDataCache(port, { maxMessages: 5 });
    await cache.sortData('a', range(1, 2));
    const all = await cache.sortData('big', range(1, 20), { from: true });
    assert.deepEqual(all.map((m) => m.uid), range(1, 20));
    assert.ok(all.every((m) => m.from?.mailbox === `u${m.uid}`));
    assert.equal(cache.size, 5);
    assert.equal(cache.held('a'), 0, 'the other mailbox made room first');
    assert.equal(cache.held('big'), 5);
    const again = await cache.sortData('big', range(1, 20), { from: true });
    assert.deepEqual(again.map((m) => m.uid), range(1, 20));
    assert.deepEqual(calls[calls.length - 1]!.uids, range(6, 20), 'only the ones not held are read');
    assert.equal(cache.size, 5);
  });

  it('forgets a dropped mailbox; a bound of 0 holds nothing', async () => {
    const { port, calls } = fakePort({ a: 3, b: 3 });
    const cache = new SortDataCache(port, { maxMessages: 10 });
    await cache.sortData('a', range(1, 3));
    await cache.sortData('b', range(1, 3));
    cache.dropMailbox('a');
    assert.equal(cache.size, 3);
    assert.deepEqual(cache.mailboxes(), ['b']);
    const none = new SortDataCache(port, { maxMessages: 0 });
    const before = calls.length;
    assert.equal((await none.sortData('a', range(1, 3))).length, 3);
    await none.sortData('a', range(1, 3));
    assert.equal(calls.length, before + 2);
    assert.equal(none.size, 0);
  });

  it('gives SORT and THREAD the same answers as uncached data, repeatedly (derived keys memoised)', async () => {
    const { port } = fakePort({ a: 30 });
    const cache = new SortDataCache(port, { maxMessages: 100 });
    const all = { subject: true, date: true, from: true, to: true, cc: true, threading: true };
    for (let round = 0; round < 2; round++) {
      for (const key of SORT_KEYS) {
        const criteria = [{ key, reverse: round === 1 }];
        const expected = sortMessages(await port.sortData('a', range(1, 30), sortDataWanted(criteria)), criteria);
        assert.deepEqual(sortMessages(await cache.sortData('a', range(1, 30), sortDataWanted(criteria)), criteria), expected, key);
      }
      for (const algorithm of THREAD_ALGORITHMS) {
        const expected = threadMessages(await port.sortData('a', range(1, 30), all), algorithm).map((n) => formatThread(n, (u) => u));
        assert.deepEqual(threadMessages(await cache.sortData('a', range(1, 30), all), algorithm).map((n) => formatThread(n, (u) => u)), expected, algorithm);
      }
    }
  });
});

const MAILS = [
  'From: Zoe <zoe@example.com>\r\nTo: b@example.com\r\nSubject: Lunch\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <lunch@x>\r\n\r\nhi\r\n',
  'From: adam@example.com\r\nTo: =?utf-8?q?=C3=84rger?= <c@example.com>\r\nCc: x@example.com\r\nSubject: Re: Lunch\r\nDate: Mon, 1 Jan 2024 13:00:00 +0000\r\nMessage-ID: <lunch2@x>\r\nReferences: <lunch@x>\r\n\r\nhello there\r\n',
  'From: Mike <carl@example.com>\r\nTo: a@example.com\r\nSubject: [team] Budget\r\nDate: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <budget@x>\r\n\r\nx\r\n',
  'From: bob@example.com\r\nTo: d@example.com\r\nSubject: Re: Lunch\r\nDate: Mon, 1 Jan 2024 14:00:00 +0000\r\nMessage-ID: <lunch3@x>\r\nIn-Reply-To: <lunch2@x>\r\n\r\nyes\r\n',
  'From: eve@example.com\r\nSubject: Fwd: budget\r\nDate: Sun, 31 Dec 2023 10:00:00 -0500\r\nMessage-ID: <other@x>\r\n\r\nfwd\r\n',
];

const COMMANDS = [
  ...SORT_KEYS.map((key) => `UID SORT (${key.toUpperCase()}) UTF-8 ALL`),
  'UID SORT (SUBJECT REVERSE DATE) UTF-8 ALL',
  'UID SORT (REVERSE FROM) UTF-8 NOT UID 2',
  'SORT (DISPLAYTO SIZE) UTF-8 ALL',
  ...THREAD_ALGORITHMS.map((a) => `UID THREAD ${a.toUpperCase()} UTF-8 ALL`),
  'THREAD REFERENCES UTF-8 SUBJECT lunch',
];

describe('SORT and THREAD through the shared cache (IMAP)', () => {
  const t = imapTestAppPerSuite();
  let c: TestClient;
  let mailboxId: Id;
  before(async () => {
    c = await login(t.app);
    await c.command('CREATE Cached');
    for (const m of MAILS) assert.match(await appendMessage(c, 'Cached', m), /^OK/);
    await c.command('SELECT Cached');
    mailboxId = (await t.app.storage.mailboxes.getByPath(t.userId, 'Cached'))!.id;
  });
  after(() => c.end());

  it('answers the same cold, from the cache, and with the cache switched off', async () => {
    const messages = t.app.storage.messages;
    const read = messages.sortData;
    let reads = 0;
    messages.sortData = (...args) => {
      reads++;
      return read.apply(messages, args);
    };
    try {
      t.app.sortCache.clear();
      const cold: string[][] = [];
      for (const command of COMMANDS) cold.push(await c.command(command));
      assert.ok(reads > 0, 'the first commands read storage');
      assert.equal(t.app.sortCache.held(mailboxId), MAILS.length);
      reads = 0;
      for (const [i, command] of COMMANDS.entries()) assert.deepEqual(await c.command(command), cold[i], command);
      assert.equal(reads, 0, 'every answer came from the cache');
      // and what the uncached path answers (the cache emptied before each command)
      for (const [i, command] of COMMANDS.entries()) {
        t.app.sortCache.clear();
        assert.deepEqual(await c.command(command), cold[i], command);
      }
      assert.equal(cold[0]![0], '* SORT 1 2 3 4 5', 'ARRIVAL');
      assert.equal(cold[SORT_KEYS.indexOf('subject')]![0], '* SORT 3 5 1 2 4');
      assert.equal(cold[SORT_KEYS.length + 3]![0], '* THREAD (3 5)(1 2 4)', 'REFERENCES: 4 linked by In-Reply-To, 5 (Fwd:) merged under 3 by subject');
    } finally {
      messages.sortData = read;
    }
  });

  it('serves a new message from storage and the rest from the cache; an expunged one is left out', async () => {
    await c.command('UID SORT (DATE) UTF-8 ALL');
    assert.match(await appendMessage(c, 'Cached', 'From: a@b.c\r\nSubject: Later\r\nDate: Tue, 2 Jan 2024 00:00:00 +0000\r\n\r\nlater\r\n'), /^OK/);
    await c.command('NOOP');
    assert.equal((await c.command('UID SORT (DATE) UTF-8 ALL'))[0], '* SORT 5 3 1 2 4 6');
    assert.equal(t.app.sortCache.held(mailboxId), MAILS.length + 1);
    await c.command('UID STORE 3 +FLAGS.SILENT (\\Deleted)');
    await c.command('EXPUNGE');
    assert.equal((await c.command('UID SORT (DATE) UTF-8 ALL'))[0], '* SORT 5 1 2 4 6');
    assert.equal((await c.command('UID THREAD REFERENCES UTF-8 ALL'))[0], '* THREAD (5)(1 2 4)(6)');
  });

  it('forgets a mailbox when it is deleted', async () => {
    assert.ok(t.app.sortCache.held(mailboxId) > 0);
    await c.command('SELECT INBOX');
    assert.match((await c.command('DELETE Cached')).at(-1)!, /OK/);
    assert.equal(t.app.sortCache.held(mailboxId), 0);
  });
});
