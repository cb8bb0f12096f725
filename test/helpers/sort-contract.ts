/**
 * MessagesPort.sortData's part of the storage contract (storage-contract.ts runs it on every backend): what SORT and
 * THREAD read of each message (dates, size, decoded subject, the envelope's addresses, Message-ID, In-Reply-To and
 * References), only for the UIDs asked for and only the fields wanted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingestMessage } from '../../storage/mime/ingest.ts';
import type { StorageFactory } from './storage-contract.ts';

export function sortContract(open: StorageFactory): void {
  describe('sort data', () => {
    it('reads the sort and thread fields of the UIDs asked for from stored data', async () => {
      const h = await open();
      try {
        const s = h.storage;
        const user = await s.users.create({ username: 'sorter', passwordHash: null });
        const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
        const raws = [
          'From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\nTo: team: a@example.org, b@example.org;\r\nCc: c@example.org\r\n' +
            'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <one@example.org>\r\n\r\nbody\r\n',
          'From: ann@example.org\r\nSubject: Re: Grüße\r\nMessage-ID: <Two@Example.org>\r\nIn-Reply-To: <one@example.org>\r\n' +
            'References: <zero@example.org>\r\n <one@example.org>\r\n\r\nbody two\r\n',
          'Subject: three\r\n\r\nthree\r\n',
        ];
        for (const [i, raw] of raws.entries()) {
          await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1_700_000_000_000 + i, message: await ingestMessage(new TextEncoder().encode(raw), s.blobs) });
        }
        await s.messages.expunge(inbox.id, [3]);

        const bare = await s.messages.sortData(inbox.id, [1, 2]);
        assert.deepEqual(bare.map((d) => Object.keys(d).sort()), [['internalDate', 'size', 'uid'], ['internalDate', 'size', 'uid']], 'only what is wanted');
        const plain = await s.messages.sortData(inbox.id, [2, 1, 3, 99], { subject: true, date: true });
        assert.deepEqual(
          plain.map((d) => [d.uid, d.internalDate, d.headerDate, d.subject, d.size > 0, 'from' in d, 'references' in d]),
          [
            [1, 1_700_000_000_000, Date.parse('2024-01-02T09:00:00Z'), 'Grüße', true, false, false],
            [2, 1_700_000_000_001, 1_700_000_000_001, 'Re: Grüße', true, false, false],
          ],
          'UID order, expunged and unknown UIDs left out, no Date header: the internal date',
        );

        const [first, second] = await s.messages.sortData(inbox.id, [1, 2], { from: true, to: true, cc: true, threading: true });
        assert.deepEqual(first!.from, { name: '=?utf-8?q?J=C3=B6rg?=', adl: null, mailbox: 'joerg', host: 'example.org' }, 'the first address as in the ENVELOPE');
        assert.deepEqual(first!.to, { name: null, adl: null, mailbox: 'team', host: null }, "a group's start marker");
        assert.deepEqual(first!.cc, { name: null, adl: null, mailbox: 'c', host: 'example.org' });
        assert.deepEqual([second!.from?.mailbox, second!.to, second!.cc], ['ann', null, null]);
        assert.deepEqual([first!.messageId, first!.inReplyTo, first!.references], ['<one@example.org>', null, null]);
        assert.equal(second!.messageId, '<Two@Example.org>');
        assert.equal(second!.inReplyTo, '<one@example.org>');
        assert.match(second!.references!, /^<zero@example\.org> <one@example\.org>$/i, 'the References field, unfolded');

        const sparse = await s.messages.sortData(inbox.id, [1], { to: true });
        assert.deepEqual(sparse.map((d) => [d.uid, d.to?.mailbox, 'from' in d]), [[1, 'team', false]]);
        assert.deepEqual(await s.messages.sortData(inbox.id, []), []);
        assert.deepEqual(await s.messages.sortData('0000000000000000000f423f', [1]), []);
      } finally {
        await h.cleanup();
      }
    });
  });
}
