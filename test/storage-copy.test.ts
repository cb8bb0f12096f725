/**
 * `wildduck storage copy`: a whole embedded store copied into another data directory through the ports (RestorePort),
 * verified message by message; stopped and resumed, killed and resumed, run again after the source changed, a
 * corrupted copy caught by the verification, and an mbsync client that finds nothing to download after the server
 * moved to the copy.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { openStorage } from '../storage/open.ts';
import type { SqliteStorage } from '../storage/sqlite/index.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { copyStore, verifyCopy } from '../storage/copy.ts';
import type { Id, StoragePorts } from '../storage/ports.ts';
import { rowId } from '../storage/sqlite/common.ts';
import { generatedMessage } from './helpers/generated-mail.ts';
import { runTs, spawnTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv } from '../protocols/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { storageCommand } from '../protocols/cli-storage-copy.ts';
import { bootApp } from '../protocols/server.ts';
import { createLogger } from '../hooks/log.ts';
import { createUser } from '../storage/users.ts';
import { startImap } from '../protocols/imap.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';

const CLI = new URL('../protocols/cli.ts', import.meta.url);
/** The attachment generatedMessage(i) carries for every i divisible by 15: one blob for all of them. */
const SHARED = [0, 15, 30, 45];

async function append(storage: StoragePorts, userId: Id, mailboxId: Id, bytes: Uint8Array, flags: string[] = [], internalDate = Date.UTC(2026, 0, 2)): Promise<number> {
  const message = await ingestMessage(bytes, storage.blobs);
  return (await storage.messages.append({ userId, mailboxId, flags, internalDate, message })).uid;
}

/**
 * Two users: alice (tags, quota, two addresses, nested mailboxes, a Sent mailbox not subscribed, a filter into
 * Work/Projects, an autoreply, settings, an ASP and a token) and bob (disabled); messages with flags and keywords, the
 * same attachment in several of them, a flag change after the append and an expunge.
 */
