/**
 * The storage contract suite: every backend (embedded SQLite, MongoDB + Redis) runs exactly these tests.
 *
 *   storageContract('sqlite', async () => ({ storage, cleanup, reopen }))
 *
 * `open` gives a fresh, empty storage. `cleanup` closes it and removes its data. `reopen` (optional) closes the
 * storage and opens the same data again; without it the persistence test is skipped.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../storage/ports.ts';
import type { AppendResult, ChangeEntry, MailboxRecord, StoragePorts, UserRecord } from '../../storage/ports.ts';
import { collect, fakeMessage, messageBytes, simpleMessage, text } from './fake-message.ts';
import type { FakeMessageOptions, SimpleMessage } from './fake-message.ts';
import { pageContract } from './page-contract.ts';
import { sortContract } from './sort-contract.ts';
import { searchContract } from './search-contract.ts';

export interface StorageHandle {
  storage: StoragePorts;
  cleanup(): Promise<void>;
  /** Closes the current storage and opens the same data again; `storage` is replaced by the returned one. */
  reopen?(): Promise<StoragePorts>;
}

export type StorageFactory = () => Promise<StorageHandle>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: StorageError['code']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StorageError, `expected StorageError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

interface Fixture {
  h: StorageHandle;
  s: StoragePorts;
  user: UserRecord;
  inbox: MailboxRecord;
  append(mailbox: MailboxRecord, m?: SimpleMessage, opts?: FakeMessageOptions & { flags?: string[] }): Promise<AppendResult & { raw: string }>;
}

/** Pseudo-random bytes that deflate does not shrink much, generated without crypto so both backends see the same data. */
export function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function base64Lines(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/.{76}/g, '$&\r\n') + '\r\n';
}

export function storageContract(name: string, open: StorageFactory): void {
  async function withStorage(fn: (f: Fixture) => Promise<void>): Promise<void> {
    const h = await open();
    try {
      const s = h.storage;
      const user = await s.users.create({ username: 'alice', name: 'Alice', passwordHash: null });
      const inbox = await s.mailboxes.create(user.id, { path: 'INBOX', specialUse: '\\Inbox' });
      const f: Fixture = {
        h,
        s,
        user,
        inbox,
        async append(mailbox, m = {}, opts = {}) {
          const raw = simpleMessage(m);
          const message = await fakeMessage(f.s.blobs, raw, opts);
          const r = await f.s.messages.append({ userId: user.id, mailboxId: mailbox.id, flags: opts.flags ?? [], internalDate: Date.now(), message });
          return { ...r, raw };
        },
      };
      await fn(f);
    } finally {
      await h.cleanup();
    }
  }

  describe(`storage contract: ${name}`, () => {
    searchContract(open);
    pageContract(open);
    sortContract(open);
    // -----------------------------------------------------------------------------------------------------------
    describe('users and addresses', () => {
      it('creates, reads, updates and enforces unique usernames', () =>
        withStorage(async ({ s, user }) => {
          assert.equal(user.username, 'alice');
          assert.equal(user.name, 'Alice');
          assert.equal(user.storageUsed, 0);
          assert.equal(user.messagesUsed, 0);
          assert.equal(user.disabled, false);
          assert.deepEqual(user.quota, { storage: null, messages: null });
          assert.match(user.id, /^[0-9a-f]{24}$/, 'an object id: 24 hex digits on every backend');
          assert.deepEqual(await s.users.get(user.id), user);
          assert.deepEqual(await s.users.getByUsername('alice'), user);
          assert.equal(await s.users.getByUsername('nobody'), null);
          assert.equal(await s.users.get('0000000000000000000f423f'), null);
          assert.equal(await s.users.get('not-an-id'), null);
          await rejectsWith(s.users.create({ username: 'alice', passwordHash: null }), 'ALREADYEXISTS');

          const updated = await s.users.update(user.id, { name: 'Alice A.', quota: { storage: 1000 }, disabled: true, passwordHash: 'x' });
          assert.equal(updated.name, 'Alice A.');
          assert.deepEqual(updated.quota, { storage: 1000, messages: null });
          assert.equal(updated.disabled, true);
          assert.equal(updated.passwordHash, 'x');
          const again = await s.users.update(user.id, { quota: { messages: 5 } });
          assert.deepEqual(again.quota, { storage: 1000, messages: 5 });
          assert.equal(again.name, 'Alice A.');
          await rejectsWith(s.users.update('0000000000000000000f423f', { name: 'x' }), 'NONEXISTENT');
        }));

      it('lists users in pages with an opaque cursor and a substring query', () =>
        withStorage(async ({ s }) => {
          for (let i = 0; i < 7; i++) await s.users.create({ username: `user${i}`, name: i % 2 ? 'Odd Person' : 'Even', passwordHash: null });
          const seen: string[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const page: Awaited<ReturnType<StoragePorts['users']['list']>> = await s.users.list({ limit: 3, cursor });
            assert.ok(page.items.length <= 3);
            seen.push(...page.items.map((u) => u.username));
            cursor = page.next;
            pages++;
          } while (cursor && pages < 10);
          assert.equal(pages, 3);
          assert.deepEqual(seen.sort(), ['alice', 'user0', 'user1', 'user2', 'user3', 'user4', 'user5', 'user6']);
          const q = await s.users.list({ query: 'SER3' });
          assert.deepEqual(q.items.map((u) => u.username), ['user3']);
          assert.equal(q.next, null);
          const odd = await s.users.list({ query: 'odd' });
          assert.deepEqual(odd.items.map((u) => u.username).sort(), ['user1', 'user3', 'user5']);
          const none = await s.users.list({ query: '%' });
          assert.equal(none.items.length, 0, 'query is a literal substring');
          assert.equal(await s.users.count(), 8);
          assert.equal(await s.users.count({ query: 'odd' }), 3);
          assert.equal(await s.users.count({ query: '%' }), 0);
        }));

      it('stores user tags and filters listings by any tag, all tags and a query together', () =>
        withStorage(async ({ s }) => {
          const a = await s.users.create({ username: 'tag-a', name: 'Sales A', passwordHash: null, tags: ['sales', 'vip'] });
          assert.deepEqual(a.tags, ['sales', 'vip']);
          const b = await s.users.create({ username: 'tag-b', passwordHash: null, tags: ['sales'] });
          await s.users.create({ username: 'tag-c', passwordHash: null, tags: ['ops', 'vip'] });
          assert.deepEqual((await s.users.get(b.id))!.tags, ['sales']);
          assert.deepEqual((await s.users.getByUsername('alice'))!.tags, [], 'no tags');
          const names = async (filter: { query?: string; tags?: string[]; requiredTags?: string[] }) =>
            (await s.users.list(filter)).items.map((u) => u.username).sort();
          assert.deepEqual(await names({ tags: ['vip', 'nothing'] }), ['tag-a', 'tag-c']);
          assert.deepEqual(await names({ requiredTags: ['sales', 'vip'] }), ['tag-a']);
          assert.deepEqual(await names({ requiredTags: ['vip', 'vip'] }), ['tag-a', 'tag-c'], 'repeated tags count once');
          assert.deepEqual(await names({ tags: ['sales'], requiredTags: ['vip'], query: 'sales' }), ['tag-a']);
          assert.deepEqual(await names({ tags: [] }), ['alice', 'tag-a', 'tag-b', 'tag-c']);
          assert.equal(await s.users.count({ tags: ['sales', 'vip'] }), 3);
          assert.equal(await s.users.count({ requiredTags: ['sales', 'vip'] }), 1);
          const page1 = await s.users.list({ tags: ['vip'], limit: 1 });
          assert.deepEqual(page1.items.map((u) => u.username), ['tag-a']);
          const page2 = await s.users.list({ tags: ['vip'], limit: 1, cursor: page1.next });
          assert.deepEqual(page2.items.map((u) => u.username), ['tag-c']);
          const updated = await s.users.update(b.id, { tags: ['ops'] });
          assert.deepEqual(updated.tags, ['ops']);
          assert.deepEqual((await s.users.update(b.id, { name: 'B' })).tags, ['ops'], 'kept when not in the patch');
          assert.deepEqual(await names({ tags: ['sales'] }), ['tag-a']);
          await s.users.delete(a.id);
          assert.deepEqual(await names({ tags: ['vip'] }), ['tag-c'], 'tags go with their user');
        }));

      it('adds, resolves, lists and removes addresses', () =>
        withStorage(async ({ s, user }) => {
          const a1 = await s.users.addAddress(user.id, { address: 'alice@example.com', display: 'Alice@Example.com' });
          assert.equal(a1.main, true, 'first address becomes main');
          assert.equal(a1.userId, user.id);
          const a2 = await s.users.addAddress(user.id, { address: 'ali@example.com', display: 'ali@example.com' });
          assert.equal(a2.main, false);
          await rejectsWith(s.users.addAddress(user.id, { address: 'alice@example.com', display: 'x' }), 'ALREADYEXISTS');
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          await rejectsWith(s.users.addAddress(bob.id, { address: 'ali@example.com', display: 'x' }), 'ALREADYEXISTS');
          await rejectsWith(s.users.addAddress('0000000000000000000f423f', { address: 'z@example.com', display: 'z' }), 'NONEXISTENT');

          assert.deepEqual(await s.users.resolveAddress('alice@example.com'), a1);
          assert.equal(await s.users.resolveAddress('nobody@example.com'), null);
          const a3 = await s.users.addAddress(user.id, { address: 'main@example.com', display: 'main@example.com', main: true });
          const list = await s.users.listAddresses(user.id);
          assert.deepEqual(list.map((a) => a.address).sort(), ['ali@example.com', 'alice@example.com', 'main@example.com']);
          assert.deepEqual(list.filter((a) => a.main).map((a) => a.id), [a3.id], 'exactly one main address');
          await s.users.removeAddress(a2.id);
          assert.equal(await s.users.resolveAddress('ali@example.com'), null);
          await rejectsWith(s.users.removeAddress(a2.id), 'NONEXISTENT');
          assert.equal((await s.users.listAddresses(user.id)).length, 2);

          const moved = await s.users.updateAddress(a1.id, { main: true, display: 'ALICE@example.com' });
          assert.equal(moved.main, true);
          assert.equal(moved.display, 'ALICE@example.com');
          assert.equal(moved.address, 'alice@example.com');
          assert.deepEqual((await s.users.listAddresses(user.id)).filter((a) => a.main).map((a) => a.id), [a1.id], 'main moved');
          await rejectsWith(s.users.updateAddress(a2.id, { main: true }), 'NONEXISTENT');
        }));

      it('keeps usernames and addresses one namespace after NFKC and case folding, under concurrency too', () =>
        withStorage(async ({ s, user }) => {
          // alice's own address may equal her username; nobody else's username or address may fold to either
          const own = await s.users.create({ username: 'carol@example.com', passwordHash: null });
          await s.users.addAddress(own.id, { address: 'carol@example.com', display: 'carol@example.com' });
          await rejectsWith(s.users.create({ username: 'ａｌｉｃｅ', passwordHash: null }), 'ALREADYEXISTS'); // fullwidth
          await rejectsWith(s.users.create({ username: 'ALICE', passwordHash: null }), 'ALREADYEXISTS');
          await rejectsWith(s.users.create({ username: 'аlice', passwordHash: null }), 'ALREADYEXISTS'); // Cyrillic а: same skeleton
          await rejectsWith(s.users.create({ username: 'a1ice', passwordHash: null }), 'ALREADYEXISTS'); // 1 looks like l
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          await s.users.addAddress(bob.id, { address: 'bob@example.com', display: 'bob@example.com' });
          await rejectsWith(s.users.create({ username: 'bob@example.com', passwordHash: null }), 'ALREADYEXISTS');
          await rejectsWith(s.users.create({ username: 'ｂｏｂ@ｅｘａｍｐｌｅ.ｃｏｍ', passwordHash: null }), 'ALREADYEXISTS');
          await rejectsWith(s.users.addAddress(bob.id, { address: 'alice', display: 'alice' }), 'ALREADYEXISTS');
          await rejectsWith(s.users.addAddress(bob.id, { address: 'carol@example.com', display: 'x' }), 'ALREADYEXISTS');
          // look-ups by any written form land on the owner
          assert.equal((await s.users.getByLoginName('ＡＬＩＣＥ'))?.id, user.id);
          assert.equal((await s.users.getByLoginName('BOB@example.com'))?.id, bob.id);
          assert.equal((await s.users.getByLoginName('Carol@Example.com'))?.id, own.id);
          assert.equal(await s.users.getByLoginName('nobody'), null);
          // removing carol's address keeps her username's key; deleting a user frees every key
          const [carolAddress] = await s.users.listAddresses(own.id);
          await s.users.removeAddress(carolAddress!.id);
          await rejectsWith(s.users.addAddress(bob.id, { address: 'carol@example.com', display: 'x' }), 'ALREADYEXISTS');
          await s.users.delete(own.id);
          await s.users.addAddress(bob.id, { address: 'carol@example.com', display: 'x' });
          // concurrent creations of look-alike names: exactly one wins (a unique index, not check-then-insert)
          const names = ['dave', 'DAVE', 'ｄａｖｅ', 'Dave', 'dAvE', 'ＤＡＶＥ'];
          const results = await Promise.allSettled(names.map((username) => s.users.create({ username: username.toLowerCase(), passwordHash: null })));
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'ALREADYEXISTS');
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('mailboxes', () => {
      it('creates mailboxes with unique paths and unique UIDVALIDITY', () =>
        withStorage(async ({ s, user, inbox }) => {
          assert.equal(inbox.path, 'INBOX');
          assert.equal(inbox.specialUse, '\\Inbox');
          assert.equal(inbox.subscribed, true);
          assert.equal(inbox.uidNext, 1);
          assert.ok(inbox.highestModseq >= 1);
          assert.ok(inbox.uidValidity > 0 && inbox.uidValidity < 2 ** 32);
          const sent = await s.mailboxes.create(user.id, { path: 'Sent', specialUse: '\\Sent', subscribed: false });
          assert.equal(sent.subscribed, false);
          await rejectsWith(s.mailboxes.create(user.id, { path: 'Sent' }), 'ALREADYEXISTS');
          await rejectsWith(s.mailboxes.create('0000000000000000000f423f', { path: 'X' }), 'NONEXISTENT');
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          const bobSent = await s.mailboxes.create(bob.id, { path: 'Sent' });
          const validities = new Set([inbox.uidValidity, sent.uidValidity, bobSent.uidValidity]);
          assert.equal(validities.size, 3, 'UIDVALIDITY unique per mailbox');

          assert.deepEqual(await s.mailboxes.get(sent.id), sent);
          assert.deepEqual(await s.mailboxes.getByPath(user.id, 'Sent'), sent);
          assert.equal(await s.mailboxes.getByPath(user.id, 'Nope'), null);
          assert.deepEqual(await s.mailboxes.getBySpecialUse(user.id, '\\Sent'), sent);
          assert.equal(await s.mailboxes.getBySpecialUse(user.id, '\\Junk'), null);
          assert.deepEqual((await s.mailboxes.list(user.id)).map((m) => m.path).sort(), ['INBOX', 'Sent']);
          assert.deepEqual(await s.mailboxes.counters(sent.id), { messages: 0, unseen: 0, size: 0 });
          await rejectsWith(s.mailboxes.counters('0000000000000000000f423f'), 'NONEXISTENT');

          // re-created under the same name: a larger UIDVALIDITY
          await s.mailboxes.delete(sent.id);
          const sent2 = await s.mailboxes.create(user.id, { path: 'Sent' });
          assert.ok(sent2.uidValidity > sent.uidValidity);
          assert.notEqual(sent2.id, sent.id);
        }));

      it('renames a mailbox with its descendants, keeping UIDVALIDITY and messages', () =>
        withStorage(async (f) => {
          const { s, user } = f;
          const a = await s.mailboxes.create(user.id, { path: 'Work' });
          const b = await s.mailboxes.create(user.id, { path: 'Work/Projects' });
          const c = await s.mailboxes.create(user.id, { path: 'Work/Projects/2024' });
          const other = await s.mailboxes.create(user.id, { path: 'Workshop' });
          await f.append(b, { subject: 'inside' });
          const renamed = await s.mailboxes.rename(user.id, 'Work', 'Jobs/Old');
          assert.deepEqual(renamed.map((m) => m.path).sort(), ['Jobs/Old', 'Jobs/Old/Projects', 'Jobs/Old/Projects/2024']);
          assert.equal((await s.mailboxes.get(a.id))!.path, 'Jobs/Old');
          assert.equal((await s.mailboxes.get(c.id))!.path, 'Jobs/Old/Projects/2024');
          assert.equal((await s.mailboxes.get(other.id))!.path, 'Workshop', 'sibling with a common prefix is untouched');
          const b2 = (await s.mailboxes.get(b.id))!;
          assert.equal(b2.uidValidity, b.uidValidity);
          assert.equal((await s.messages.index(b.id)).length, 1);

          await rejectsWith(s.mailboxes.rename(user.id, 'Nope', 'X'), 'NONEXISTENT');
          await rejectsWith(s.mailboxes.rename(user.id, 'Workshop', 'Jobs/Old/Projects'), 'ALREADYEXISTS');
          // a conflict on a descendant aborts the whole rename
          await s.mailboxes.create(user.id, { path: 'Taken/Projects' });
          await rejectsWith(s.mailboxes.rename(user.id, 'Jobs/Old', 'Taken'), 'ALREADYEXISTS');
          assert.equal((await s.mailboxes.get(a.id))!.path, 'Jobs/Old');
          assert.equal((await s.mailboxes.get(b.id))!.path, 'Jobs/Old/Projects');
          await rejectsWith(s.mailboxes.rename(user.id, 'Jobs/Old', 'Jobs/Old/Inner'), 'CANNOT');
        }));

      it('subscribes, refuses to delete INBOX, deletes with messages', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const box = await s.mailboxes.create(user.id, { path: 'Box' });
          await s.mailboxes.setSubscribed(box.id, false);
          assert.equal((await s.mailboxes.get(box.id))!.subscribed, false);
          await s.mailboxes.setSubscribed(box.id, true);
          assert.equal((await s.mailboxes.get(box.id))!.subscribed, true);
          await rejectsWith(s.mailboxes.setSubscribed('0000000000000000000f423f', true), 'NONEXISTENT');
          await rejectsWith(s.mailboxes.delete(inbox.id), 'CANNOT');

          await f.append(inbox, { body: 'keep me\r\n' });
          await f.append(box, { body: 'one\r\n' });
          await f.append(box, { body: 'two\r\n' }, { blobBody: true });
          const before = (await s.users.get(user.id))!;
          assert.equal(before.messagesUsed, 3);
          const boxSize = (await s.mailboxes.counters(box.id)).size;
          await s.mailboxes.delete(box.id);
          assert.equal(await s.mailboxes.get(box.id), null);
          assert.equal(await s.messages.get(box.id, 1), null);
          await rejectsWith(s.mailboxes.delete(box.id), 'NONEXISTENT');
          const after = (await s.users.get(user.id))!;
          assert.equal(after.messagesUsed, 1);
          assert.equal(after.storageUsed, before.storageUsed - boxSize);
          assert.equal((await s.blobs.stats()).count, 0, 'blob references released');
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('messages', () => {
      it('appends with increasing UIDs and modseqs; UIDNEXT and HIGHESTMODSEQ follow', () =>
        withStorage(async (f) => {
          const { s, inbox } = f;
          const r1 = await f.append(inbox, { subject: 'one' });
          const r2 = await f.append(inbox, { subject: 'two' }, { flags: ['\\seen', '\\Recent', 'Work', 'work', '$Label1'] });
          assert.equal(r1.uid, 1);
          assert.equal(r2.uid, 2);
          assert.ok(r1.modseq > inbox.highestModseq);
          assert.ok(r2.modseq > r1.modseq);
          assert.equal(r1.uidValidity, inbox.uidValidity);
          const box = (await s.mailboxes.get(inbox.id))!;
          assert.equal(box.uidNext, 3);
          assert.equal(box.highestModseq, r2.modseq);

          const m2 = (await s.messages.get(inbox.id, 2))!;
          assert.deepEqual(m2.flags, ['\\Seen', 'Work', '$Label1'], 'system flags canonical, \\Recent not stored, keywords deduplicated');
          assert.equal(m2.subject, 'two');
          assert.equal(m2.uid, 2);
          assert.equal(m2.modseq, r2.modseq);
          assert.equal(m2.mailboxId, inbox.id);
          assert.equal(m2.userId, f.user.id);
          assert.equal(m2.size, new TextEncoder().encode(r2.raw).length);
          assert.equal(m2.mime.type, 'text');
          assert.equal(m2.envelope.subject, 'two');
          assert.equal(m2.headerDate, Date.parse('Mon, 1 Jan 2024 10:00:00 +0000'));
          assert.deepEqual(await s.messages.getById(r2.id), m2);
          assert.equal(await s.messages.get(inbox.id, 99), null);
          assert.equal(await s.messages.getById('0000000000000000000f423f'), null);

          const content = (await s.messages.content(r2.id))!;
          assert.equal(text(await messageBytes(content, s.blobs)), r2.raw);
          assert.equal(await s.messages.content('0000000000000000000f423f'), null);
          assert.match((await s.messages.searchText(r2.id))!, /Hello there/, 'the body search text');
          assert.deepEqual(await s.mailboxes.counters(inbox.id), { messages: 2, unseen: 1, size: m2.size * 2 });

          const index = await s.messages.index(inbox.id);
          assert.deepEqual(index.map((e) => e.uid), [1, 2]);
          assert.deepEqual(index[1].flags, ['\\Seen', 'Work', '$Label1']);
          assert.deepEqual((await s.messages.index(inbox.id, { changedSince: r1.modseq })).map((e) => e.uid), [2]);

          await rejectsWith(
            s.messages.append({ userId: f.user.id, mailboxId: '0000000000000000000f423f', flags: [], internalDate: 0, message: await fakeMessage(s.blobs, simpleMessage()) }),
            'NONEXISTENT',
          );
          // UIDs are never reused: expunge the last message, append again
          await s.messages.expunge(inbox.id, [2]);
          const r3 = await f.append(inbox, { subject: 'three' });
          assert.equal(r3.uid, 3);
          assert.deepEqual((await s.messages.index(inbox.id)).map((e) => e.uid), [1, 3]);
        }));

      it('keeps large inline content byte for byte', () =>
        withStorage(async (f) => {
          const body = 'Lorem ipsum dolor sit amet. '.repeat(4000) + '\r\n';
          const r = await f.append(f.inbox, { body });
          assert.equal(text(await messageBytes((await f.s.messages.content(r.id))!, f.s.blobs)), r.raw);
          const noisy = base64Lines(noise(3000, 7));
          const r2 = await f.append(f.inbox, { body: noisy });
          assert.equal(text(await messageBytes((await f.s.messages.content(r2.id))!, f.s.blobs)), r2.raw);
        }));

      it('reads the wanted parts of several messages in one call (parts)', () =>
        withStorage(async (f) => {
          const { s, inbox } = f;
          const r = [];
          for (const subject of ['one', 'two', 'three', 'four']) r.push(await f.append(inbox, { subject }));
          await s.messages.expunge(inbox.id, [3]);
          const full = await s.messages.parts(inbox.id, [4, 1, 2, 3, 9], { envelope: true, mime: true, content: true });
          assert.deepEqual(full.map((p) => p.uid), [1, 2, 4], 'ascending, expunged and unknown UIDs left out');
          for (const p of full) {
            const record = (await s.messages.get(inbox.id, p.uid))!;
            assert.deepEqual(p.envelope, record.envelope);
            assert.deepEqual(p.mime, record.mime);
            assert.equal(text(await messageBytes(p.content!, s.blobs)), r[p.uid - 1]!.raw);
          }
          const envelopes = await s.messages.parts(inbox.id, [1, 2], { envelope: true });
          assert.deepEqual(envelopes.map((p) => [p.uid, p.envelope?.subject, p.mime, p.content]), [
            [1, 'one', undefined, undefined],
            [2, 'two', undefined, undefined],
          ]);
          const mime = await s.messages.parts(inbox.id, [2, 4], { mime: true });
          assert.deepEqual(mime.map((p) => [p.uid, p.mime?.type, p.envelope, p.content]), [
            [2, 'text', undefined, undefined],
            [4, 'text', undefined, undefined],
          ]);
          assert.deepEqual(await s.messages.parts(inbox.id, [], { content: true }), []);
          assert.deepEqual(await s.messages.parts('0000000000000000000f423f', [1], { envelope: true }), []);
        }));

      it('finds a message by Message-ID', () =>
        withStorage(async (f) => {
          await f.append(f.inbox, { messageId: '<a@x>' });
          const r = await f.append(f.inbox, { messageId: '<b@x>' });
          const found = await f.s.messages.findByMessageId(f.inbox.id, '<b@x>');
          assert.equal(found?.uid, r.uid);
          assert.equal(await f.s.messages.findByMessageId(f.inbox.id, '<zzz@x>'), null);
        }));

      it('sets flags: add, remove, set, unchangedSince, unseen counter', () =>
        withStorage(async (f) => {
          const { s, inbox } = f;
          for (let i = 0; i < 4; i++) await f.append(inbox, { subject: `m${i}` });
          assert.equal((await s.mailboxes.counters(inbox.id)).unseen, 4);

          const add = await s.messages.setFlags(inbox.id, [1, 2, 3], { action: 'add', flags: ['\\SEEN', 'Todo'] });
          assert.deepEqual(add.changed.map((c) => c.uid), [1, 2, 3]);
          assert.deepEqual(add.changed[0].flags, ['\\Seen', 'Todo']);
          assert.deepEqual(add.modified, []);
          const modseqA = add.changed[0].modseq;
          assert.ok(add.changed.every((c) => c.modseq === modseqA));
          assert.equal((await s.mailboxes.get(inbox.id))!.highestModseq, modseqA);
          assert.equal((await s.mailboxes.counters(inbox.id)).unseen, 1);

          // no-op: nothing changes, no new modseq
          const noop = await s.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Seen'] });
          assert.deepEqual(noop.changed, []);
          assert.equal((await s.mailboxes.get(inbox.id))!.highestModseq, modseqA);

          const rm = await s.messages.setFlags(inbox.id, [2, 99], { action: 'remove', flags: ['\\seen', 'TODO'] });
          assert.deepEqual(rm.changed.map((c) => [c.uid, c.flags]), [[2, []]]);
          assert.ok(rm.changed[0].modseq > modseqA);
          assert.equal((await s.mailboxes.counters(inbox.id)).unseen, 2);

          const set = await s.messages.setFlags(inbox.id, [3], { action: 'set', flags: ['\\Flagged', '\\Recent'] });
          assert.deepEqual(set.changed[0].flags, ['\\Flagged']);
          assert.equal((await s.mailboxes.counters(inbox.id)).unseen, 3);

          // CONDSTORE: message 1 last changed at modseqA, message 3 later
          const cond = await s.messages.setFlags(inbox.id, [1, 3, 4], { action: 'add', flags: ['$X'], unchangedSince: modseqA });
          assert.deepEqual(cond.modified, [3]);
          assert.deepEqual(cond.changed.map((c) => c.uid), [1, 4]);
          const e1 = (await s.messages.index(inbox.id)).find((e) => e.uid === 1)!;
          assert.deepEqual(e1.flags, ['\\Seen', 'Todo', '$X']);
          assert.equal(e1.modseq, cond.changed[0].modseq);
          const changedSince = await s.messages.index(inbox.id, { changedSince: set.changed[0].modseq });
          assert.deepEqual(changedSince.map((e) => e.uid), [1, 4]);
          await rejectsWith(s.messages.setFlags('0000000000000000000f423f', [1], { action: 'add', flags: ['\\Seen'] }), 'NONEXISTENT');
        }));

      it('copies and moves with UID mappings, counters and usage', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const arch = await s.mailboxes.create(user.id, { path: 'Archive' });
          const trash = await s.mailboxes.create(user.id, { path: 'Trash' });
          await f.append(inbox, { subject: 'a' }, { flags: ['\\Seen'] });
          await f.append(inbox, { subject: 'b' }, { blobBody: true });
          await f.append(inbox, { subject: 'c' });
          await f.append(arch, { subject: 'pre' });
          const inboxCounters = await s.mailboxes.counters(inbox.id);
          const usage0 = (await s.users.get(user.id))!;

          const copy = await s.messages.copy(inbox.id, [3, 1, 42], arch.id);
          assert.deepEqual(copy.mappings, [
            { sourceUid: 1, destinationUid: 2 },
            { sourceUid: 3, destinationUid: 3 },
          ]);
          assert.equal(copy.uidValidity, arch.uidValidity);
          assert.equal((await s.mailboxes.get(arch.id))!.highestModseq, copy.modseq);
          const copied = (await s.messages.get(arch.id, 2))!;
          assert.equal(copied.subject, 'a');
          assert.deepEqual(copied.flags, ['\\Seen']);
          assert.equal(copied.modseq, copy.modseq);
          assert.notEqual(copied.id, (await s.messages.get(inbox.id, 1))!.id);
          assert.deepEqual(await s.mailboxes.counters(inbox.id), inboxCounters, 'source unchanged by copy');
          const archCounters = await s.mailboxes.counters(arch.id);
          assert.equal(archCounters.messages, 3);
          assert.equal(archCounters.unseen, 2);
          const usage1 = (await s.users.get(user.id))!;
          assert.equal(usage1.messagesUsed, usage0.messagesUsed + 2);
          const copiedSize = copied.size + (await s.messages.get(arch.id, 3))!.size;
          assert.equal(usage1.storageUsed, usage0.storageUsed + copiedSize);

          const empty = await s.messages.copy(inbox.id, [77], arch.id);
          assert.deepEqual(empty.mappings, []);

          const move = await s.messages.move(inbox.id, [2, 3], trash.id);
          assert.deepEqual(move.mappings, [
            { sourceUid: 2, destinationUid: 1 },
            { sourceUid: 3, destinationUid: 2 },
          ]);
          assert.equal(move.uidValidity, trash.uidValidity);
          assert.deepEqual((await s.messages.index(inbox.id)).map((e) => e.uid), [1]);
          assert.deepEqual((await s.messages.index(trash.id)).map((e) => e.uid), [1, 2]);
          const moved = (await s.messages.get(trash.id, 1))!;
          assert.equal(moved.subject, 'b');
          assert.equal(moved.modseq, move.modseq);
          assert.equal(text(await messageBytes((await s.messages.content(moved.id))!, s.blobs)).includes('Subject: b'), true);
          const c = await s.mailboxes.counters(inbox.id);
          assert.equal(c.messages, 1);
          assert.equal(c.unseen, 0);
          assert.equal((await s.mailboxes.counters(trash.id)).messages, 2);
          const usage2 = (await s.users.get(user.id))!;
          assert.equal(usage2.messagesUsed, usage1.messagesUsed, 'move does not change usage');
          assert.equal(usage2.storageUsed, usage1.storageUsed);
          assert.ok((await s.mailboxes.get(inbox.id))!.highestModseq > inbox.highestModseq);
          await rejectsWith(s.messages.copy(inbox.id, [1], '0000000000000000000f423f'), 'NONEXISTENT');
          await rejectsWith(s.messages.move('0000000000000000000f423f', [1], trash.id), 'NONEXISTENT');
        }));

      it('expunges exactly the given UIDs', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          for (let i = 0; i < 5; i++) await f.append(inbox, { subject: `m${i}` }, { flags: i % 2 ? ['\\Seen'] : [] });
          const size = (await s.messages.get(inbox.id, 1))!.size;
          const before = (await s.mailboxes.get(inbox.id))!;
          const removed = await s.messages.expunge(inbox.id, [4, 2, 9, 2]);
          assert.deepEqual(removed, [2, 4]);
          assert.deepEqual((await s.messages.index(inbox.id)).map((e) => e.uid), [1, 3, 5]);
          assert.deepEqual(await s.mailboxes.counters(inbox.id), { messages: 3, unseen: 3, size: size * 3 });
          const after = (await s.mailboxes.get(inbox.id))!;
          assert.ok(after.highestModseq > before.highestModseq);
          assert.equal(after.uidNext, before.uidNext);
          const u = (await s.users.get(user.id))!;
          assert.equal(u.messagesUsed, 3);
          assert.equal(u.storageUsed, size * 3);
          assert.deepEqual(await s.messages.expunge(inbox.id, [2]), []);
          await rejectsWith(s.messages.expunge('0000000000000000000f423f', [1]), 'NONEXISTENT');
        }));

      it('keeps usage and counters exact under 50 concurrent appends and expunges', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const other = await s.mailboxes.create(user.id, { path: 'Other' });
          const results = await Promise.all(
            Array.from({ length: 50 }, (_, i) => f.append(i % 5 === 0 ? other : inbox, { subject: `burst ${i}`, body: `body ${'x'.repeat(i)}\r\n` }, { blobBody: i % 3 === 0, flags: i % 4 === 0 ? ['\\Seen'] : [] })),
          );
          const inboxUids = results.filter((_, i) => i % 5 !== 0).map((r) => r.uid).sort((a, b) => a - b);
          assert.deepEqual(inboxUids, Array.from({ length: 40 }, (_, i) => i + 1), 'UIDs 1..40 without gaps or duplicates');
          const modseqs = new Set(results.map((r, i) => `${i % 5 === 0 ? 'other' : 'inbox'}:${r.modseq}`));
          assert.equal(modseqs.size, 50, 'a distinct modseq for every append in a mailbox');
          const totalSize = results.reduce((sum, r) => sum + new TextEncoder().encode(r.raw).length, 0);
          let u = (await s.users.get(user.id))!;
          assert.equal(u.messagesUsed, 50);
          assert.equal(u.storageUsed, totalSize);
          const ci = await s.mailboxes.counters(inbox.id);
          const co = await s.mailboxes.counters(other.id);
          assert.equal(ci.messages + co.messages, 50);
          assert.equal(ci.size + co.size, totalSize);
          const idx = await s.messages.index(inbox.id);
          assert.equal(ci.size, idx.reduce((sum, e) => sum + e.size, 0));
          assert.equal(ci.unseen, idx.filter((e) => !e.flags.includes('\\Seen')).length);

          await Promise.all([
            s.messages.expunge(inbox.id, [1, 2, 3, 4, 5]),
            s.messages.expunge(inbox.id, [4, 5, 6, 7]),
            s.messages.expunge(other.id, [1, 2]),
            s.messages.setFlags(inbox.id, [8, 9, 10], { action: 'add', flags: ['\\Seen'] }),
          ]);
          const remaining = [...(await s.messages.index(inbox.id)), ...(await s.messages.index(other.id))];
          u = (await s.users.get(user.id))!;
          assert.equal(u.messagesUsed, remaining.length);
          assert.equal(remaining.length, 50 - 7 - 2);
          assert.equal(u.storageUsed, remaining.reduce((sum, e) => sum + e.size, 0));
          const ci2 = await s.mailboxes.counters(inbox.id);
          const idx2 = await s.messages.index(inbox.id);
          assert.equal(ci2.unseen, idx2.filter((e) => !e.flags.includes('\\Seen')).length);
        }));

      it('recalculateUsage recounts usage and mailbox counters from the stored messages', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const other = await s.mailboxes.create(user.id, { path: 'Other' });
          for (let i = 0; i < 6; i++) await f.append(i % 2 ? other : inbox, { subject: `r${i}`, body: 'y'.repeat(i * 10) + '\r\n' }, { flags: i % 3 ? [] : ['\\Seen'] });
          await s.messages.expunge(inbox.id, [1]);
          const before = (await s.users.get(user.id))!;
          const recounted = await s.users.recalculateUsage(user.id);
          assert.deepEqual(recounted, before);
          const all = [...(await s.messages.index(inbox.id)), ...(await s.messages.index(other.id))];
          assert.equal(recounted.messagesUsed, all.length);
          assert.equal(recounted.storageUsed, all.reduce((sum, e) => sum + e.size, 0));
          const idx = await s.messages.index(other.id);
          assert.deepEqual(await s.mailboxes.counters(other.id), {
            messages: idx.length,
            unseen: idx.filter((e) => !e.flags.includes('\\Seen')).length,
            size: idx.reduce((sum, e) => sum + e.size, 0),
          });
          await rejectsWith(s.users.recalculateUsage('0000000000000000000f423f'), 'NONEXISTENT');
        }));

      it('threads replies with earlier messages of the same user', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const root = await f.append(inbox, { messageId: '<root@x>', subject: 'Plan' });
          const reply = await f.append(inbox, { messageId: '<r1@x>', inReplyTo: '<root@x>', references: ['<root@x>'], subject: 'Re: Plan' });
          const reply2 = await f.append(inbox, { messageId: '<r2@x>', references: ['<root@x>', '<r1@x>'] });
          const unrelated = await f.append(inbox, { messageId: '<other@x>' });
          assert.equal(reply.threadId, root.threadId);
          assert.equal(reply2.threadId, root.threadId);
          assert.notEqual(unrelated.threadId, root.threadId);
          assert.equal((await s.messages.get(inbox.id, reply.uid))!.threadId, root.threadId);
          // a reply that arrives before its parent: the parent joins the reply's thread
          const early = await f.append(inbox, { messageId: '<late-child@x>', references: ['<late-parent@x>'] });
          const parent = await f.append(inbox, { messageId: '<late-parent@x>' });
          assert.equal(parent.threadId, early.threadId);
          // no Message-ID at all: a thread of its own
          const lone = await f.append(inbox, { messageId: null });
          assert.notEqual(lone.threadId, root.threadId);
          // threads are per user
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          const bobInbox = await s.mailboxes.create(bob.id, { path: 'INBOX' });
          const m = await fakeMessage(s.blobs, simpleMessage({ messageId: '<r3@x>', references: ['<root@x>'] }));
          const bobReply = await s.messages.append({ userId: bob.id, mailboxId: bobInbox.id, flags: [], internalDate: Date.now(), message: m });
          assert.notEqual(bobReply.threadId, root.threadId);
          // a copy keeps the thread
          const arch = await s.mailboxes.create(user.id, { path: 'Archive' });
          const copy = await s.messages.copy(inbox.id, [reply.uid], arch.id);
          assert.equal((await s.messages.get(arch.id, copy.mappings[0].destinationUid))!.threadId, root.threadId);
          // thread counters: the user's messages per thread, any mailbox; other users' and unknown threads count 0
          const counts = await s.messages.threadCounts(user.id, [root.threadId, unrelated.threadId, bobReply.threadId, '0000000000000000000f423f', 'x']);
          assert.deepEqual([...counts], [
            [root.threadId, 4],
            [unrelated.threadId, 1],
            [bobReply.threadId, 0],
            ['0000000000000000000f423f', 0],
            ['x', 0],
          ]);
          assert.deepEqual([...(await s.messages.threadCounts(bob.id, [bobReply.threadId]))], [[bobReply.threadId, 1]]);
          assert.equal((await s.messages.threadCounts(user.id, [])).size, 0);
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('change log', () => {
      it('records every change in order and notifies subscribers after commit', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const start = await s.changes.latest(user.id);
          const heard: number[] = [];
          const unsubscribe = s.changes.subscribe(user.id, (id) => heard.push(id));
          const box = await s.mailboxes.create(user.id, { path: 'Box' });
          const a = await f.append(inbox, { subject: 'a' });
          await f.append(inbox, { subject: 'b' });
          await s.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Seen'] });
          await s.messages.copy(inbox.id, [1], box.id);
          await s.messages.expunge(inbox.id, [2]);
          await s.mailboxes.rename(user.id, 'Box', 'Box2');
          await s.mailboxes.setSubscribed(box.id, false);
          await s.mailboxes.delete(box.id);
          await sleep(20);

          const entries = await s.changes.since(user.id, start);
          const summary = entries.map((e) => [e.type, e.mailboxId === inbox.id ? 'inbox' : 'box', e.uid]);
          assert.deepEqual(summary, [
            ['mailbox.create', 'box', null],
            ['exists', 'inbox', 1],
            ['exists', 'inbox', 2],
            ['flags', 'inbox', 1],
            ['exists', 'box', 1],
            ['expunge', 'inbox', 2],
            ['mailbox.rename', 'box', null],
            ['mailbox.subscribe', 'box', null],
            ['mailbox.delete', 'box', null],
          ]);
          for (let i = 1; i < entries.length; i++) assert.ok(entries[i].id > entries[i - 1].id);
          assert.ok(entries.every((e: ChangeEntry) => e.userId === user.id && e.created > 0));
          assert.equal(entries[1].modseq, a.modseq);
          assert.deepEqual(entries[3].flags, ['\\Seen']);
          assert.equal(entries[6].path, 'Box2');
          const latest = await s.changes.latest(user.id);
          assert.equal(latest, entries[entries.length - 1].id);
          assert.ok(heard.length >= 1, 'subscriber notified');
          assert.equal(heard[heard.length - 1], latest);
          assert.ok(heard.every((id, i) => i === 0 || id > heard[i - 1]), 'notifications in order');

          // filters and paging
          const inboxOnly = await s.changes.since(user.id, start, { mailboxId: inbox.id });
          assert.deepEqual(inboxOnly.map((e) => e.type), ['exists', 'exists', 'flags', 'expunge']);
          const firstTwo = await s.changes.since(user.id, start, { limit: 2 });
          assert.equal(firstTwo.length, 2);
          const rest = await s.changes.since(user.id, firstTwo[1].id);
          assert.equal(rest.length, entries.length - 2);

          // other users are separate
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          assert.equal(await s.changes.latest(bob.id), 0);
          assert.deepEqual(await s.changes.since(bob.id, 0), []);
          const bobHeard: number[] = [];
          const unsubBob = s.changes.subscribe(bob.id, (id) => bobHeard.push(id));
          const before = heard.length;
          await s.mailboxes.create(bob.id, { path: 'INBOX' });
          await sleep(20);
          assert.equal(bobHeard.length, 1);
          assert.equal(heard.length, before, 'alice hears nothing of bob');

          unsubscribe();
          unsubBob();
          await f.append(inbox, { subject: 'quiet' });
          await sleep(20);
          assert.equal(heard.length, before, 'no notification after unsubscribe');

          // prune drops old entries
          const pruned = await s.changes.prune(Date.now() + 60_000);
          assert.ok(pruned >= entries.length);
          assert.deepEqual(await s.changes.since(user.id, 0), []);
        }));

      it('tells which UIDs were expunged after a modseq (QRESYNC), and when pruning made that unknowable', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const other = await s.mailboxes.create(user.id, { path: 'Other' });
          const added = [];
          for (let i = 0; i < 5; i++) added.push(await f.append(inbox, { subject: `m${i}` }));
          await f.append(other, { subject: 'o' });
          const before = (await s.mailboxes.get(inbox.id))!.highestModseq;
          await s.messages.expunge(inbox.id, [2]);
          const mid = (await s.mailboxes.get(inbox.id))!.highestModseq;
          await s.messages.setFlags(inbox.id, [1], { action: 'add', flags: ['\\Seen'] });
          await s.messages.move(inbox.id, [4], other.id);
          await s.messages.expunge(other.id, [1]);
          assert.deepEqual(await s.changes.vanished(inbox.id, 0), [2, 4]);
          assert.deepEqual(await s.changes.vanished(inbox.id, before), [2, 4]);
          assert.deepEqual(await s.changes.vanished(inbox.id, mid), [4]);
          assert.deepEqual(await s.changes.vanished(inbox.id, (await s.mailboxes.get(inbox.id))!.highestModseq), []);
          assert.deepEqual(await s.changes.vanished(other.id, 0), [1]);
          assert.equal(added.length, 5);

          // pruning the log: answers for modseqs below the dropped expunges are unknown (null), later ones still exact
          await s.changes.prune(Date.now() + 60_000);
          const after = (await s.mailboxes.get(inbox.id))!.highestModseq;
          assert.equal(await s.changes.vanished(inbox.id, before), null);
          assert.equal(await s.changes.vanished(inbox.id, mid), null);
          assert.deepEqual(await s.changes.vanished(inbox.id, after), []);
          await s.messages.expunge(inbox.id, [5]);
          assert.deepEqual(await s.changes.vanished(inbox.id, after), [5]);
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('blobs', () => {
      it('deduplicates identical staged content and frees it when the last reference goes', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          const body = base64Lines(noise(150_000, 3));
          const m1 = await f.append(inbox, { subject: 'one', body }, { blobBody: true });
          const m2 = await f.append(inbox, { subject: 'two', body }, { blobBody: true, writeSize: 7000 });
          let stats = await s.blobs.stats();
          assert.equal(stats.count, 1);
          assert.equal(stats.size, new TextEncoder().encode(body).length);
          assert.ok(stats.storedSize > 0);
          const c1 = (await s.messages.content(m1.id))!;
          const c2 = (await s.messages.content(m2.id))!;
          assert.equal(c1.segments[1].blob, c2.segments[1].blob);
          assert.equal(text(await messageBytes(c2, s.blobs)), m2.raw);

          // a copy takes another reference
          const arch = await s.mailboxes.create(user.id, { path: 'Archive' });
          await s.messages.copy(inbox.id, [m1.uid], arch.id);
          await s.messages.expunge(inbox.id, [m1.uid, m2.uid]);
          stats = await s.blobs.stats();
          assert.equal(stats.count, 1, 'still referenced by the copy');
          const copy = (await s.messages.get(arch.id, 1))!;
          assert.equal(text(await messageBytes((await s.messages.content(copy.id))!, s.blobs)), m1.raw);
          await s.messages.expunge(arch.id, [1]);
          stats = await s.blobs.stats();
          assert.deepEqual(stats, { count: 0, size: 0, storedSize: 0 });
          await assert.rejects(collect(s.blobs.read(c1.segments[1].blob!)));
          await s.blobs.collect();
          assert.equal((await s.blobs.stats()).count, 0);

          // storing it again after it was freed works
          const m3 = await f.append(inbox, { subject: 'three', body }, { blobBody: true });
          assert.equal(text(await messageBytes((await s.messages.content(m3.id))!, s.blobs)), m3.raw);
          assert.equal((await s.blobs.stats()).count, 1);
        }));

      it('collect frees only unreferenced blobs: a referenced one stays whole', () =>
        withStorage(async (f) => {
          const { s, inbox } = f;
          const kept = base64Lines(noise(300_000, 21));
          const m1 = await f.append(inbox, { subject: 'kept', body: kept }, { blobBody: true });
          const m2 = await f.append(inbox, { subject: 'freed', body: base64Lines(noise(300_000, 22)) }, { blobBody: true });
          await s.messages.expunge(inbox.id, [m2.uid]);
          await s.blobs.collect();
          const stats = await s.blobs.stats();
          assert.equal(stats.count, 1);
          assert.equal(stats.size, new TextEncoder().encode(kept).length);
          assert.equal(text(await messageBytes((await s.messages.content(m1.id))!, s.blobs)), m1.raw);
        }));

      it('reads any byte range of a blob', () =>
        withStorage(async ({ s }) => {
          const data = noise(200_000, 11);
          // make part of it compressible so chunks mix raw and deflated storage
          data.fill(65, 70_000, 140_000);
          const writer = s.blobs.stage();
          for (let o = 0; o < data.length; o += 30_000) await writer.write(data.slice(o, o + 30_000));
          const staged = await writer.finish();
          assert.equal(staged.size, data.length);
          assert.match(staged.hash, /^[0-9a-f]{64}$/);
          const message = await fakeMessage(s.blobs, simpleMessage());
          message.content.segments.push({ length: data.length, blob: staged.hash });
          message.blobs.push(staged);
          // (the segment list no longer matches `size`; the blob layer does not care)
          await s.messages.append({ userId: (await s.users.getByUsername('alice'))!.id, mailboxId: (await s.mailboxes.getByPath((await s.users.getByUsername('alice'))!.id, 'INBOX'))!.id, flags: [], internalDate: Date.now(), message });

          assert.deepEqual(await collect(s.blobs.read(staged.hash)), data);
          const ranges: Array<[number, number]> = [
            [0, 1],
            [0, 65_536],
            [65_535, 65_537],
            [100, 150_000],
            [131_072, 131_073],
            [199_999, 200_000],
            [150_000, 400_000],
            [5, 5],
          ];
          for (const [a, b] of ranges) {
            assert.deepEqual(await collect(s.blobs.read(staged.hash, a, b)), data.slice(a, b), `range ${a}-${b}`);
          }
          assert.deepEqual(await collect(s.blobs.read(staged.hash, 199_000)), data.slice(199_000));
          await assert.rejects(collect(s.blobs.read('0'.repeat(64))), (e: unknown) => e instanceof StorageError && e.code === 'NONEXISTENT');
          await assert.rejects(collect(s.blobs.read('../../etc/passwd')), (e: unknown) => e instanceof StorageError);
        }));

      it('discards staged blobs that are never committed; abort is safe after finish', () =>
        withStorage(async ({ s }) => {
          const w1 = s.blobs.stage();
          await w1.write(new TextEncoder().encode('never committed'));
          const st = await w1.finish();
          await s.blobs.discard([st]);
          await w1.abort();
          const w2 = s.blobs.stage();
          await w2.write(new TextEncoder().encode('aborted midway'));
          await w2.abort();
          await s.blobs.collect();
          assert.equal((await s.blobs.stats()).count, 0);
          await assert.rejects(collect(s.blobs.read(st.hash)));
          // committing a discarded blob fails cleanly and changes nothing
          const message = await fakeMessage(s.blobs, simpleMessage());
          message.content.segments.push({ length: st.size, blob: st.hash });
          const user = (await s.users.getByUsername('alice'))!;
          const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX'))!;
          await assert.rejects(s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 0, message }));
          assert.equal((await s.mailboxes.get(inbox.id))!.uidNext, 1);
          assert.equal((await s.users.get(user.id))!.messagesUsed, 0);
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('per-user documents', () => {
      it('inserts, replaces, lists by kind, looks up by unique key, deletes, and goes with the user', () =>
        withStorage(async ({ s, user }) => {
          const a = await s.documents.put(user.id, 'filter', { name: 'first', n: 1 });
          assert.match(a.id, /^[0-9a-f]{24}$/);
          const b = await s.documents.put(user.id, 'filter', { name: 'second', n: 2 }, { key: 'k2' });
          await s.documents.put(user.id, 'autoreply', { on: true }, { id: 'default' });
          assert.deepEqual((await s.documents.list<{ name: string }>(user.id, 'filter')).map((d) => d.data.name), ['first', 'second']);
          const replaced = await s.documents.put(user.id, 'filter', { name: 'first!', n: 3 }, { id: a.id });
          assert.equal(replaced.id, a.id);
          assert.equal(replaced.created, a.created);
          assert.deepEqual((await s.documents.get(user.id, 'filter', a.id))?.data, { name: 'first!', n: 3 });
          assert.equal((await s.documents.get(user.id, 'autoreply', 'default'))?.userId, user.id);
          assert.equal(await s.documents.get(user.id, 'autoreply', a.id), null, 'ids are per kind');

          assert.equal((await s.documents.findByKey('filter', 'k2'))?.id, b.id);
          assert.equal(await s.documents.findByKey('token', 'k2'), null, 'keys are per kind');
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          await assert.rejects(s.documents.put(bob.id, 'filter', {}, { key: 'k2' }), { code: 'ALREADYEXISTS' });
          await s.documents.put(bob.id, 'token', {}, { key: 'k2' });
          await assert.rejects(s.documents.put('0000000000000000000f423f', 'filter', {}), (e: unknown) => e instanceof StorageError && e.code === 'NONEXISTENT');

          assert.equal(await s.documents.delete(user.id, 'filter', b.id), true);
          assert.equal(await s.documents.delete(user.id, 'filter', b.id), false);
          assert.equal(await s.documents.findByKey('filter', 'k2'), null, 'the key is free again');
          await s.users.delete(bob.id);
          assert.equal(await s.documents.findByKey('token', 'k2'), null, 'documents go with their user');
          assert.deepEqual(await s.documents.list(bob.id, 'token'), []);
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('user deletion', () => {
      it('removes mailboxes, messages, addresses and blob references', () =>
        withStorage(async (f) => {
          const { s, user, inbox } = f;
          await s.users.addAddress(user.id, { address: 'alice@example.com', display: 'alice@example.com' });
          const box = await s.mailboxes.create(user.id, { path: 'Box' });
          const r = await f.append(inbox, { body: base64Lines(noise(10_000, 5)) }, { blobBody: true });
          await f.append(box, { body: 'small\r\n' });
          // bob shares the same attachment content
          const bob = await s.users.create({ username: 'bob', passwordHash: null });
          const bobInbox = await s.mailboxes.create(bob.id, { path: 'INBOX' });
          const m = await fakeMessage(s.blobs, simpleMessage({ body: base64Lines(noise(10_000, 5)) }), { blobBody: true });
          const bobMsg = await s.messages.append({ userId: bob.id, mailboxId: bobInbox.id, flags: [], internalDate: Date.now(), message: m });
          assert.equal((await s.blobs.stats()).count, 1);

          await s.users.delete(user.id);
          assert.equal(await s.users.get(user.id), null);
          assert.equal(await s.users.getByUsername('alice'), null);
          assert.equal(await s.mailboxes.get(inbox.id), null);
          assert.deepEqual(await s.mailboxes.list(user.id), []);
          assert.equal(await s.messages.getById(r.id), null);
          assert.equal(await s.users.resolveAddress('alice@example.com'), null);
          assert.deepEqual(await s.users.listAddresses(user.id), []);
          assert.equal((await s.blobs.stats()).count, 1, "bob's reference keeps the blob");
          const bobContent = (await s.messages.content(bobMsg.id))!;
          assert.equal((await messageBytes(bobContent, s.blobs)).length, m.size);
          await rejectsWith(s.users.delete(user.id), 'NONEXISTENT');

          await s.users.delete(bob.id);
          assert.equal((await s.blobs.stats()).count, 0);
          // the username is free again
          const again = await s.users.create({ username: 'alice', passwordHash: null });
          assert.notEqual(again.id, user.id);
          assert.equal(again.messagesUsed, 0);
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('ephemeral state', () => {
      // what an EphemeralPort does is its own contract (test/helpers/ephemeral-contract.ts); here: the backend has one
      it('serves counters, locks and pub/sub (the EphemeralPort contract covers them in full)', () =>
        withStorage(async ({ s }) => {
          const e = s.ephemeral;
          assert.equal(await e.incr('c', 2, 60_000), 2);
          assert.equal(await e.get('c'), 2);
          const token = await e.lock('L', 60_000);
          assert.ok(token);
          assert.equal(await e.extend('L', token!, 60_000), true);
          assert.equal(await e.unlock('L', token!), true);
          const got: string[] = [];
          const off = e.subscribe('ch', (m) => got.push(m));
          for (let i = 0; i < 200 && got.length === 0; i++) {
            await e.publish('ch', 'one');
            await sleep(10);
          }
          off();
          assert.equal(got[0], 'one');
        }));
    });

    // -----------------------------------------------------------------------------------------------------------
    describe('persistence', () => {
      it('sees the same data after close and reopen', async (t) => {
        const h = await open();
        try {
          if (!h.reopen) {
            t.skip('factory has no reopen()');
            return;
          }
          let s = h.storage;
          const user = await s.users.create({ username: 'alice', passwordHash: null });
          await s.users.addAddress(user.id, { address: 'alice@example.com', display: 'Alice@example.com' });
          const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
          const raw = simpleMessage({ subject: 'persist', body: base64Lines(noise(100_000, 9)) });
          const r = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: ['\\Seen', 'Keep'], internalDate: 1_700_000_000_000, message: await fakeMessage(s.blobs, raw, { blobBody: true }) });
          const raw2 = simpleMessage({ subject: 'inline', body: 'short\r\n' });
          await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 1_700_000_000_000, message: await fakeMessage(s.blobs, raw2) });
          await s.messages.expunge(inbox.id, [2]);
          const latest = await s.changes.latest(user.id);
          const box = (await s.mailboxes.get(inbox.id))!;

          s = await h.reopen();
          assert.deepEqual(await s.users.get(user.id), { ...user, storageUsed: new TextEncoder().encode(raw).length, messagesUsed: 1 });
          assert.equal((await s.users.resolveAddress('alice@example.com'))!.userId, user.id);
          assert.deepEqual(await s.mailboxes.get(inbox.id), box);
          const m = (await s.messages.get(inbox.id, r.uid))!;
          assert.deepEqual(m.flags, ['\\Seen', 'Keep']);
          assert.equal(m.internalDate, 1_700_000_000_000);
          assert.equal(text(await messageBytes((await s.messages.content(m.id))!, s.blobs)), raw);
          assert.equal(await s.changes.latest(user.id), latest);
          assert.equal((await s.blobs.stats()).count, 1);
          // allocation continues where it stopped
          const r3 = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message: await fakeMessage(s.blobs, raw2) });
          assert.equal(r3.uid, 3);
          assert.ok(r3.modseq > box.highestModseq);
          await rejectsWith(s.users.create({ username: 'alice', passwordHash: null }), 'ALREADYEXISTS');
        } finally {
          await h.cleanup();
        }
      });
    });
  });
}
