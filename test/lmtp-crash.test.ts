/**
 * Acceptance: killing the server mid-DATA leaves no partial message, and the MTA's retry delivers exactly one copy.
 * The real server (`protocols/cli/main.ts start`) runs in a child process on a temp data directory with ports 0 (the
 * actual ports come from its JSON "wildduck ready" log line). An LMTP client sends LHLO/MAIL/RCPT/DATA and part
 * of a message large enough to spill the spool to disk, the server is SIGKILLed, restarted on the same data
 * directory: POP3 shows an empty maildrop; the full retry gets 250 and POP3 shows the one complete copy; after a
 * clean stop the storage holds exactly that one message. The server runs on the backend under test
 * (test/helpers/test-backend.ts).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawnTs } from './helpers/spawn-ts.ts';
import { connectPlain } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';
import { env as runtimeEnv, runtimeName } from '../hooks/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { openStorage } from '../storage/open.ts';
import { createUser } from '../storage/users.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { testBackendStorage } from './helpers/test-backend.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);
const READY_MS = 90_000;

interface Server {
  child: ChildProcess;
  lmtp: number;
  pop3: number;
  output(): string;
}

/** Starts `cli/main.ts start` in `dir` and waits for its ready line; the LMTP and POP3 ports come from that line. */
function startServer(dir: string, dataDir: string, storageEnv: Record<string, string>): Promise<Server> {
  const env = {
    ...runtimeEnv(),
    ...storageEnv,
    WILDDUCK_DATA_DIR: dataDir,
    WILDDUCK_LOG_FORMAT: 'json',
    WILDDUCK_API_ENABLED: 'false',
    WILDDUCK_IMAP_ENABLED: 'false',
    WILDDUCK_LMTP_PORT: '0',
    WILDDUCK_POP3_PORT: '0',
    WILDDUCK_POP3_TLS_PORT: '0',
    // a small in-memory limit, so the partial DATA is spooled to disk when the server dies
    WILDDUCK_LIMITS_SPOOL_MEMORY_BYTES: String(64 * 1024),
  };
  const child = spawnTs(CLI, ['start'], { cwd: dir, env });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    // a deadline, not a speed bound: on a loaded machine, with the MongoDB stand-in served by this process, a start
    // (two workers and the maintenance process) has taken over 30 s
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ready line in ${READY_MS / 1000} s; stdout: ${out} stderr: ${err}`));
    }, READY_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before it was ready; stdout: ${out} stderr: ${err}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; listeners?: string[] };
        if (entry.msg !== 'wildduck ready') continue;
        const port = (scheme: string) => Number(/:(\d+)$/.exec(entry.listeners!.find((l) => l.startsWith(`${scheme}://`)) ?? '')?.[1]);
        clearTimeout(timer);
        resolve({ child, lmtp: port('lmtp'), pop3: port('pop3'), output: () => out + err });
      }
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('close', () => resolve())));
}

/** LHLO, MAIL, RCPT, DATA up to the 354. */
async function openData(port: number): Promise<LineClient> {
  const client = await connectPlain(port);
  assert.match(await client.line(), /^220 /);
  client.send('LHLO mta.test\r\n');
  for (let line = await client.line(); !line.startsWith('250 '); line = await client.line()) assert.match(line, /^250-/);
  client.send('MAIL FROM:<sender@remote.example>\r\nRCPT TO:<crash@example.com>\r\nDATA\r\n');
  assert.match(await client.line(), /^250 /);
  assert.match(await client.line(), /^250 /);
  assert.match(await client.line(), /^354 /);
  return client;
}

/** POP3 STAT, and the RETR of each message. */
async function pop3Messages(port: number): Promise<string[]> {
  const client = await connectPlain(port);
  assert.match(await client.line(), /^\+OK/);
  client.send('USER crash\r\nPASS pw\r\nSTAT\r\n');
  assert.match(await client.line(), /^\+OK/);
  assert.match(await client.line(), /^\+OK/);
  const count = Number(/^\+OK (\d+) /.exec(await client.line())![1]);
  const messages: string[] = [];
  for (let n = 1; n <= count; n++) {
    client.send(`RETR ${n}\r\n`);
    assert.match(await client.line(), /^\+OK/);
    const lines: string[] = [];
    for (let line = await client.line(); line !== '.'; line = await client.line()) lines.push(line.startsWith('.') ? line.slice(1) : line);
    messages.push(lines.join('\r\n') + '\r\n');
  }
  client.send('QUIT\r\n'); // nothing retrieved is deleted; \Seen only
  assert.match(await client.line(), /^\+OK/);
  client.close();
  return messages;
}

