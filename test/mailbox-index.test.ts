/**
 * The shared per-mailbox index (storage/mailbox-index) and the IMAP sessions viewing it: one index per open
 * mailbox for every session, dropped with its last session (or kept warm for a while), each session holding only
 * its difference from the index, and every session seeing the others' APPEND / STORE / EXPUNGE at the points
 * RFC 3501 allows, with its own sequence numbers.
 */
import { describe, it, before, after } from 'node:test';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { bootImapTestApp, createWithMessages, login, twoSessionsOn, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { fakeMessage } from './helpers/fake-message.ts';
import { MailboxIndexes } from '../storage/mailbox-index/registry.ts';
import { SelectedMailbox } from '../protocols/imap/selected.ts';
import { packedIndexColumns } from '../storage/mailbox-index/columns.ts';
import { MailboxIndex } from '../storage/mailbox-index/mailbox-index.ts';
import { decodeIndexSnapshot, encodeIndexSnapshot } from '../storage/mailbox-index/snapshot.ts';
import type { IndexSnapshotSource, MailboxRecord } from '../storage/ports.ts';
import { rowId } from '../storage/sqlite/common.ts';
import { sqliteOnly } from './helpers/test-backend.ts';

/** Index snapshots are optional for a backend (messages.indexSnapshot): the embedded one keeps them, MongoDB none. */
const noSnapshots = sqliteOnly('index snapshots (messages.indexSnapshot) are kept by the embedded backend only');

describe('shared mailbox index', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ storage: { mailboxIndex: { lingerSeconds: 0 } } });
  });
  after(() => t.close());

  const mailbox = async (path: string): Promise<MailboxRecord> => (await t.app.storage.mailboxes.getByPath(t.userId, path))!;

  it('is one index for every session on a mailbox, dropped when the last one leaves', async () => {
    const a = await login(t.app);
    const b = await login(t.app);
    await createWithMessages(a, 'Idx1', 2);
    await a.command('CREATE Idx1b');
    await a.command('SELECT Idx1');
    await b.command('SELECT Idx1');
    const box = await mailbox('Idx1');
    assert.equal(t.app.indexes.size, 1);
    assert.equal(t.app.indexes.peek(box.id)?.views, 2);
    await a.command('LOGOUT');
    await a.done;
    assert.equal(t.app.indexes.peek(box.id)?.views, 1);
    await b.command('SELECT Idx1b');
    assert.equal(t.app.indexes.peek(box.id), null, 'dropped with its last session');
    assert.equal(t.app.indexes.size, 1);
    await b.command('UNSELECT');
    assert.equal(t.app.indexes.size, 0);
    b.end();
  });

  it('lingers for reuse, catching up on what changed while nobody held it, at most maxLingering', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx4', 1);
    await a.command('CREATE Idx4b');
    const indexes = new MailboxIndexes(t.app.storage, { lingerMs: 60_000, maxLingering: 1 });
    const first = await indexes.acquire(await mailbox('Idx4'));
    const held = first.index;
    assert.equal(held.count, 1);
    first.release();
    first.release(); // idempotent
    assert.equal(indexes.size, 1, 'kept warm');
    await appendMessage(a, 'Idx4', message('while-lingering'));
    const again = await indexes.acquire(await mailbox('Idx4'));
    assert.equal(again.index, held, 'the same index');
    assert.equal(again.index.count, 2, 'caught up on the change log');
    again.release();
    const other = await indexes.acquire(await mailbox('Idx4b'));
    other.release();
    assert.equal(indexes.size, 1);
    assert.equal(indexes.peek(held.mailboxId), null, 'the oldest idle index went first');
    indexes.close();
    assert.equal(indexes.size, 0);
    a.end();
  });

  it('reads a change once: a notification the cursor already reaches reads nothing, a forced refresh always reads', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx6', 1);
    const box = await mailbox('Idx6');
    let reads = 0;
    const real = t.app.storage.changes;
    const changes = { latest: (user: string) => real.latest(user), since: (...args: Parameters<typeof real.since>) => (reads++, real.since(...args)) };
    const index = await MailboxIndex.load({ messages: t.app.storage.messages, changes } as never, box);
    await appendMessage(a, 'Idx6', message('notified'));
    const latest = await t.app.storage.changes.latest(t.userId);
    await index.notified(latest);
    assert.equal(index.count, 2);
    const after = reads;
    await index.notified(latest);
    await Promise.all([index.notified(latest), index.notified(latest - 1)]);
    assert.equal(reads, after, 'nothing read again for what the cursor reaches');
    await index.refresh();
    assert.equal(reads, after + 1, 'a forced refresh reads');
    // notifications while a read runs: one more read after it, none when it already got there
    await appendMessage(a, 'Idx6', message('during'));
    const next = await t.app.storage.changes.latest(t.userId);
    const before = reads;
    await Promise.all([index.refresh(), index.notified(next), index.notified(next)]);
    assert.equal(index.count, 3);
    assert.equal(reads, before + 1, 'the queued read skipped: the running one reached the notified id');
    a.end();
  });

  it('keeps its change-log place when loading the announced messages fails (database away): the next refresh loads them', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx7', 1);
    const box = await mailbox('Idx7');
    const real = t.app.storage.messages;
    let failLoads = 0;
    const messages = {
      indexColumns: (...args: Parameters<typeof real.indexColumns>) => {
        if (failLoads > 0) {
          failLoads--;
          return Promise.reject(new Error('database unavailable'));
        }
        return real.indexColumns(...args);
      },
      indexSnapshot: real.indexSnapshot ? (...args: Parameters<NonNullable<typeof real.indexSnapshot>>) => real.indexSnapshot!(...args) : undefined,
    };
    const index = await MailboxIndex.load({ messages, changes: t.app.storage.changes } as never, box);
    assert.equal(index.count, 1);
    await appendMessage(a, 'Idx7', message('announced while the load fails'));
    failLoads = 1;
    await assert.rejects(index.refresh(), /database unavailable/);
    assert.equal(index.count, 1);
    // nothing new arrives after the failure: the entries already read must be read again, not passed
    await index.refresh();
    assert.equal(index.count, 2, 'the message the failed load missed is in the index');
    a.end();
  });

  it("tells the other sessions at once of a session's own STORE and EXPUNGE, before the change log is read (IDLE)", async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx9', 3);
    const box = await mailbox('Idx9');
    // an index no notification refreshes: only the session's own changes reach it
    const index = await MailboxIndex.load(t.app.storage, box);
    const told = { own: 0, other: 0 };
    const own = { expunging() {}, changed: () => void told.own++ };
    const other = { expunging() {}, changed: () => void told.other++ };
    index.attach(own);
    index.attach(other);
    const flagged = await t.app.storage.messages.setFlags(box.id, [1], { action: 'add', flags: ['\\Flagged'] });
    const stamps = index.applyFlags(flagged.changed, own);
    assert.notEqual(stamps[0], 0);
    assert.deepEqual(told, { own: 0, other: 1 }, 'a flag change');
    assert.deepEqual(index.applyFlags(flagged.changed, own), stamps, 'the same change again: the same stamp');
    assert.deepEqual(told, { own: 0, other: 1 }, 'nothing new applied: nobody told again');
    index.expunge([2], own);
    assert.deepEqual(told, { own: 0, other: 2 }, 'an expunge');
    index.expunge([2], own);
    assert.deepEqual(told, { own: 0, other: 2 }, 'nothing removed: nobody told again');
    a.end();
  });

  it('tells a session of a keyword another session brought in before a FETCH or STORE line uses it (keywordResponses)', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx7', 2);
    const box = await mailbox('Idx7');
    const view = await SelectedMailbox.open(t.app.indexes, t.app.storage, box, false, { indexChanged() {} });
    assert.deepEqual(view.keywordResponses(), [], 'nothing new');
    await a.command('SELECT Idx7');
    await a.command('STORE 1 +FLAGS ($Brought)');
    await view.sync(true); // the index applied it: a FETCH rendering message 1 now would show $Brought
    const lines = view.keywordResponses();
    assert.match(lines[0] ?? '', /^\* FLAGS \(.*\$Brought.*\)$/);
    assert.match(lines[1] ?? '', /^\* OK \[PERMANENTFLAGS /);
    assert.deepEqual(view.keywordResponses(), [], 'told once');
    view.close();
    a.end();
  });

  it('shows each session the others\' changes at the allowed points, with its own sequence numbers', async () => {
    const a = await login(t.app);
    const b = await login(t.app);
    const c = await login(t.app);
    await createWithMessages(c, 'Idx2', 5);
    await a.command('SELECT Idx2');
    await b.command('SELECT Idx2');
    await c.command('SELECT Idx2');
    await c.command('STORE 2,4 +FLAGS.SILENT (\\Deleted)');
    await c.command('EXPUNGE');
    // no EXPUNGE during FETCH: the expunged messages keep their numbers (and last known data)
    assert.deepEqual(await a.command('FETCH 1:* (UID)'), [1, 2, 3, 4, 5].map((n) => `* ${n} FETCH (UID ${n})`).concat('TAG OK FETCH completed'));
    assert.deepEqual(await a.command('NOOP'), ['* 2 EXPUNGE', '* 3 EXPUNGE', 'TAG OK NOOP completed']);
    // A's reported expunges did not touch B's view
    assert.deepEqual(await b.command('SEARCH ALL'), ['* SEARCH 1 3 5', 'TAG OK SEARCH completed']);
    await c.command('STORE 2 +FLAGS.SILENT (\\Flagged)'); // UID 3: A's message 2, B's message 3
    await appendMessage(c, 'Idx2', message('Idx2-6'));
    const noop = await a.command('NOOP');
    assert.deepEqual(noop.filter((l) => !l.endsWith('RECENT')), ['* 4 EXISTS', '* 2 FETCH (FLAGS (\\Flagged \\Recent) UID 3)', 'TAG OK NOOP completed']);
    const uidFetch = await b.command('UID FETCH 3 (FLAGS)');
    assert.deepEqual(uidFetch.filter((l) => !l.endsWith('RECENT')), [
      '* 3 FETCH (UID 3 FLAGS (\\Flagged))',
      '* 2 EXPUNGE',
      '* 3 EXPUNGE',
      '* 4 EXISTS',
      'TAG OK UID FETCH completed',
    ]);
    assert.deepEqual(await b.command('FETCH 2,4 (UID)'), ['* 2 FETCH (UID 3)', '* 4 FETCH (UID 6)', 'TAG OK FETCH completed']);
    for (const client of [a, b, c]) client.end();
  });

  it('keeps a session\'s view steady while changes land between its sync points', async () => {
    const writer = await login(t.app);
    await createWithMessages(writer, 'Idx3', 4);
    const box = await mailbox('Idx3');
    let woken = 0;
    const view = await SelectedMailbox.open(t.app.indexes, t.app.storage, box, false, { indexChanged: () => woken++ });
    await writer.command('SELECT Idx3');
    await writer.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
    await writer.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    await writer.command('EXPUNGE');
    await appendMessage(writer, 'Idx3', message('Idx3-5'));
    await view.sync(true);
    const { index } = view.footprint();
    assert.ok(woken > 0, 'the view was told');
    assert.deepEqual([index.count, index.maxUid], [4, 5], 'the shared index moved on');
    // the client's view did not
    assert.equal(view.exists, 4);
    assert.deepEqual(view.uids(), [1, 2, 3, 4]);
    assert.deepEqual([view.seqOf(2), view.seqOf(3), view.seqOf(5)], [2, 3, 0]);
    assert.ok(view.isExpunged(2));
    assert.deepEqual(view.entry(2)?.flags, ['\\Deleted'], 'last known state of the expunged message');
    assert.equal(view.entry(5), undefined, 'not announced yet');
    assert.equal(view.footprint().expunged, 1);
    assert.deepEqual(await view.flush({ expunge: false, condstore: false }), ['* 5 EXISTS', '* 4 RECENT', '* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)']);
    assert.deepEqual(view.uids(), [1, 2, 3, 4, 5]);
    assert.deepEqual(await view.flush({ expunge: true, condstore: false }), ['* 2 EXPUNGE']);
    assert.deepEqual(view.uids(), [1, 3, 4, 5]);
    assert.equal(view.footprint().expunged, 0);
    view.close();
    assert.equal(index.views, 1, 'only the writer\'s session is left');
    writer.end();
  });

  it('claims \\Recent while the index loads: up to the mailbox record\'s UIDNEXT, then what the index holds above it', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Idx8', 2);
    const box = await mailbox('Idx8');
    assert.equal(box.uidNext, 3);
    // a message committed after the record was read: the loaded index holds UID 3, the record names UIDs 1-2
    const ingested = await fakeMessage(t.app.storage.blobs, message('Idx8-late'));
    await t.app.storage.messages.append({ userId: t.userId, mailboxId: box.id, flags: [], internalDate: Date.now(), message: ingested });
    const events: string[] = [];
    const store = t.app.storage.ephemeral;
    // a store of its own: no mark this process has seen, so each claim is a call
    const ephemeral = {
      raise: (key: string, to: number, ttl: number) => (events.push(`claim ${to}`), store.raise(key, to, ttl)),
      get: (key: string) => store.get(key),
    } as unknown as typeof store;
    const indexes = {
      async acquire(record: MailboxRecord) {
        events.push('load');
        await new Promise((resolve) => setTimeout(resolve, 10));
        const lease = await t.app.indexes.acquire(record);
        events.push('loaded');
        return lease;
      },
    } as unknown as MailboxIndexes;
    const view = await SelectedMailbox.open(indexes, { ephemeral }, box, false, { indexChanged() {} });
    assert.deepEqual(events, ['claim 2', 'load', 'loaded', 'claim 3'], 'the claim is made before the load, the rest after it');
    assert.equal(view.exists, 3);
    assert.equal(view.recent.size, 3, 'all three are recent to this session');
    assert.ok([1, 2, 3].every((uid) => view.recent.has(uid)));
    const other = await SelectedMailbox.open(t.app.indexes, { ephemeral }, box, false, { indexChanged() {} });
    assert.equal(other.recent.size, 0, 'and to no other');
    assert.deepEqual(events.slice(4), [], 'a claim under the mark this process saw makes no call');
    other.close();
    view.close();
    a.end();
  });

  it('holds no per-message copy in a session: only counts of its own pending differences', async () => {
    const client = await login(t.app);
    await client.command('CREATE Idx5');
    const box = await mailbox('Idx5');
    for (let i = 0; i < 60; i++) {
      const ingested = await fakeMessage(t.app.storage.blobs, message(`Idx5-${i}`));
      await t.app.storage.messages.append({ userId: t.userId, mailboxId: box.id, flags: i % 2 ? ['\\Seen'] : [], internalDate: Date.now(), message: ingested });
    }
    const view = await SelectedMailbox.open(t.app.indexes, t.app.storage, box, false, { indexChanged() {} });
    const other = await SelectedMailbox.open(t.app.indexes, t.app.storage, box, true, { indexChanged() {} });
    const { index } = view.footprint();
    assert.equal(other.footprint().index, index, 'both sessions view one index');
    assert.equal(index.count, 60);
    assert.deepEqual({ ...view.footprint(), index: null }, { expunged: 0, ownChanges: 0, recentRanges: 1, index: null });
    assert.notEqual(view.uids(), view.uids(), 'sequence maps are built per command, not kept');
    assert.equal(view.firstUnseen(), 1);
    assert.equal(index.flagSets.size, 2, 'flag lists interned: two distinct ones for 60 messages');
    const result = await t.app.storage.messages.setFlags(box.id, [1, 2, 3], { action: 'add', flags: ['$Label'] });
    assert.equal(view.applyFlags(result.changed), true, 'a new keyword');
    assert.equal(view.footprint().ownChanges, 3);
    assert.ok(view.flagList().includes('$Label'));
    await other.sync(true);
    const lines = await other.flush({ expunge: true, condstore: true });
    assert.equal(lines.filter((l) => l.includes('FETCH')).length, 3, 'the other session hears of them');
    assert.deepEqual(await view.flush({ expunge: true, condstore: false }), [], 'its own changes are not reported twice');
    assert.equal(view.footprint().ownChanges, 0);
    view.close();
    other.close();
    assert.equal(t.app.indexes.peek(box.id), null);
    client.end();
  });
});

