/**
 * `server.workers`: the real CLI server (`cli/main.ts start`) with two worker processes on one data directory. Every
 * connection's worker is read from the server's log ("connection opened" carries the client's port and the
 * worker's id), so each check below runs with its two sides on different workers:
 * - IDLE on worker A sees an APPEND made on worker B (pub/sub through the primary), and `\Recent` is given to
 *   exactly one session across workers;
 * - the per-account failed-login limit counts failures made on both workers;
 * - the per-address connection cap counts the sockets of both workers;
 * - the POP3 maildrop lock holds across workers, and a worker that is killed while holding it is restarted and
 *   its lock given back at once (not after the lock's 10-minute expiry);
 * - a maintenance process writes the search indexes of the messages the workers store;
 * - SIGTERM stops every worker, the maintenance process and the primary cleanly.
 * Under Deno (node:cluster is a stub there) the same setting starts one process and says so.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kill } from 'node:process';
import { connectPlain } from './helpers/line-client.ts';
import { runtimeName } from '../hooks/runtime.ts';
import { appendTo, connect, idleSeesAppendFromElsewhere, imap, logEntry, onTwoWorkers, pop3, startServer, type Client, type Server } from './helpers/cli-server.ts';
import { resolveConfig } from '../hooks/config.ts';
import { openStorage } from '../storage/open.ts';
import { createUser } from '../storage/users.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import { DATABASE_FILE } from '../storage/sqlite/index.ts';
import { indexedThrough } from '../storage/sqlite/search-indexer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('server.workers: two worker processes', { skip: runtimeName === 'deno' ? 'node:cluster is a stub on Deno: covered by the single-process test below' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-cluster-'));
  const dataDir = join(dir, 'data');
  let server: Server;

  before(async () => {
    const config = resolveConfig({ dataDir });
    const setup = await openStorage(config);
    await createUser(setup, config, { username: 'alice', password: 'alice-pw', addresses: ['alice@example.com'] });
    await createUser(setup, config, { username: 'bob', password: 'bob-pw', addresses: ['bob@example.com'] });
    await createUser(setup, config, { username: 'carol', password: 'carol-pw', addresses: ['carol@example.com'] });
    await setup.close();
    server = await startServer(dir, {
      WILDDUCK_DATA_DIR: dataDir,
      WILDDUCK_SERVER_WORKERS: '2',
      WILDDUCK_LOG_LEVEL: 'debug',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_USER: '4',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_IP: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_NETWORK: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_DELAY_MS: '0',
      WILDDUCK_LMTP_MAX_CONNECTIONS_PER_IP: '4',
    });
  });

  after(() => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts two workers behind one set of ports', () => {
    assert.equal(server.ready.workers, 2);
    const listening = new Set(server.entries().filter((e) => e.msg === 'listening' && e.listener === 'imap').map((e) => e.worker));
    assert.deepEqual([...listening].sort(), [1, 2]);
  });

  it('IDLE on one worker sees an APPEND made on the other; \\Recent goes to one session only', { timeout: 120_000 }, async () => {
    const [watcher, writer] = await onTwoWorkers(server, server.ports.imap!);
    assert.notEqual(watcher.worker, writer.worker);
    await idleSeesAppendFromElsewhere(watcher, writer, 'across workers');
  });

  it('the failed-login limit counts failures made on both workers', { timeout: 120_000 }, async () => {
    const [one, two] = await onTwoWorkers(server, server.ports.imap!);
    for (const [client, tag] of [[one, 'a'], [two, 'b'], [one, 'c'], [two, 'd']] as const) {
      const reply = (await imap(client, tag, 'LOGIN bob wrong-password')).at(-1)!;
      assert.match(reply, new RegExp(`^${tag} NO`), reply);
      assert.doesNotMatch(reply, /\[LIMIT\]/, 'under the limit until the fourth failure');
    }
    // four failures in all, two on each worker: the account is locked on both, right password or not
    for (const [client, tag] of [[one, 'e'], [two, 'f']] as const) {
      assert.match((await imap(client, tag, 'LOGIN bob bob-pw')).at(-1)!, new RegExp(`^${tag} NO \\[LIMIT\\]`));
    }
    one.lines.close();
    two.lines.close();
  });

  it('the POP3 maildrop lock holds across workers, and a killed worker gives its lock back', { timeout: 180_000 }, async () => {
    const [holder, other] = await onTwoWorkers(server, server.ports.pop3!);
    assert.match(await pop3(holder, 'USER carol'), /^\+OK/);
    assert.match(await pop3(holder, 'PASS carol-pw'), /^\+OK/);
    assert.match(await pop3(other, 'USER carol'), /^\+OK/);
    assert.match(await pop3(other, 'PASS carol-pw'), /^-ERR \[IN-USE\]/);

    // kill the holder's worker: the primary restarts it and releases what it held
    const ready = (await logEntry(server, (e) => e.msg === 'worker ready' && e.worker === holder.worker, 'the holder worker')) as { pid: number };
    const before = server.entries().filter((e) => e.msg === 'worker ready').length;
    kill(ready.pid, 'SIGKILL');
    await holder.lines.ended;
    await logEntry(server, (e) => e.msg === 'worker died; restarting it', 'the restart');
    await logEntry(server, (e) => e.msg === 'worker ready' && server.entries().filter((x) => x.msg === 'worker ready').indexOf(e) >= before, 'the new worker');

    assert.match(await pop3(other, 'USER carol'), /^\+OK/);
    assert.match(await pop3(other, 'PASS carol-pw'), /^\+OK/, 'the dead worker no longer holds the maildrop');
    assert.match(await pop3(other, 'QUIT'), /^\+OK/);
    other.lines.close();
  });

  it('the per-address connection cap counts the connections of both workers', { timeout: 120_000 }, async () => {
    const admitted: Client[] = [];
    for (let i = 0; i < 4; i++) admitted.push(await connect(server, server.ports.lmtp!));
    assert.equal(new Set(admitted.map((c) => c.worker)).size, 2, 'the four connections are spread over both workers');
    const fifth = await connectPlain(server.ports.lmtp!);
    assert.match(await fifth.line(30_000), /^421 4\.7\.0 Too many connections/, 'two per worker, four in all: the cap is reached');
    await fifth.ended;
    admitted.pop()!.lines.close();
    // the freed slot is given back through the primary; a new connection gets it
    for (let attempt = 0; ; attempt++) {
      const again = await connectPlain(server.ports.lmtp!);
      const greeting = await again.line(30_000);
      again.close();
      if (greeting.startsWith('220 ')) break;
      assert.ok(attempt < 100, `the freed slot was never given back: ${greeting}`);
      await sleep(50);
    }
    for (const c of admitted) c.lines.close();
  });

  it('a maintenance process writes the search indexes of the messages the workers store', { timeout: 120_000 }, async () => {
    const client = await connect(server, server.ports.imap!);
    assert.match((await imap(client, 'a', 'LOGIN carol carol-pw')).at(-1)!, /^a OK/);
    const message = 'From: bob@example.com\r\nTo: carol@example.com\r\nSubject: indexed elsewhere\r\n\r\nA zeppelin over the workers.\r\n';
    assert.match((await appendTo(client, 'b', message)).at(-1)!, /^b OK/);
    const db = await openDb(join(dataDir, DATABASE_FILE));
    try {
      const newest = Number(db.get<{ id: number }>('SELECT max(id) AS id FROM messages')!.id);
      const deadline = Date.now() + 30_000;
      while (indexedThrough(db) < newest && Date.now() < deadline) await sleep(50);
      assert.ok(indexedThrough(db) >= newest, 'the maintenance process indexed the new message');
    } finally {
      db.close();
    }
    client.lines.send('z LOGOUT\r\n');
  });

  it('stops every worker and the primary on SIGTERM', { timeout: 120_000 }, async () => {
    const pids = server.entries().filter((e) => e.msg === 'worker ready' || e.msg === 'maintenance process started').map((e) => e.pid as number);
    assert.equal(server.entries().filter((e) => e.msg === 'maintenance process started').length, 1);
    server.child.kill('SIGTERM');
    await server.closed;
    assert.equal(server.child.exitCode, 0, server.output().slice(-4000));
    assert.match(server.output(), /"msg":"stopped"}/);
    for (const pid of pids) {
      let alive = true;
      try {
        kill(pid, 0);
      } catch {
        alive = false;
      }
      assert.equal(alive, false, `worker process ${pid} is gone`);
    }
  });
});

describe('server.workers under Deno', { skip: runtimeName !== 'deno' ? 'Node.js forks workers: covered above' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-cluster-deno-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves from one process and says so', { timeout: 120_000 }, async () => {
    const server = await startServer(dir, { WILDDUCK_DATA_DIR: join(dir, 'data'), WILDDUCK_SERVER_WORKERS: '2' });
    try {
      assert.equal(server.ready.workers, 1);
      assert.ok(server.entries().some((e) => typeof e.msg === 'string' && e.msg.startsWith('one process serves')));
      const client = await connectPlain(server.ports.imap!);
      assert.match(await client.line(30_000), /^\* OK/);
      client.close();
    } finally {
      server.child.kill('SIGTERM');
      await server.closed;
    }
    assert.match(server.output(), /"msg":"stopped"}/);
  });
});
