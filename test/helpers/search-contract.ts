/**
 * The search port's part of the storage contract (storage-contract.ts runs it on every backend): case-insensitive
 * substrings of any length on decoded text, fields kept apart (BODY never sees a header, FROM sees parsed
 * addresses), and an index that follows every append, copy, move, expunge and mailbox deletion.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MailboxRecord, SearchField, StoragePorts, UserRecord } from '../../storage/ports.ts';
import { fakeMessage } from './fake-message.ts';
import type { StorageFactory } from './storage-contract.ts';

interface SearchFixture {
  s: StoragePorts;
  user: UserRecord;
  inbox: MailboxRecord;
  /** Appends a raw message (header lines, then the body) and returns its UID. */
  add(mailbox: MailboxRecord, headers: string[], body: string, internalDate?: number): Promise<number>;
  /** UIDs matching one term. */
  find(mailbox: MailboxRecord, field: SearchField, value: string): Promise<number[]>;
}

async function withSearch(open: StorageFactory, fn: (f: SearchFixture) => Promise<void>): Promise<void> {
  const h = await open();
  try {
    const s = h.storage;
    const user = await s.users.create({ username: 'searcher', passwordHash: null });
    const inbox = await s.mailboxes.create(user.id, { path: 'INBOX', specialUse: '\\Inbox' });
    await fn({
      s,
      user,
      inbox,
      async add(mailbox, headers, body, internalDate = Date.now()) {
        const raw = [...headers, 'Content-Type: text/plain; charset=utf-8'].join('\r\n') + '\r\n\r\n' + body;
        const message = await fakeMessage(s.blobs, raw);
        return (await s.messages.append({ userId: user.id, mailboxId: mailbox.id, flags: [], internalDate, message })).uid;
      },
      async find(mailbox, field, value) {
        const [uids] = await s.search.match(mailbox.id, [{ field, value }]);
        return uids!;
      },
    });
  } finally {
    await h.cleanup();
  }
}

/** Three messages most tests search. */
async function corpus(f: SearchFixture): Promise<void> {
  await f.add(
    f.inbox,
    ['From: Jürgen Müller <juergen@example.org>', 'To: "Bob, B." <bob@example.com>', 'Cc: carol@example.net', 'Subject: Quarterly Report', 'X-Ticket: ABC-1234'],
    'The quick brown fox jumps over the lazy dog.\r\nStraße und Grüße.\r\n',
  );
  await f.add(
    f.inbox,
    ['From: <user-from (comment)@ (comment) domain.org>', 'To: team@example.com', 'Bcc: hidden@example.com', 'Subject: =?utf-8?b?0J/RgNC40LLQtdGCINC80LjRgA==?='],
    'Привет, мир! Встреча в пятницу.\r\n',
  );
  await f.add(f.inbox, ['From: zed@example.com', 'To: bob@example.com'], 'x\r\n');
}