describe('index snapshots (a large mailbox opens from one saved byte string, then catches up on the change log)', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ storage: { mailboxIndex: { lingerSeconds: 0 } } });
  });
  after(() => t.close());

  const entries = (index: MailboxIndex) => Array.from({ length: index.count }, (_, i) => index.entryAt(i));
  /** The snapshot saved for a mailbox, read whole (its source closed), or null. */
  const savedSnapshot = async (mailboxId: string) => {
    const source = await t.app.storage.messages.indexSnapshot!(mailboxId);
    if (!source) return null;
    try {
      return { uidValidity: source.uidValidity, cursor: source.cursor, bytes: source.read(0, source.length) };
    } finally {
      source.close();
    }
  };
  /** A new mailbox with `count` messages whose index was loaded and dropped by a registry saving snapshots from `min` messages. */
  const droppedWithSnapshot = async (name: string, count: number, min: number) => {
    const a = await login(t.app);
    await createWithMessages(a, name, count);
    const box = (await t.app.storage.mailboxes.getByPath(t.userId, name))!;
    const indexes = new MailboxIndexes(t.app.storage, { lingerMs: 0, maxLingering: 0, snapshotMinMessages: min });
    (await indexes.acquire(box)).release();
    await indexes.close();
    return { a, box, saved: await savedSnapshot(box.id) };
  };

  it('saves an index when it leaves memory; the next load reads it and catches up with what changed since', { skip: noSnapshots }, async () => {
    const { a, box, saved } = await droppedWithSnapshot('Snap', 4, 2);
    assert.ok(saved, 'saved when dropped');

    // changes after the snapshot: a new message, a flag change, an expunge
    await a.command('SELECT Snap');
    await appendMessage(a, 'Snap', message('after-snapshot'));
    await a.command('STORE 2 +FLAGS (\\Flagged $Later)');
    await a.command('STORE 1 +FLAGS (\\Deleted)');
    await a.command('EXPUNGE');
    await a.command('UNSELECT');

    const real = t.app.storage.messages;
    let fullReads = 0;
    const messages = {
      indexColumns: (id: string, options?: { afterUid?: number }) => (options?.afterUid ? undefined : fullReads++, real.indexColumns(id, options)),
      indexSnapshot: (id: string) => real.indexSnapshot!(id),
    };
    const second = new MailboxIndexes({ messages, changes: t.app.storage.changes } as never, { lingerMs: 0, maxLingering: 0 });
    const lease = await second.acquire((await t.app.storage.mailboxes.getByPath(t.userId, 'Snap'))!);
    assert.equal(fullReads, 0, 'read from the snapshot, not every row');
    const fresh = await MailboxIndex.load({ messages: { indexColumns: messages.indexColumns }, changes: t.app.storage.changes } as never, box);
    assert.equal(fullReads, 1);
    assert.deepEqual(entries(lease.index), entries(fresh));
    assert.equal(lease.index.count, 4);
    assert.deepEqual(lease.index.flagSets.keywords(), ['$Later']);
    lease.release();
    await second.close();
    a.end();
  });

  it('saves an index read in full right after loading it, so a server that stops without closing (a crash) finds it', { skip: noSnapshots }, async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Snap3', 3);
    const box = (await t.app.storage.mailboxes.getByPath(t.userId, 'Snap3'))!;
    assert.equal(await savedSnapshot(box.id), null);
    const indexes = new MailboxIndexes(t.app.storage, { lingerMs: 60_000, maxLingering: 1, snapshotMinMessages: 2 });
    const lease = await indexes.acquire(box); // held: it never leaves memory, and the registry is never closed
    for (let i = 0; i < 50 && !(await savedSnapshot(box.id)); i++) await new Promise((r) => setTimeout(r, 10));
    const saved = await savedSnapshot(box.id);
    assert.equal(saved && decodeIndexSnapshot(saved.bytes)?.columns.count, 3);
    assert.equal(lease.index.unsaved, false);
    lease.release();
    a.end();
  });

  it('reads only the header of a snapshot when it loads; UIDs and flags, then modseqs, sizes and dates when first used, then closes it', { skip: noSnapshots }, async () => {
    const { a, box } = await droppedWithSnapshot('Snap5', 5, 1);
    const sources: Array<{ length: number; read: number; closed: boolean }> = [];
    const real = t.app.storage.messages;
    const messages = {
      indexColumns: (id: string, options?: { afterUid?: number }) => real.indexColumns(id, options),
      async indexSnapshot(id: string): Promise<IndexSnapshotSource | null> {
        const source = await real.indexSnapshot!(id);
        if (!source) return null;
        const seen = { length: source.length, read: 0, closed: false };
        sources.push(seen);
        return {
          uidValidity: source.uidValidity,
          cursor: source.cursor,
          length: source.length,
          read: (offset, length) => ((seen.read += length), source.read(offset, length)),
          close: () => ((seen.closed = true), source.close()),
        };
      },
    };
    const storage = { messages, changes: t.app.storage.changes } as never;
    const fullRead = async () => {
      const index = await MailboxIndex.load({ messages: { indexColumns: messages.indexColumns }, changes: t.app.storage.changes } as never, box);
      await index.refresh();
      return index;
    };
    let fresh = await fullRead();

    const lazy = await MailboxIndex.load(storage, box, 60_000);
    const lazySource = sources[0]!;
    const afterHeader = lazySource.read;
    assert.ok(afterHeader < 48 + 200, `read ${afterHeader} of ${lazySource.length} bytes: the header and flag lists`);
    // what SELECT asks of a mailbox unchanged since its snapshot comes from the header
    assert.equal(lazy.count, 5);
    assert.equal(lazy.maxUid, fresh.maxUid);
    assert.equal(lazy.firstUnseen(), fresh.firstUnseen());
    assert.equal(lazy.lowerBound(lazy.maxUid + 1), 5);
    assert.equal(lazy.lowerBound(1), 0);
    assert.equal(lazy.uidAt(0), fresh.uidAt(0));
    assert.equal(lazySource.read, afterHeader, 'no column read yet');
    const column = (index: MailboxIndex, at: (i: number) => unknown) => Array.from({ length: index.count }, (_, i) => at.call(index, i));
    assert.deepEqual(column(lazy, lazy.uidAt), column(fresh, fresh.uidAt));
    assert.deepEqual(column(lazy, lazy.flagsAt), column(fresh, fresh.flagsAt));
    assert.ok(lazySource.read > afterHeader, 'a UID in the middle reads the UIDs and flags');
    assert.equal(lazySource.closed, false, 'the rest is still to be read');
    assert.deepEqual(lazy.entryAt(4), fresh.entryAt(4));
    assert.equal(lazySource.closed, true, 'a size or date reads the rest, once');
    assert.ok(lazySource.read > lazySource.length - 8, 'every part read once (all but the padding after the flag lists)');

    await MailboxIndex.load(storage, box, 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sources[1]!.closed, true, 'read a moment later when nothing needs it sooner');

    await a.command('SELECT Snap5');
    await a.command('STORE 2 +FLAGS (\\Seen $Head)');
    await a.command('UNSELECT');
    fresh = await fullRead();
    const index = await MailboxIndex.load(storage, box, 60_000);
    await index.refresh(); // the flag change after the snapshot: it compares modseqs, so it reads the rest
    assert.equal(sources[2]!.closed, true, 'the rest was read for the catch-up');
    assert.deepEqual(entries(index), entries(fresh));
    assert.deepEqual(index.flagSets.keywords(), ['$Head']);
    a.end();
  });

  it('writes flag list numbers in 1, 2 or 4 bytes as the lists need, and reads them back', () => {
    for (const lists of [3, 300, 70_000]) {
      const count = lists + 2;
      const uids = Uint32Array.from({ length: count }, (_, i) => i * 2 + 1);
      const flags = Uint32Array.from({ length: count }, (_, i) => i % lists);
      const columns = {
        count,
        uids,
        modseqs: Float64Array.from({ length: count }, (_, i) => i + 10),
        sizes: Float64Array.from({ length: count }, (_, i) => 1000 + i),
        internalDates: Float64Array.from({ length: count }, (_, i) => 1.7e12 + i),
        flags,
        flagSets: Array.from({ length: lists }, (_, k) => (k === 0 ? [] : [`$k${k}`])),
      };
      const bytes = encodeIndexSnapshot({ columns, loadedThrough: count * 2 + 5, highestModseq: count + 10, firstUnseen: 1 });
      const state = decodeIndexSnapshot(bytes)!;
      assert.ok(state, `${lists} lists`);
      assert.equal(state.loadedThrough, count * 2 + 5);
      assert.equal(state.highestModseq, count + 10);
      assert.equal(state.firstUnseen, 1);
      for (const key of ['uids', 'modseqs', 'sizes', 'internalDates', 'flags'] as const) assert.deepEqual(Array.from(state.columns[key]), Array.from(columns[key]), `${key}, ${lists} lists`);
      assert.deepEqual(state.columns.flagSets, columns.flagSets);
      assert.equal(decodeIndexSnapshot(bytes.subarray(0, bytes.length - 1)), null, 'a short snapshot is none');
      // a damaged first or last UID (same length): not a snapshot either, so the index is read in full at load
      const uidsAt = (48 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true) + 7) & ~7; // after the header and the flag lists
      for (const at of [uidsAt, uidsAt + (count - 1) * 4]) {
        const damaged = bytes.slice();
        damaged[at] = damaged[at]! ^ 0xff;
        assert.equal(decodeIndexSnapshot(damaged), null, `a damaged UID at ${at === uidsAt ? 'the start' : 'the end'}, ${lists} lists`);
      }
    }
  });

  it('keeps each snapshot in a file that names its own cursor; a damaged file means a full read, a deleted mailbox\'s file goes', { skip: noSnapshots }, async () => {
    const { a, box, saved } = await droppedWithSnapshot('Snap4', 3, 1);
    assert.ok(saved);
    const file = join(t.dataDir, 'index', `${rowId(box.id)}.snapshot`);
    const bytes = readFileSync(file);
    assert.equal(bytes.length, 16 + saved.bytes.length, 'UIDVALIDITY and cursor, then the snapshot');
    writeFileSync(file, bytes.subarray(0, bytes.length - 5));
    let fullReads = 0;
    const real = t.app.storage.messages;
    const messages = {
      indexColumns: (id: string, options?: { afterUid?: number }) => (options?.afterUid ? undefined : fullReads++, real.indexColumns(id, options)),
      indexSnapshot: (id: string) => real.indexSnapshot!(id),
    };
    const index = await MailboxIndex.load({ messages, changes: t.app.storage.changes } as never, box);
    assert.equal(fullReads, 1, 'a short file is not a snapshot');
    assert.equal(index.count, 3);
    await a.command('DELETE Snap4');
    assert.equal(await savedSnapshot(box.id), null);
    assert.equal(existsSync(file), false, 'removed once its mailbox is gone');
    a.end();
  });

  it('ignores a snapshot the change log can no longer catch up (pruned past its cursor), or one of another UIDVALIDITY', { skip: noSnapshots }, async () => {
    const { a, box, saved } = await droppedWithSnapshot('Snap2', 3, 1);
    assert.ok(saved);
    assert.equal(decodeIndexSnapshot(saved.bytes)?.columns.count, 3);
    await t.app.storage.messages.saveIndexSnapshot!(box.id, { ...saved, uidValidity: saved.uidValidity + 1 });
    assert.equal((await savedSnapshot(box.id))?.uidValidity, saved.uidValidity, 'not for another UIDVALIDITY');
    await t.app.storage.messages.saveIndexSnapshot!(box.id, { ...saved, cursor: saved.cursor - 1 });
    assert.equal((await savedSnapshot(box.id))?.cursor, saved.cursor, 'an older one does not replace a newer one');
    await appendMessage(a, 'Snap2', message('then-pruned'));
    await t.app.storage.changes.prune(Date.now() + 60_000);
    assert.equal(await savedSnapshot(box.id), null);
    const lease = await new MailboxIndexes(t.app.storage, { lingerMs: 0, maxLingering: 0 }).acquire(box);
    assert.equal(lease.index.count, 4, 'read in full');
    lease.release();
    a.end();
  });
});

