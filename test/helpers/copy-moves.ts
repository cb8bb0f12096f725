/**
 * Moving a server with `wildduck storage copy`, for any target backend (test/storage-copy.test.ts embedded to
 * embedded, test/storage-copy-mongodb.test.ts embedded to MongoDB): an mbsync client synced against the source that
 * finds nothing to download from the copy, and a CLI copy stopped (Ctrl-C) or killed midway.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../hooks/config.ts';
import type { ConfigInput } from '../../hooks/config.ts';
import { internalContext } from '../../hooks/context.ts';
import { createLogger } from '../../hooks/log.ts';
import { storeMessage } from '../../hooks/pipeline/index.ts';
import { startImap } from '../../protocols/imap.ts';
import { runtimeName } from '../../hooks/runtime.ts';
import { bootApp } from '../../protocols/server.ts';
import { copyStore } from '../../storage/copy.ts';
import type { StoragePorts } from '../../storage/ports.ts';
import { createUser } from '../../storage/users.ts';
import { generatedMessage } from './generated-mail.ts';
import { mbsync, writeMbsyncConfig } from './mbsync.ts';
import { spawnTs } from './spawn-ts.ts';

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

export interface MoveTarget {
  /** Opens the (empty) store the copy writes, in `dir` when it keeps its data in a directory. */
  open(dir: string): Promise<StoragePorts>;
  /** The config input of a server on that store (listeners and logins are the test's). */
  config(dir: string): ConfigInput;
}

/**
 * A server on the embedded store with 40 messages in two mailboxes; mbsync syncs them; the store is copied to the
 * target while the server runs; the server moves to the target; mbsync runs again and must download nothing, change
 * nothing locally and nothing on the server.
 */
export async function mbsyncAfterMove(target: MoveTarget): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wd-copy-mbsync-'));
  const log = createLogger({ level: 'warn', format: 'json', sink: () => {} });
  const serve = async (input: ConfigInput) => {
    const config = resolveConfig({ ...input, auth: { failedLogins: { delayMs: 0 } }, imap: { host: '127.0.0.1', port: 0, tlsPort: null } });
    const app = await bootApp(config, log);
    const listeners = await startImap(app, null);
    return { app, config, port: listeners[0]!.port, close: async () => (await Promise.all(listeners.map((l) => l.close())), await app.close()) };
  };
  try {
    const source = await serve({ dataDir: join(dir, 'source') });
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
    const copy = await target.open(join(dir, 'target'));
    try {
      assert.equal((await copyStore(source.app.storage, copy)).messagesCopied, 40);
    } finally {
      await copy.close();
    }
    await source.close();
    const moved = await serve(target.config(join(dir, 'target')));
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
}

/**
 * Runs `wildduck storage copy --to TARGET --parallel 1` and stops it with `signal` once `started()` says the copy has
 * begun. It may have finished by then; either way a Ctrl-C stop must be clean and say how to resume (checked here).
 */
export async function interruptedCopy(
  cli: URL,
  options: { to: string; cwd: string; env: Record<string, string | undefined>; signal: 'SIGINT' | 'SIGKILL'; started: (stdout: string) => boolean | Promise<boolean> },
): Promise<void> {
  const child = spawnTs(cli, ['storage', 'copy', '--to', options.to, '--parallel', '1'], { cwd: options.cwd, env: options.env });
  child.stdin!.end();
  let stdout = '';
  child.stdout!.on('data', (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
  child.stderr!.resume();
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let ended = false;
  void closed.then(() => (ended = true));
  const poll = async () => {
    while (!ended) {
      if (await options.started(stdout)) return void child.kill(options.signal);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const [end] = await Promise.all([closed, poll()]);
  if (options.signal !== 'SIGINT') return;
  if (/^stopped: /m.test(stdout)) {
    assert.match(stdout, /^stopped: .*\nrun the same command again to resume\n$/m);
    // exit status 130 (Deno's child_process reports a status of 128 + n as signal n)
    assert.ok(end.code === 130 || (runtimeName === 'deno' && end.signal === 'SIGINT'), `exit ${end.code} ${end.signal}`);
  } else assert.equal(end.code, 0, stdout);
}
