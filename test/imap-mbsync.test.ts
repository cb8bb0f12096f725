/**
 * Two-way sync with a real client: mbsync (apt package isync) against the IMAP server over a loopback
 * socket, a mailbox of a few hundred messages, flags and deletions changed on both sides, and a clean
 * re-sync. Skipped (with the reason) only where mbsync is not installed; .ci/run installs it.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage, updateFlags, expungeMessages } from '../hooks/pipeline/index.ts';
import { generatedMessage } from './helpers/generated-mail.ts';
import { haveMbsync, mbsync, writeMbsyncConfig } from './helpers/mbsync.ts';

const COUNT = 300;

/** Maildir files of INBOX (cur and new) with their flag letters, keyed by server UID (`,U=n`). */
function localMessages(maildir: string): Map<number, { file: string; dir: string; flags: string }> {
  const out = new Map<number, { file: string; dir: string; flags: string }>();
  for (const sub of ['cur', 'new']) {
    for (const file of readdirSync(join(maildir, sub))) {
      const uid = /,U=(\d+)/.exec(file);
      assert.ok(uid, `maildir file without a UID: ${file}`);
      out.set(Number(uid[1]), { file, dir: join(maildir, sub), flags: /:2,([A-Z]*)$/.exec(file)?.[1] ?? '' });
    }
  }
  return out;
}

describe('IMAP two-way sync with mbsync', { skip: haveMbsync ? false : 'mbsync is not installed (apt-get install isync)' }, () => {
  const t = imapListenerPerSuite(); // mbsync runs with SSLType None
  let config: string;
  let maildir: string;
  let inboxId: string;

  const ctx = () => internalContext(t.app.log);
  const serverFlags = async () => new Map((await t.app.storage.messages.index(inboxId)).map((e) => [e.uid, e.flags]));

  before(async () => {
    inboxId = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!.id;
    for (let i = 0; i < COUNT; i++) {
      const flags = i < 10 ? ['\\Seen'] : i < 15 ? ['\\Flagged'] : [];
      const stored = await storeMessage(t.app, ctx(), { userId: t.userId, mailboxId: inboxId, flags, internalDate: Date.now(), source: generatedMessage(i) });
      assert.ok(stored.ok);
    }
    maildir = join(t.dataDir, 'maildir', 'INBOX');
    mkdirSync(join(t.dataDir, 'maildir'), { recursive: true });
    config = join(t.dataDir, 'mbsyncrc');
    writeMbsyncConfig(config, { port: t.port, root: join(t.dataDir, 'maildir'), inbox: maildir, patterns: 'INBOX' });
  });

  it('pulls a few hundred messages with their flags', { timeout: 120_000 }, async () => {
    const run = await mbsync(config);
    assert.equal(run.code, 0, run.out);
    const local = localMessages(maildir);
    assert.equal(local.size, COUNT);
    const flags = await serverFlags();
    for (const [uid, m] of local) {
      const server = flags.get(uid)!;
      assert.equal(m.flags.includes('S'), server.includes('\\Seen'), `uid ${uid} seen`);
      assert.equal(m.flags.includes('F'), server.includes('\\Flagged'), `uid ${uid} flagged`);
    }
  });

  it('syncs changes made on both sides, then re-syncs clean', { timeout: 120_000 }, async () => {
    const before = localMessages(maildir);
    const uids = [...before.keys()].sort((a, b) => a - b);
    // near side: flag five, delete three
    const flaggedLocally = uids.slice(100, 105);
    for (const uid of flaggedLocally) {
      const m = before.get(uid)!;
      const base = m.file.replace(/:2,[A-Z]*$/, '');
      renameSync(join(m.dir, m.file), join(maildir, 'cur', `${base}:2,${[...new Set((m.flags + 'F').split(''))].sort().join('')}`));
    }
    const deletedLocally = uids.slice(200, 203);
    for (const uid of deletedLocally) rmSync(join(before.get(uid)!.dir, before.get(uid)!.file));
    // far side: mark twenty seen, expunge two, deliver five new ones
    const seenOnServer = uids.slice(20, 40);
    assert.ok((await updateFlags(t.app, ctx(), { userId: t.userId, mailboxId: inboxId, uids: seenOnServer, update: { action: 'add', flags: ['\\Seen'] } })).ok);
    const expungedOnServer = uids.slice(250, 252);
    assert.ok((await expungeMessages(t.app, ctx(), { userId: t.userId, mailboxId: inboxId, uids: expungedOnServer })).ok);
    for (let i = COUNT; i < COUNT + 5; i++) {
      assert.ok((await storeMessage(t.app, ctx(), { userId: t.userId, mailboxId: inboxId, flags: [], internalDate: Date.now(), source: generatedMessage(i) })).ok);
    }

    const run = await mbsync(config);
    assert.equal(run.code, 0, run.out);
    const flags = await serverFlags();
    const local = localMessages(maildir);
    const expected = COUNT - deletedLocally.length - expungedOnServer.length + 5;
    assert.equal(flags.size, expected, 'server count');
    assert.equal(local.size, expected, 'local count');
    assert.deepEqual([...local.keys()].sort((a, b) => a - b), [...flags.keys()]);
    for (const uid of flaggedLocally) assert.ok(flags.get(uid)!.includes('\\Flagged'), `local flag on ${uid} reached the server`);
    for (const uid of seenOnServer) assert.ok(local.get(uid)!.flags.includes('S'), `server \\Seen on ${uid} reached the maildir`);
    for (const uid of deletedLocally) assert.equal(flags.has(uid), false, `local deletion of ${uid} reached the server`);

    // a third run finds nothing to do: no server change, same maildir
    const modseq = (await t.app.storage.mailboxes.get(inboxId))!.highestModseq;
    const files = [...local.values()].map((m) => m.file).sort();
    const again = await mbsync(config);
    assert.equal(again.code, 0, again.out);
    assert.equal((await t.app.storage.mailboxes.get(inboxId))!.highestModseq, modseq, 'the re-sync changed nothing on the server');
    assert.deepEqual([...localMessages(maildir).values()].map((m) => m.file).sort(), files, 'the re-sync changed nothing locally');
  });
});
