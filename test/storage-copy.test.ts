/**
 * `wildduck storage copy`: a whole embedded store copied into another data directory through the ports (RestorePort),
 * verified message by message; stopped and resumed, killed and resumed, run again after the source changed, a
 * corrupted copy caught by the verification, and an mbsync client that finds nothing to download after the server
 * moved to the copy.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { openStorage } from '../storage/open.ts';
import { copyStore, verifyCopy } from '../storage/copy.ts';
import type { CopyProgress } from '../storage/copy.ts';
import { copyContract, messageBytes } from './helpers/copy-contract.ts';
import { rowId } from '../storage/sqlite/common.ts';
import { generatedMessage } from './helpers/generated-mail.ts';
import { haveMbsync, mbsync, writeMbsyncConfig } from './helpers/mbsync.ts';
import { runTs, spawnTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv, runtimeName } from '../protocols/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { ProgressLine, storageCommand } from '../protocols/cli-storage-copy.ts';
import { bootApp } from '../protocols/server.ts';
import { createLogger } from '../hooks/log.ts';
import { createUser } from '../storage/users.ts';
import { startImap } from '../protocols/imap.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';

const CLI = new URL('../protocols/cli.ts', import.meta.url);

describe('wildduck storage copy (embedded to embedded)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-copy-'));
  const open = (name: string) => openSqliteStorage({ dataDir: join(dir, name) });
  const source = copyContract({ openSource: () => open('source'), openTarget: open });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('verification lists a corrupted message and the CLI exits 1', { timeout: 120_000 }, async () => {
    const target = await open('corrupt');
    try {
      await copyStore(source(), target);
      const alice = (await target.users.getByUsername('alice'))!;
      const inbox = (await target.mailboxes.getByPath(alice.id, 'INBOX'))!;
      const bytes = await messageBytes(target, inbox.id, 2);
      const changed = bytes.slice();
      changed[changed.length - 4] ^= 0x20; // one letter of the body in the other case: same size
      target.db.run("UPDATE messages SET inline = ?, inline_codec = 0, segments = ? WHERE mailbox_id = ? AND uid = 2", changed, JSON.stringify([{ length: changed.length }]), rowId(inbox.id)!);
      const verified = await verifyCopy(source(), target);
      assert.equal(verified.mismatchCount, 1);
      assert.match(verified.mismatches[0]!, /^message alice INBOX UID 2: sha256 /);
    } finally {
      await target.close();
    }
    const out: string[] = [];
    const sourceDir = join(dir, 'source');
    const config = resolveConfig({ dataDir: sourceDir });
    // the command opens the source through the hook (this suite holds it open) and the target itself
    const openStore = (c: typeof config) => (c.dataDir === sourceDir ? Promise.resolve({ ...source(), close: async () => {} }) : openStorage(c));
    const code = await storageCommand(config, ['copy'], { to: `sqlite:${join(dir, 'corrupt')}`, 'verify-only': true }, (t) => out.push(t), { open: openStore, signals: false, terminal: false });
    assert.equal(code, 1);
    assert.match(out.join(''), /differs: message alice INBOX UID 2: sha256/);
  });

  it('runs as `wildduck storage copy --to`, killed midway and run again', { timeout: 180_000 }, async () => {
    const env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'source'), WILDDUCK_LOG_FORMAT: 'json' };
    const target = join(dir, 'cli');
    // Stopped once the copy has started (the target exists): by Ctrl-C, then killed. It may have finished by then; what
    // is asserted holds either way: a stop is clean and says how to resume, and the last run completes the copy.
    const interrupted = async (signal: 'SIGINT' | 'SIGKILL') => {
      const child = spawnTs(CLI, ['storage', 'copy', '--to', `sqlite:${target}`, '--parallel', '1'], { cwd: dir, env });
      child.stdin!.end();
      let stdout = '';
      child.stdout!.on('data', (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
      child.stderr!.resume();
      const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
      const poll = setInterval(() => {
        if (readdirSync(dir).includes('cli') && readdirSync(target).includes('wildduck.sqlite')) {
          clearInterval(poll);
          child.kill(signal);
        }
      }, 10);
      const end = await closed;
      clearInterval(poll);
      return { ...end, stdout };
    };
    const stopped = await interrupted('SIGINT');
    if (/^stopped: /m.test(stopped.stdout)) {
      assert.match(stopped.stdout, /^stopped: .*\nrun the same command again to resume\n$/m);
      // exit status 130 (Deno's child_process reports a status of 128 + n as signal n)
      assert.ok(stopped.code === 130 || (runtimeName === 'deno' && stopped.signal === 'SIGINT'), `exit ${stopped.code} ${stopped.signal}`);
    } else assert.equal(stopped.code, 0, stopped.stdout);
    await interrupted('SIGKILL');

    const r = await runTs(CLI, ['storage', 'copy', '--to', `sqlite:${target}`], { cwd: dir, env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /verified: 2 users, 5 mailboxes, \d+ messages .*, 0 differences/);
    const copy = await openSqliteStorage({ dataDir: target });
    try {
      const alice = (await copy.users.getByUsername('alice'))!;
      assert.equal(alice.messagesUsed, (await source().users.getByUsername('alice'))!.messagesUsed);
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
      writeMbsyncConfig(rc, { port: source.port, root: maildirs, inbox: join(maildirs, 'INBOX'), patterns: '*' });
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
        writeMbsyncConfig(rc, { port: moved.port, root: maildirs, inbox: join(maildirs, 'INBOX'), patterns: '*' });
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

describe('storage copy progress output', () => {
  const at = (phase: CopyProgress['phase'], messagesDone: number, bytesDone: number, bytesCopied = bytesDone): CopyProgress => ({
    phase,
    messagesDone,
    messagesTotal: 100,
    bytesDone,
    bytesTotal: 10 * 1024 * 1024,
    messagesCopied: messagesDone,
    bytesCopied,
  });

  it('redraws one line on a terminal: done/total, bytes, rate and ETA', () => {
    let now = 0;
    const out: string[] = [];
    const line = new ProgressLine({ terminal: true, out: (t) => out.push(t), now: () => now });
    line.update(at('plan', 0, 0));
    now = 1_000;
    line.update(at('copy', 10, 1024 * 1024));
    now = 1_050; // too soon to redraw: kept, drawn by end()
    line.update(at('copy', 20, 2 * 1024 * 1024));
    assert.deepEqual(out, ['\rcopied 10/100 messages (10%), 1.0 MiB/10.0 MiB, 1.0 MiB/s, ETA 9s\x1b[K']);
    line.end();
    assert.equal(out.length, 3);
    assert.match(out[1]!, /^\rcopied 20\/100 messages \(20%\), 2\.0 MiB\/10\.0 MiB, .*\x1b\[K$/);
    assert.equal(out[2], '\n');
  });

  it('writes a line every few seconds otherwise; the rate counts only what this run copied', () => {
    let now = 0;
    const out: string[] = [];
    const line = new ProgressLine({ terminal: false, out: (t) => out.push(t), now: () => now });
    line.update(at('plan', 0, 0));
    now = 2_000;
    line.update(at('copy', 50, 5 * 1024 * 1024, 0)); // found in the target already
    now = 3_000;
    line.update(at('copy', 60, 6 * 1024 * 1024, 1024 * 1024));
    now = 8_000;
    line.update(at('copy', 70, 7 * 1024 * 1024, 2 * 1024 * 1024));
    line.end();
    assert.deepEqual(out, [
      'copied 50/100 messages (50%), 5.0 MiB/10.0 MiB, 0 B/s, ETA ?\n',
      'copied 70/100 messages (70%), 7.0 MiB/10.0 MiB, 256.0 KiB/s, ETA 12s\n',
    ]);
  });
});