async function populate(storage: StoragePorts, count = 60): Promise<void> {
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

async function messageBytes(storage: StoragePorts, mailboxId: Id, uid: number): Promise<Uint8Array> {
  const [parts] = await storage.messages.parts(mailboxId, [uid], { content: true });
  return readAll(readMessage(parts!.content!, storage.blobs));
}

describe('wildduck storage copy (embedded to embedded)', () => {
  let dir: string;
  let source: SqliteStorage;
  const open = (name: string) => openSqliteStorage({ dataDir: join(dir, name) });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wd-copy-'));
    source = await open('source');
    await populate(source);
  });
  after(async () => {
    await source?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies users, addresses, documents, mailboxes and messages byte-exact, blobs once, and verifies', { timeout: 120_000 }, async () => {
    const target = await open('full');
    try {
      const copied = await copyStore(source, target);
      assert.equal(copied.stopped, false);
      assert.equal(copied.users, 2);
      assert.equal(copied.documents, 5);
      assert.equal(copied.messagesCopied, 60 - 1 + SHARED.length);
      assert.equal(copied.messagesDone, copied.messagesTotal);

      const verified = await verifyCopy(source, target);
      assert.deepEqual(verified.mismatches, []);
      assert.equal(verified.messages, 63);

      const [a, b] = [(await source.users.getByUsername('alice'))!, (await target.users.getByUsername('alice'))!];
      for (const key of ['name', 'passwordHash', 'quota', 'tags', 'disabled', 'created', 'storageUsed', 'messagesUsed'] as const) assert.deepEqual(b[key], a[key], key);
      assert.equal((await target.users.getByUsername('bob'))!.disabled, true);
      const strip = <T extends { id: Id; userId: Id }>(list: T[]) => list.map(({ id: _id, userId: _user, ...rest }) => rest);
      assert.deepEqual(strip(await target.users.listAddresses(b.id)), strip(await source.users.listAddresses(a.id)));

      const sourceBoxes = await source.mailboxes.list(a.id);
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
      const sourceDocs = await source.documents.listAll(a.id);
      for (const d of sourceDocs.filter((d) => d.kind !== 'filter')) {
        const copy = docs.find((x) => x.kind === d.kind && x.id === d.id)!;
        assert.deepEqual([copy.data, copy.key, copy.created, copy.updated], [d.data, d.key, d.created, d.updated], d.kind);
      }

      // flags, keywords, modseqs and dates as in the source; the bytes equal
      const inboxA = sourceBoxes.find((m) => m.path === 'INBOX')!;
      const inboxB = targetBoxes.find((m) => m.path === 'INBOX')!;
      assert.deepEqual(await target.messages.index(inboxB.id), await source.messages.index(inboxA.id));
      assert.deepEqual(await messageBytes(target, inboxB.id, 1), generatedMessage(0));
      assert.equal((await target.messages.get(inboxB.id, 3)), null, 'the expunged UID stays gone');
      assert.equal(inboxB.uidNext, inboxA.uidNext);

      // the shared attachment (and every other) is stored once in the target too
      assert.equal((await target.blobs.stats()).count, (await source.blobs.stats()).count);
      // search works on the copy: the target built its own search text
      await target.searchIndexer.flush();
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
    let target = await open('resumed');
    try {
      let copiedSoFar = 0;
      const first = await copyStore(source, target, { parallel: 4, progress: (p) => (copiedSoFar = p.messagesCopied), shouldStop: () => copiedSoFar >= 20 });
      assert.equal(first.stopped, true);
      assert.ok(first.messagesCopied >= 20 && first.messagesCopied < 63, String(first.messagesCopied));
      await target.close();
      target = await open('resumed');
      const second = await copyStore(source, target);
      assert.equal(second.stopped, false);
      assert.equal(second.messagesCopied, 63 - first.messagesCopied);
      assert.equal(second.messagesDone, 63);
      assert.deepEqual((await verifyCopy(source, target)).mismatches, []);
      assert.equal((await target.users.getByUsername('alice'))!.messagesUsed, 59);
      assert.equal((await target.blobs.stats()).count, (await source.blobs.stats()).count);

      // the source changes (flags, an expunge, new mail) while the target is not in use: a second run catches up
      const alice = (await source.users.getByUsername('alice'))!;
      const inbox = (await source.mailboxes.getByPath(alice.id, 'INBOX'))!;
      await source.messages.setFlags(inbox.id, [4, 7], { action: 'set', flags: ['\\Deleted'] });
      await source.messages.expunge(inbox.id, [10]);
      await append(source, alice.id, inbox.id, generatedMessage(100), ['\\Draft']);
      // a mailbox renamed, another deleted and made again (a new UIDVALIDITY)
      await source.mailboxes.rename(alice.id, 'Work/Projects', 'Archive/Projects');
      await source.mailboxes.delete((await source.mailboxes.getByPath(alice.id, 'Sent'))!.id);
      const sent = await source.mailboxes.create(alice.id, { path: 'Sent', specialUse: '\\Sent' });
      await append(source, alice.id, sent.id, generatedMessage(101), ['\\Seen']);
      const projects = (await source.mailboxes.getByPath(alice.id, 'Archive/Projects'))!;
      const third = await copyStore(source, target);
      assert.deepEqual([third.flagsUpdated, third.expunged, third.mailboxesRemoved], [2, 1, 1]);
      assert.equal(third.messagesCopied, 1 + 1 + (await source.mailboxes.counters(projects.id)).messages);
      assert.deepEqual((await verifyCopy(source, target)).mismatches, []);
      const copy = (await target.users.getByUsername('alice'))!;
      const filter = (await target.documents.list<{ action: { mailbox: string } }>(copy.id, 'filter'))[0]!;
      assert.equal(filter.data.action.mailbox, (await target.mailboxes.getByPath(copy.id, 'Archive/Projects'))!.id, 'the filter follows the renamed mailbox');
      const again = await copyStore(source, target);
      assert.deepEqual([again.messagesCopied, again.flagsUpdated, again.expunged, again.mailboxesRemoved], [0, 0, 0, 0]);
    } finally {
      await target.close();
    }
  });

  it('verification lists a corrupted message and the CLI exits 1', { timeout: 120_000 }, async () => {
    const target = await open('corrupt');
    try {
      await copyStore(source, target);
      const alice = (await target.users.getByUsername('alice'))!;
      const inbox = (await target.mailboxes.getByPath(alice.id, 'INBOX'))!;
      const bytes = await messageBytes(target, inbox.id, 2);
      const changed = bytes.slice();
      changed[changed.length - 4] ^= 0x20; // one letter of the body in the other case: same size
      target.db.run("UPDATE messages SET inline = ?, inline_codec = 0, segments = ? WHERE mailbox_id = ? AND uid = 2", changed, JSON.stringify([{ length: changed.length }]), rowId(inbox.id)!);
      const verified = await verifyCopy(source, target);
      assert.equal(verified.mismatchCount, 1);
      assert.match(verified.mismatches[0]!, /^message alice INBOX UID 2: sha256 /);
    } finally {
      await target.close();
    }
    const out: string[] = [];
    const sourceDir = join(dir, 'source');
    const config = resolveConfig({ dataDir: sourceDir });
    // the command opens the source through the hook (this suite holds it open) and the target itself
    const openStore = (c: typeof config) => (c.dataDir === sourceDir ? Promise.resolve({ ...source, close: async () => {} }) : openStorage(c));
    const code = await storageCommand(config, ['copy'], { to: `sqlite:${join(dir, 'corrupt')}`, 'verify-only': true }, (t) => out.push(t), { open: openStore, signals: false, terminal: false });
    assert.equal(code, 1);
    assert.match(out.join(''), /differs: message alice INBOX UID 2: sha256/);
  });

  it('runs as `wildduck storage copy --to`, killed midway and run again', { timeout: 180_000 }, async () => {
    const env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'source'), WILDDUCK_LOG_FORMAT: 'json' };
    const target = join(dir, 'cli');
    const child = spawnTs(CLI, ['storage', 'copy', '--to', `sqlite:${target}`, '--parallel', '1'], { cwd: dir, env });
    child.stdin!.end();
    // killed once the copy has started writing messages (or has finished: then the second run has nothing to do)
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', () => {});
      const poll = setInterval(() => {
        let started = false;
        try {
          started = readdirSync(target).includes('wildduck.sqlite');
        } catch {
          // not yet
        }
        if (started) {
          clearInterval(poll);
          setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 300);
        }
      }, 20);
      child.on('close', () => {
        clearInterval(poll);
        resolve();
      });
    });
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on('close', resolve)));

    const r = await runTs(CLI, ['storage', 'copy', '--to', `sqlite:${target}`], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /verified: 2 users, 5 mailboxes, \d+ messages .*, 0 differences/);
    const copy = await openSqliteStorage({ dataDir: target });
    try {
      const alice = (await copy.users.getByUsername('alice'))!;
      assert.equal(alice.messagesUsed, (await source.users.getByUsername('alice'))!.messagesUsed);
    } finally {
      await copy.close();
    }

    const bad = await runTs(CLI, ['storage', 'copy', '--to', join(dir, 'source')], { cwd: dir, env });
    assert.equal(bad.code, 64, 'a store is not copied onto itself');
    const usage = await runTs(CLI, ['storage', 'copy'], { cwd: dir, env });
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /--to/);
  });
});

