/**
 * `wildduck storage copy`: a whole embedded store copied into another data directory through the ports (RestorePort),
 * verified message by message; stopped and resumed, killed and resumed, run again after the source changed, a
 * corrupted copy caught by the verification, and an mbsync client that finds nothing to download after the server
 * moved to the copy.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { openStorage } from '../storage/open.ts';
import { copyStore, verifyCopy } from '../storage/copy.ts';
import type { CopyProgress } from '../storage/copy.ts';
import { copyContract, messageBytes } from './helpers/copy-contract.ts';
import { interruptedCopy, mbsyncAfterMove } from './helpers/copy-moves.ts';
import { rowId } from '../storage/sqlite/common.ts';
import { haveMbsync } from './helpers/mbsync.ts';
import { runTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { ProgressLine, storageCommand } from '../protocols/cli/storage-copy.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);

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
    // stopped once the copy has started (the target exists): by Ctrl-C, then killed
    const started = () => readdirSync(dir).includes('cli') && readdirSync(target).includes('wildduck.sqlite');
    await interruptedCopy(CLI, { to: `sqlite:${target}`, cwd: dir, env, signal: 'SIGINT', started });
    await interruptedCopy(CLI, { to: `sqlite:${target}`, cwd: dir, env, signal: 'SIGKILL', started });

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

describe('mbsync after the move', { skip: haveMbsync ? false : 'mbsync is not installed (apt-get install isync)' }, () => {
  it('a client synced against the source finds nothing to download from the copy', { timeout: 180_000 }, () =>
    mbsyncAfterMove({ open: (dataDir) => openSqliteStorage({ dataDir }), config: (dataDir) => ({ dataDir }) }));
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
