/**
 * What `wildduck storage copy` must do for any pair of backends (storage/copy.ts over RestorePort): run inside a
 * `describe` with a way to open the source (populated here before the tests) and targets by name. test/storage-copy.test.ts
 * runs it embedded to embedded; a MongoDB target runs it the same way.
 */
import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingestMessage } from '../../storage/mime/ingest.ts';
import { readAll, readMessage } from '../../storage/mime/reassemble.ts';
import { copyStore, verifyCopy } from '../../storage/copy.ts';
import type { Id, StoragePorts } from '../../storage/ports.ts';
import { generatedMessage } from './generated-mail.ts';

/** The attachment generatedMessage(i) carries for every i divisible by 15: one blob for all of them. */
const SHARED = [0, 15, 30, 45];

export async function append(storage: StoragePorts, userId: Id, mailboxId: Id, bytes: Uint8Array, flags: string[] = [], internalDate = Date.UTC(2026, 0, 2)): Promise<number> {
  const message = await ingestMessage(bytes, storage.blobs);
  return (await storage.messages.append({ userId, mailboxId, flags, internalDate, message })).uid;
}

/**
 * Two users: alice (tags, quota, two addresses, nested mailboxes, a Sent mailbox not subscribed, a filter into
 * Work/Projects, an autoreply, settings, an ASP and a token) and bob (disabled); messages with flags and keywords, the
 * same attachment in several of them, a flag change after the append and an expunge.
 */
export async function populate(storage: StoragePorts, count = 60): Promise<void> {
  const alice = await storage.users.create({ username: 'alice', name: 'Alice A', passwordHash: '$scrypt$fake-hash', quota: { storage: 50_000_000, messages: null }, tags: ['staff', 'vip'] });
  const bob = await storage.users.create({ username: 'bob', passwordHash: null });
  await storage.users.update(bob.id, { disabled: true });
  await storage.users.addAddress(alice.id, { address: 'alice@example.com', display: 'Alice@Example.com' });
  await storage.users.addAddress(alice.id, { address: 'a.alias@example.org', display: 'a.alias@example.org', main: false });
  await storage.users.addAddress(bob.id, { address: 'bob@example.com', display: 'bob@example.com' });
  const inbox = await storage.mailboxes.create(alice.id, { path: 'INBOX', specialUse: '\\Inbox' });
  await storage.mailboxes.create(alice.id, { path: 'Work' });
  const projects = await storage.mailboxes.create(alice.id, { path: 'Work/Projects' });
  const sent = await storage.mailboxes.create(alice.id, { path: 'Sent', specialUse: '\\Sent', subscribed: false });
  const bobInbox = await storage.mailboxes.create(bob.id, { path: 'INBOX', specialUse: '\\Inbox' });
  await storage.documents.put(alice.id, 'filter', { name: 'projects', query: { subject: 'project' }, action: { mailbox: projects.id }, disabled: false });
  await storage.documents.put(alice.id, 'autoreply', { status: true, subject: 'Away', text: 'Back soon' }, { id: 'default' });
  await storage.documents.put(alice.id, 'settings', { targets: ['x@example.net'], spamLevel: 50 }, { id: 'delivery' });
  await storage.documents.put(alice.id, 'asp', { description: 'phone', hash: '$scrypt$asp', scopes: ['imap'] });
  await storage.documents.put(alice.id, 'token', { scopes: ['*'] }, { key: 'token-hash-1' });

  const targets = [inbox, projects, sent];
  for (let i = 0; i < count; i++) {
    const flags = i % 4 === 0 ? ['\\Seen'] : i % 4 === 1 ? ['\\Flagged', '$Important'] : i % 4 === 2 ? ['\\Seen', '\\Answered', 'project-x'] : [];
    await append(storage, alice.id, targets[i % 3]!.id, generatedMessage(i), flags, Date.UTC(2026, 0, 1) + i * 60_000);
  }
  for (const i of SHARED) await append(storage, bob.id, bobInbox.id, generatedMessage(i), [], Date.UTC(2026, 1, 1) + i);
  // flag changes after the appends (modseqs out of UID order) and an expunge (UIDNEXT above the last UID)
  await storage.messages.setFlags(inbox.id, [1, 2], { action: 'add', flags: ['\\Seen', 'Later'] });
  await storage.messages.expunge(inbox.id, [3]);
}