describe('SELECT of a mailbox opened from its snapshot (columns read when first used)', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ storage: { mailboxIndex: { lingerSeconds: 0, snapshotMinMessages: 1 } } });
  });
  after(() => t.close());

  const select = (lines: string[]) => lines.filter((l) => !/^\* OK \[(CLOSED|PERMANENTFLAGS)/.test(l) && !l.startsWith('* FLAGS')).sort();

  it('answers as from a full read, then every command and other sessions\' changes see the same messages', { skip: noSnapshots }, async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Lazy', 6);
    await a.command('SELECT Lazy');
    await a.command('STORE 1:2,4 +FLAGS (\\Seen)');
    await a.command('STORE 5 +FLAGS ($Late)');
    const first = await a.command('EXAMINE Lazy');
    const fetched = await a.command('FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)');
    await a.command('UNSELECT'); // the last holder leaves: the index is saved and dropped
    const box = (await t.app.storage.mailboxes.getByPath(t.userId, 'Lazy'))!;
    assert.equal(t.app.indexes.peek(box.id), null);
    assert.ok(existsSync(join(t.dataDir, 'index', `${rowId(box.id)}.snapshot`)), 'saved as a snapshot');

    const again = await a.command('EXAMINE Lazy');
    const index = t.app.indexes.peek(box.id)!;
    assert.ok(index, 'loaded again, from the snapshot');
    assert.deepEqual(select(again), select(first));
    assert.ok(again.includes('* OK [UNSEEN 3] First unseen message'), again.join('\n'));
    assert.ok(again.some((l) => /^\* FLAGS \(.*\$Late/.test(l)), 'keywords from the snapshot');
    assert.deepEqual(await a.command('FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)'), fetched);

    // another session changes the mailbox: the first one hears of it with its own sequence numbers
    await a.command('UNSELECT');
    await a.command('SELECT Lazy');
    const b = await login(t.app);
    await b.command('SELECT Lazy');
    await b.command('STORE 3 +FLAGS (\\Deleted)');
    await b.command('EXPUNGE');
    await appendMessage(b, 'Lazy', message('Lazy-7'));
    const noop = await a.command('NOOP');
    assert.ok(noop.includes('* 3 EXPUNGE'), noop.join('\n'));
    assert.ok(noop.includes('* 6 EXISTS'), noop.join('\n'));
    const uids = (await a.command('UID SEARCH ALL')).find((l) => l.startsWith('* SEARCH'));
    assert.equal(uids, '* SEARCH 1 2 4 5 6 7');
    a.end();
    b.end();
  });
});