const haveMbsync = spawnSync('mbsync', ['--version']).status === 0;

function mbsync(config: string): Promise<{ code: number | null; out: string }> {
  const child = spawn('mbsync', ['-c', config, '-a'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

function mbsyncConfig(file: string, port: number, maildirs: string): void {
  writeFileSync(
    file,
    [
      'IMAPAccount wd',
      'Host 127.0.0.1',
      `Port ${port}`,
      'User alice',
      'Pass secret',
      'SSLType None',
      'AuthMechs LOGIN',
      '',
      'IMAPStore remote',
      'Account wd',
      '',
      'MaildirStore local',
      `Path ${maildirs}/`,
      `Inbox ${join(maildirs, 'INBOX')}`,
      'SubFolders Verbatim',
      '',
      'Channel sync',
      'Far :remote:',
      'Near :local:',
      'Patterns *',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
  );
}

/** Every maildir file under `root` (relative paths), sorted. */
function maildirFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), join(rel, e.name));
      else if (/(^|\/)(cur|new)$/.test(rel)) out.push(join(rel, e.name));
    }
  };
  walk(root, '');
  return out.sort();
}

describe('mbsync after the move', { skip: haveMbsync ? false : 'mbsync is not installed (apt-get install isync)' }, () => {
  it('a client synced against the source finds nothing to download from the copy', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-copy-mbsync-'));
    const log = createLogger({ level: 'warn', format: 'json', sink: () => {} });
    const serve = async (dataDir: string) => {
      const config = resolveConfig({ dataDir, auth: { failedLogins: { delayMs: 0 } }, imap: { host: '127.0.0.1', port: 0, tlsPort: null } });
      const app = await bootApp(config, log);
      const listeners = await startImap(app, null);
      return { app, config, port: listeners[0]!.port, close: async () => (await Promise.all(listeners.map((l) => l.close())), await app.close()) };
    };
    try {
      const source = await serve(join(dir, 'source'));
      const { user } = await createUser(source.app.storage, source.config, { username: 'alice', password: 'secret', addresses: ['alice@example.com'] });
      const ctx = internalContext(log);
      const boxes = await source.app.storage.mailboxes.list(user.id);
      const inbox = boxes.find((m) => m.path === 'INBOX')!;
      const other = (await source.app.storage.mailboxes.create(user.id, { path: 'Lists/Dev' })).id;
      for (let i = 0; i < 40; i++) {
        const stored = await storeMessage(source.app, ctx, { userId: user.id, mailboxId: i % 4 === 0 ? other : inbox.id, flags: i % 3 === 0 ? ['\\Seen'] : [], internalDate: Date.UTC(2026, 0, 1) + i, source: generatedMessage(i) });
        assert.ok(stored.ok);
      }
      const maildirs = join(dir, 'maildir');
      mkdirSync(maildirs, { recursive: true });
      const rc = join(dir, 'mbsyncrc');
      mbsyncConfig(rc, source.port, maildirs);
      const first = await mbsync(rc);
      assert.equal(first.code, 0, first.out);
      const files = maildirFiles(maildirs);
      assert.equal(files.length, 40);

      // the copy runs while the server still serves the source; then the server moves to the copy
      const target = await openSqliteStorage({ dataDir: join(dir, 'target') });
      try {
        assert.equal((await copyStore(source.app.storage, target)).messagesCopied, 40);
      } finally {
        await target.close();
      }
      await source.close();
      const moved = await serve(join(dir, 'target'));
      try {
        const movedUser = (await moved.app.storage.users.getByUsername('alice'))!;
        const modseqs = async () => (await moved.app.storage.mailboxes.list(movedUser.id)).map((m) => [m.path, m.uidValidity, m.highestModseq]);
        const before = await modseqs();
        mbsyncConfig(rc, moved.port, maildirs);
        const second = await mbsync(rc);
        assert.equal(second.code, 0, second.out);
        assert.deepEqual(maildirFiles(maildirs), files, 'nothing downloaded, nothing changed locally');
        assert.deepEqual(await modseqs(), before, 'nothing changed on the server');
      } finally {
        await moved.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
