/**
 * MessagesPort.page's part of the storage contract (storage-contract.ts runs it on every backend): one page of a
 * mailbox's index by UID in either order, from either side of a cursor, filtered to unseen or flagged messages,
 * with the filtered total and whether more lies on each side.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MessagePage } from '../../storage/ports.ts';
import { fakeMessage } from './fake-message.ts';
import type { StorageFactory } from './storage-contract.ts';

const uids = (page: MessagePage): number[] => page.entries.map((e) => e.uid);

export function pageContract(open: StorageFactory): void {
  describe('message pages', () => {
    it('reads one page by UID either way, from either side of a cursor, with filters and totals', async () => {
      const h = await open();
      try {
        const s = h.storage;
        const user = await s.users.create({ username: 'pager', passwordHash: null });
        const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
        const other = await s.mailboxes.create(user.id, { path: 'Other' });
        const flagsOf = (i: number): string[] => [...(i % 2 === 0 ? ['\\Seen'] : []), ...(i % 3 === 0 ? ['\\Flagged'] : [])];
        for (let i = 1; i <= 7; i++) {
          const message = await fakeMessage(s.blobs, `Subject: m${i}\r\n\r\nbody ${i}\r\n`);
          await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: flagsOf(i), internalDate: 1_700_000_000_000 + i, message });
        }
        await s.messages.append({ userId: user.id, mailboxId: other.id, flags: [], internalDate: 1, message: await fakeMessage(s.blobs, 'Subject: x\r\n\r\nx\r\n') });
        await s.messages.expunge(inbox.id, [4]);

        const first = await s.messages.page(inbox.id, { order: 'desc', limit: 3 });
        assert.deepEqual([uids(first), first.total, first.earlier, first.later], [[7, 6, 5], 6, false, true]);
        assert.deepEqual(first.entries[1], { uid: 6, modseq: first.entries[1]!.modseq, flags: ['\\Seen', '\\Flagged'], size: first.entries[1]!.size, internalDate: 1_700_000_000_006 });
        const second = await s.messages.page(inbox.id, { order: 'desc', limit: 3, after: 5 });
        assert.deepEqual([uids(second), second.earlier, second.later], [[3, 2, 1], true, false]);
        const back = await s.messages.page(inbox.id, { order: 'desc', limit: 3, before: 3 });
        assert.deepEqual([uids(back), back.earlier, back.later], [[7, 6, 5], false, true]);
        const asc = await s.messages.page(inbox.id, { order: 'asc', limit: 2, after: 3 });
        assert.deepEqual([uids(asc), asc.earlier, asc.later], [[5, 6], true, true], 'an expunged UID is skipped');
        const ascBack = await s.messages.page(inbox.id, { order: 'asc', limit: 2, before: 5 });
        assert.deepEqual(uids(ascBack), [2, 3]);

        const unseen = await s.messages.page(inbox.id, { order: 'asc', limit: 10, unseen: true });
        assert.deepEqual([uids(unseen), unseen.total], [[1, 3, 5, 7], 4]);
        const flagged = await s.messages.page(inbox.id, { order: 'desc', limit: 1, flagged: true });
        assert.deepEqual([uids(flagged), flagged.total, flagged.later], [[6], 2, true]);
        const both = await s.messages.page(inbox.id, { order: 'asc', limit: 5, unseen: true, flagged: true });
        assert.deepEqual([uids(both), both.total], [[3], 1]);

        const past = await s.messages.page(inbox.id, { order: 'asc', limit: 3, after: 7 });
        assert.deepEqual([uids(past), past.earlier, past.later], [[], false, false]);
        assert.deepEqual(await s.messages.page('999999', { order: 'asc', limit: 3 }), { entries: [], total: 0, earlier: false, later: false });
      } finally {
        await h.cleanup();
      }
    });
  });
}