describe('packed index pages (one aggregate row per page instead of a row per message)', () => {
  const page = (rows: Array<[number, number, number, number, string]>) => ({
    count: rows.length,
    uids: rows.map((r) => r[0]).join(','),
    modseqs: rows.map((r) => r[1]).join(','),
    sizes: rows.map((r) => r[2]).join(','),
    dates: rows.map((r) => r[3]).join(','),
    flags: rows.map((r) => r[4]).join('\n'),
  });

  it('gives the same columns as reading rows, across pages, each flag list parsed once', () => {
    const parsed: string[] = [];
    const columns = packedIndexColumns(
      [page([[3, 7, 100, -86_400_000, '["\\\\Seen"]'], [9, 12, 2048, 1_767_225_600_000, '[]']]), page([]), page([[10, 2 ** 40, 1, 0, '["\\\\Seen"]']])],
      (key) => (parsed.push(key), JSON.parse(key)),
    );
    assert.ok(columns);
    assert.equal(columns.count, 3);
    assert.deepEqual([...columns.uids], [3, 9, 10]);
    assert.deepEqual([...columns.modseqs], [7, 12, 2 ** 40]);
    assert.deepEqual([...columns.sizes], [100, 2048, 1]);
    assert.deepEqual([...columns.internalDates], [-86_400_000, 1_767_225_600_000, 0]);
    assert.deepEqual(columns.flagSets, [['\\Seen'], []]);
    assert.deepEqual([...columns.flags], [0, 1, 0]);
    assert.equal(parsed.length, 2);
  });

  it('refuses what it cannot trust (UIDs out of order, counts that disagree, text that is not numbers), so rows are read instead', () => {
    const flags = (key: string) => JSON.parse(key);
    assert.equal(packedIndexColumns([page([[5, 1, 1, 1, '[]'], [4, 1, 1, 1, '[]']])], flags), null);
    assert.equal(packedIndexColumns([page([[5, 1, 1, 1, '[]']]), page([[5, 1, 1, 1, '[]']])], flags), null);
    assert.equal(packedIndexColumns([{ ...page([[5, 1, 1, 1, '[]']]), count: 2 }], flags), null);
    assert.equal(packedIndexColumns([{ ...page([[5, 1, 1, 1, '[]']]), sizes: '1.5' }], flags), null);
  });
});