export async function messageBytes(storage: StoragePorts, mailboxId: Id, uid: number): Promise<Uint8Array> {
  const [parts] = await storage.messages.parts(mailboxId, [uid], { content: true });
  return readAll(readMessage(parts!.content!, storage.blobs));
}

export interface CopyContractOptions {
  /** Opens the (empty) source store; populated before the first test, closed after the last. */
  openSource(): Promise<StoragePorts>;
  /** Opens the target store named `name`, empty the first time; the same name opens the same store again. */
  openTarget(name: string): Promise<StoragePorts>;
}

/** Registers the copy tests; returns the populated source (valid from the first test on). */
export function copyContract({ openSource, openTarget }: CopyContractOptions): () => StoragePorts {
  let store: StoragePorts | null = null;
  const source = () => store!;
  before(async () => {
    store = await openSource();
    await populate(store);
  });
  after(async () => {
    await store?.close();
  });

  it('copies users, addresses, documents, mailboxes and messages byte-exact, blobs once, and verifies', { timeout: 120_000 }, async () => {
    const target = await openTarget('full');
    try {
      const copied = await copyStore(source(), target);
      assert.equal(copied.stopped, false);
      assert.equal(copied.users, 2);
      assert.equal(copied.documents, 5);
      assert.equal(copied.messagesCopied, 60 - 1 + SHARED.length);
      assert.equal(copied.messagesDone, copied.messagesTotal);

      const verified = await verifyCopy(source(), target);
      assert.deepEqual(verified.mismatches, []);
      assert.equal(verified.messages, 63);

      const [a, b] = [(await source().users.getByUsername('alice'))!, (await target.users.getByUsername('alice'))!];
      for (const key of ['name', 'passwordHash', 'quota', 'tags', 'disabled', 'created', 'storageUsed', 'messagesUsed'] as const) assert.deepEqual(b[key], a[key], key);
      assert.equal((await target.users.getByUsername('bob'))!.disabled, true);
      const strip = <T extends { id: Id; userId: Id }>(list: T[]) => list.map(({ id: _id, userId: _user, ...rest }) => rest);
      assert.deepEqual(strip(await target.users.listAddresses(b.id)), strip(await source().users.listAddresses(a.id)));

      const sourceBoxes = await source().mailboxes.list(a.id);
      const targetBoxes = await target.mailboxes.list(b.id);
      assert.deepEqual(
        targetBoxes.map(({ id: _id, userId: _user, ...rest }) => rest),
        sourceBoxes.map(({ id: _id, userId: _user, ...rest }) => rest),
      );
      const sent = targetBoxes.find((m) => m.path === 'Sent')!;
      assert.equal(sent.specialUse, '\\Sent');
      assert.equal(sent.subscribed, false);

      // every kind of document; the filter names the target's Work/Projects
      const docs = await target.documents.listAll(b.id);
      assert.deepEqual(docs.map((d) => d.kind).sort(), ['asp', 'autoreply', 'filter', 'settings', 'token']);
      const filter = docs.find((d) => d.kind === 'filter')! as { data: { action: { mailbox: string } } };
      assert.equal(filter.data.action.mailbox, targetBoxes.find((m) => m.path === 'Work/Projects')!.id);
      assert.equal((await target.documents.findByKey('token', 'token-hash-1'))?.userId, b.id);
      const sourceDocs = await source().documents.listAll(a.id);
      for (const d of sourceDocs.filter((d) => d.kind !== 'filter')) {
        const copy = docs.find((x) => x.kind === d.kind && x.id === d.id)!;
        assert.deepEqual([copy.data, copy.key, copy.created, copy.updated], [d.data, d.key, d.created, d.updated], d.kind);
      }

      // flags, keywords, modseqs and dates as in the source; the bytes equal
      const inboxA = sourceBoxes.find((m) => m.path === 'INBOX')!;
      const inboxB = targetBoxes.find((m) => m.path === 'INBOX')!;
      assert.deepEqual(await target.messages.index(inboxB.id), await source().messages.index(inboxA.id));
      assert.deepEqual(await messageBytes(target, inboxB.id, 1), generatedMessage(0));
      assert.equal((await target.messages.get(inboxB.id, 3)), null, 'the expunged UID stays gone');
      assert.equal(inboxB.uidNext, inboxA.uidNext);

      // the shared attachment (and every other) is stored once in the target too
      assert.equal((await target.blobs.stats()).count, (await source().blobs.stats()).count);
      // search works on the copy: the target built its own search text
      const [hits] = await target.search.match(inboxB.id, [{ field: 'subject', value: 'generated 9' }]);
      assert.deepEqual(hits, [4]);
      // a mailbox made in the target later gets a larger UIDVALIDITY than every copied one
      const fresh = await target.mailboxes.create(b.id, { path: 'New' });
      assert.ok(fresh.uidValidity > Math.max(...sourceBoxes.map((m) => m.uidValidity)));
    } finally {
      await target.close();
    }
  });

  it('resumes a stopped copy without duplicates, and a later run brings the source changes since', { timeout: 120_000 }, async () => {
    let target = await openTarget('resumed');
    try {
      let copiedSoFar = 0;
      const first = await copyStore(source(), target, { parallel: 4, progress: (p) => (copiedSoFar = p.messagesCopied), shouldStop: () => copiedSoFar >= 20 });
      assert.equal(first.stopped, true);
      assert.ok(first.messagesCopied >= 20 && first.messagesCopied < 63, String(first.messagesCopied));
      await target.close();
      target = await openTarget('resumed');
      const second = await copyStore(source(), target);
      assert.equal(second.stopped, false);
      assert.equal(second.messagesCopied, 63 - first.messagesCopied);
      assert.equal(second.messagesDone, 63);
      assert.deepEqual((await verifyCopy(source(), target)).mismatches, []);
      assert.equal((await target.users.getByUsername('alice'))!.messagesUsed, 59);
      assert.equal((await target.blobs.stats()).count, (await source().blobs.stats()).count);

      // the source changes (flags, an expunge, new mail) while the target is not in use: a second run catches up
      const alice = (await source().users.getByUsername('alice'))!;
      const inbox = (await source().mailboxes.getByPath(alice.id, 'INBOX'))!;
      await source().messages.setFlags(inbox.id, [4, 7], { action: 'set', flags: ['\\Deleted'] });
      await source().messages.expunge(inbox.id, [10]);
      await append(source(), alice.id, inbox.id, generatedMessage(100), ['\\Draft']);
      // a mailbox renamed, another deleted and made again (a new UIDVALIDITY)
      await source().mailboxes.rename(alice.id, 'Work/Projects', 'Archive/Projects');
      await source().mailboxes.delete((await source().mailboxes.getByPath(alice.id, 'Sent'))!.id);
      const sent = await source().mailboxes.create(alice.id, { path: 'Sent', specialUse: '\\Sent' });
      await append(source(), alice.id, sent.id, generatedMessage(101), ['\\Seen']);
      const projects = (await source().mailboxes.getByPath(alice.id, 'Archive/Projects'))!;
      const third = await copyStore(source(), target);
      assert.deepEqual([third.flagsUpdated, third.expunged, third.mailboxesRemoved], [2, 1, 1]);
      assert.equal(third.messagesCopied, 1 + 1 + (await source().mailboxes.counters(projects.id)).messages);
      assert.deepEqual((await verifyCopy(source(), target)).mismatches, []);
      const copy = (await target.users.getByUsername('alice'))!;
      const filter = (await target.documents.list<{ action: { mailbox: string } }>(copy.id, 'filter'))[0]!;
      assert.equal(filter.data.action.mailbox, (await target.mailboxes.getByPath(copy.id, 'Archive/Projects'))!.id, 'the filter follows the renamed mailbox');
      const again = await copyStore(source(), target);
      assert.deepEqual([again.messagesCopied, again.flagsUpdated, again.expunged, again.mailboxesRemoved], [0, 0, 0, 0]);
    } finally {
      await target.close();
    }
  });

  return source;
}