export function searchContract(open: StorageFactory): void {
  describe('search port', () => {
    it('finds case-insensitive substrings of decoded header fields', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'quarterly REPORT'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'ter'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'ПРИВЕТ'), [2], 'RFC 2047-decoded, Cyrillic case-folded');
        assert.deepEqual(await f.find(f.inbox, 'from', 'MÜLLER'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'from', 'juergen@example'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'to', 'bob@'), [1, 3]);
        assert.deepEqual(await f.find(f.inbox, 'to', 'Bob, B.'), [1], 'display names are searchable');
        assert.deepEqual(await f.find(f.inbox, 'cc', 'carol'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'bcc', 'hidden'), [2]);
        assert.deepEqual(await f.find(f.inbox, 'bcc', 'carol'), []);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'no such subject'), []);
      }));

    it('matches addresses as parsed: comments removed, whitespace inside the address dropped', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'from', 'user-from@domain.org'), [2]);
        assert.deepEqual(await f.find(f.inbox, 'from', 'comment'), [], 'comments are not part of the address');
        assert.deepEqual(await f.find(f.inbox, 'text', 'user-from (comment)'), [2], 'TEXT still sees the header as written');
      }));

    it('answers needles of one and two characters, ASCII or not', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'body', 'X'), [1, 3]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'fo'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'QU'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'ß'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'МИ'), [2]);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'пр'), [2]);
        assert.deepEqual(await f.find(f.inbox, 'from', 'ü'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'cc', '@'), [1]);
      }));

    it('matches phrases across words and punctuation, never across fields; FTS syntax in a needle is plain text', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'body', 'brown fox jumps'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'fox brown'), []);
        assert.deepEqual(await f.find(f.inbox, 'body', 'мир! встреча'), [2]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'dog.'), [1]);
        for (const needle of ['"', '"quick"', 'quick*', 'NEAR(quick fox)', 'quick AND fox', '-fox', 'body:quick', '{body}: x', "it's"]) {
          assert.deepEqual(await f.find(f.inbox, 'body', needle), [], needle);
        }
        assert.deepEqual(await f.find(f.inbox, 'text', 'ABC-1234'), [1]);
      }));

    it('keeps BODY to the body and lets TEXT see headers and body', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'body', 'lazy dog'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'text', 'lazy dog'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'quarterly'), [], 'the subject is not body text');
        assert.deepEqual(await f.find(f.inbox, 'body', 'juergen'), [], 'nor is From');
        assert.deepEqual(await f.find(f.inbox, 'text', 'quarterly'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'text', 'x-ticket: abc'), [1], 'any header field, as name: value');
        assert.deepEqual(await f.find(f.inbox, 'text', 'привет'), [2]);
      }));

    it('an empty needle matches messages that have the field (body and text: all)', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        assert.deepEqual(await f.find(f.inbox, 'subject', ''), [1, 2]);
        assert.deepEqual(await f.find(f.inbox, 'cc', ''), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', ''), [1, 2, 3]);
        assert.deepEqual(await f.find(f.inbox, 'text', ''), [1, 2, 3]);
      }));

    it('answers several terms at once, each for its own mailbox only', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        const other = await f.s.mailboxes.create(f.user.id, { path: 'Other' });
        await f.add(other, ['From: juergen@example.org', 'Subject: other box'], 'lazy dog here too\r\n');
        const answers = await f.s.search.match(f.inbox.id, [
          { field: 'body', value: 'lazy' },
          { field: 'subject', value: 'box' },
          { field: 'from', value: 'JUERGEN' },
        ]);
        assert.deepEqual(answers, [[1], [], [1]]);
        assert.deepEqual(await f.find(other, 'body', 'lazy'), [1]);
        assert.deepEqual(await f.s.search.match('999999', [{ field: 'body', value: 'lazy' }]), [[]]);
        assert.deepEqual(await f.s.search.match('not-an-id', [{ field: 'body', value: 'lazy' }]), [[]]);
      }));

    it("answers sent dates: the Date header's calendar day (time and zone ignored), else the internal date", () =>
      withSearch(open, async (f) => {
        const day = (d: number): number => Date.UTC(2024, 0, d);
        await f.add(f.inbox, ['Date: Mon, 1 Jan 2024 23:30:00 -0500', 'Subject: a'], 'a\r\n', day(5));
        await f.add(f.inbox, ['Date: Tue, 02 Jan 2024 01:00:00 +0900', 'Subject: b'], 'b\r\n', day(5));
        await f.add(f.inbox, ['Subject: no date'], 'c\r\n', day(3) + 43_200_000);
        await f.add(f.inbox, ['Date: sometime soon', 'Subject: unreadable'], 'd\r\n', day(3));
        const sent = (op: 'before' | 'on' | 'since', d: number): Promise<number[][]> => f.s.search.matchSent(f.inbox.id, [{ op, day: day(d) }]);
        assert.deepEqual(await sent('on', 1), [[1]]);
        assert.deepEqual(await sent('before', 2), [[1]]);
        assert.deepEqual(await sent('since', 2), [[2, 3, 4]]);
        assert.deepEqual(await sent('on', 3), [[3, 4]]);
        assert.deepEqual(
          await f.s.search.matchSent(f.inbox.id, [
            { op: 'on', day: day(2) },
            { op: 'before', day: day(1) },
          ]),
          [[2], []],
        );
        const archive = await f.s.mailboxes.create(f.user.id, { path: 'Archive' });
        await f.s.messages.copy(f.inbox.id, [1], archive.id);
        await f.s.messages.move(f.inbox.id, [2], archive.id);
        assert.deepEqual(await f.s.search.matchSent(archive.id, [{ op: 'before', day: day(3) }]), [[1, 2]]);
        assert.deepEqual(await sent('before', 3), [[1]]);
        assert.deepEqual(await f.s.search.matchSent('999999', [{ op: 'on', day: day(1) }]), [[]]);
      }));

    it('follows expunge, copy, move and mailbox deletion: no stale hits, copies searchable', () =>
      withSearch(open, async (f) => {
        await corpus(f);
        const archive = await f.s.mailboxes.create(f.user.id, { path: 'Archive' });
        const trash = await f.s.mailboxes.create(f.user.id, { path: 'Trash' });
        await f.s.messages.copy(f.inbox.id, [1], archive.id);
        assert.deepEqual(await f.find(archive, 'body', 'lazy dog'), [1]);
        assert.deepEqual(await f.find(archive, 'from', 'müller'), [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'lazy dog'), [1]);

        await f.s.messages.move(f.inbox.id, [2], archive.id);
        assert.deepEqual(await f.find(f.inbox, 'subject', 'привет'), []);
        assert.deepEqual(await f.find(archive, 'subject', 'привет'), [2]);
        assert.deepEqual(await f.find(archive, 'body', 'ми'), [2], 'the short-needle path follows the move too');

        await f.s.messages.expunge(f.inbox.id, [1]);
        assert.deepEqual(await f.find(f.inbox, 'body', 'lazy dog'), []);
        assert.deepEqual(await f.find(f.inbox, 'body', 'la'), []);
        assert.deepEqual(await f.find(archive, 'body', 'lazy dog'), [1], 'the copy stays');

        await f.s.messages.copy(archive.id, [1, 2], trash.id);
        await f.s.mailboxes.delete(archive.id);
        assert.deepEqual(await f.find(archive, 'text', ''), []);
        assert.deepEqual(await f.find(trash, 'text', 'lazy dog'), [1]);
        assert.deepEqual(await f.find(trash, 'text', 'привет'), [2]);
        await f.s.users.delete(f.user.id);
        assert.deepEqual(await f.find(trash, 'text', 'lazy dog'), []);
      }));
  });
}