describe('LMTP: server killed mid-DATA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-lmtp-crash-'));
  const dataDir = join(dir, 'data');
  const children: ChildProcess[] = [];
  let release = async () => {};
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map(exited));
    rmSync(dir, { recursive: true, force: true });
    await release();
  });

  it('leaves no partial message, and the retry delivers exactly one copy', { timeout: 2 * READY_MS + 60_000 }, async () => {
    const backend = await testBackendStorage(resolveConfig({ dataDir }));
    release = backend.release;
    const config = backend.config;
    const setup = await openStorage(config);
    await createUser(setup, config, { username: 'crash', password: 'pw', addresses: ['crash@example.com'] });
    await setup.close();

    // ~400 KB: past the spool's in-memory limit (64 KiB here), so the partial copy is on disk when the server dies
    const body = Array.from({ length: 5000 }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(66)}\r\n`).join('');
    const message = 'From: sender@remote.example\r\nTo: crash@example.com\r\nSubject: crash test\r\nMessage-ID: <crash-mid-data@remote.example>\r\n\r\n' + body;

    let server = await startServer(dir, dataDir, backend.env);
    children.push(server.child);
    const first = await openData(server.lmtp);
    first.send(message.slice(0, 300_000)); // no terminating dot
    const spoolDir = join(dataDir, 'spool');
    const deadline = Date.now() + 10_000;
    const spooled = () => {
      try {
        return readdirSync(spoolDir).some((f) => f.startsWith('spool-') && statSync(join(spoolDir, f)).size > 0);
      } catch {
        return false;
      }
    };
    while (!spooled()) {
      assert.ok(Date.now() < deadline, `the server never spooled the DATA to disk\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    server.child.kill('SIGKILL');
    await exited(server.child);
    await first.ended;

    server = await startServer(dir, dataDir, backend.env);
    children.push(server.child);
    assert.deepEqual(await pop3Messages(server.pop3), [], 'nothing of the interrupted delivery is visible');

    // the MTA retries the whole transaction
    const retry = await openData(server.lmtp);
    retry.send(message + '.\r\n');
    assert.match(await retry.line(10_000), /^250 2\.0\.0 <crash@example\.com>/);
    retry.send('QUIT\r\n');
    assert.match(await retry.line(), /^221 /);
    retry.close();

    const fetched = await pop3Messages(server.pop3);
    assert.equal(fetched.length, 1, 'exactly one copy');
    assert.match(fetched[0]!, /^Return-Path: <sender@remote\.example>\r\nDelivered-To: crash@example\.com\r\n/);
    assert.ok(fetched[0]!.endsWith(message), 'the copy is complete');

    server.child.kill('SIGTERM');
    await exited(server.child);
    if (runtimeName === 'node') assert.equal(server.child.exitCode, 0, server.output());

    // the storage after a clean stop: one message in the whole account, counters in agreement
    const storage = await openStorage(config);
    try {
      const user = (await storage.users.getByUsername('crash'))!;
      let total = 0;
      for (const box of await storage.mailboxes.list(user.id)) {
        const index = await storage.messages.index(box.id);
        total += index.length;
        const counters = await storage.mailboxes.counters(box.id);
        assert.equal(counters.messages, index.length, box.path);
        for (const entry of index) {
          const record = (await storage.messages.get(box.id, entry.uid))!;
          const bytes = await readAll(readMessage((await storage.messages.content(record.id))!, storage.blobs));
          assert.equal(bytes.length, entry.size);
          assert.ok(new TextDecoder().decode(bytes).endsWith(message));
        }
      }
      assert.equal(total, 1);
      assert.equal((await storage.users.getByUsername('crash'))!.messagesUsed, 1);
    } finally {
      await storage.close();
    }
  });
});
