/**
 * The MongoDB backend end to end: two server instances (the real CLI, `cli/main.ts start`) on one MongoDB and one Redis,
 * nothing shared between them but those two. Instance A runs two worker processes (one process on Deno), B one.
 * - IDLE on A sees an APPEND, a STORE and an EXPUNGE made on B;
 * - a message delivered over LMTP into A is read over IMAP on B, byte for byte;
 * - the POP3 maildrop lock, the failed-login limit and the per-user connection limit hold across both;
 * - a client's CONDSTORE state (HIGHESTMODSEQ, CHANGEDSINCE) stays valid when it reconnects to the other instance;
 * - while MongoDB is unreachable, commands answer a temporary failure (IMAP NO [UNAVAILABLE], LMTP 451 4.3.0,
 *   POP3 -ERR [SYS/TEMP]); both instances recover by themselves when it is back, and nothing acknowledged is lost.
 *
 * MongoDB here is the stand-in (test/helpers/mongo-server.ts), or a real server when WILDDUCK_TEST_MONGODB_URL names
 * one. "Unreachable" is a TCP proxy between the instances and the database that the test cuts and restores (the
 * stand-in keeps its data in memory, so it is not stopped). Skipped, saying so, when redis-server is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeName } from '../hooks/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { openStorage } from '../storage/open.ts';
import { createUser } from '../storage/users.ts';
import { connectPlain } from './helpers/line-client.ts';
import { appendTo, idleSeesAppendFromElsewhere, imap, pop3, pop3LockHoldsElsewhere, startServer, stopsCleanly, untilTagged, type Client, type Server } from './helpers/cli-server.ts';
import { REDIS_MISSING, redisInstalled, startRedis, type RedisServer } from './helpers/redis-server.ts';
import { startMongo, type MongoTestServer } from './helpers/mongo-server.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(port: number): Promise<Client> {
  const lines = await connectPlain(port);
  await lines.line(30_000);
  return { lines, worker: 0 };
}

/** Reads lines until one matches, within `ms`; returns every line read. */
async function until(client: Client, match: RegExp, ms = 10_000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const line = await client.lines.line(Math.max(1, deadline - Date.now()));
    out.push(line);
    if (match.test(line)) return out;
  }
}

/** One LMTP transaction on a fresh connection; returns the reply to DATA's end (one recipient). */
async function lmtp(port: number, to: string, message: string): Promise<string> {
  const c = await open(port);
  const say = async (line: string) => {
    c.lines.send(line + '\r\n');
    const replies: string[] = [];
    for (;;) {
      const r = await c.lines.line(30_000);
      replies.push(r);
      if (/^\d{3} /.test(r)) return replies.join('\n');
    }
  };
  try {
    await say('LHLO test');
    await say('MAIL FROM:<sender@example.net>');
    const rcpt = await say(`RCPT TO:<${to}>`);
    if (!rcpt.startsWith('250')) return rcpt;
    const data = await say('DATA');
    if (!data.startsWith('354')) return data;
    return await say(message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.');
  } finally {
    c.lines.close();
  }
}

describe('the MongoDB backend: two server instances share one MongoDB and one Redis', { skip: redisInstalled() ? false : REDIS_MISSING }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-mongo-e2e-'));
  let redis: RedisServer;
  let mongo: MongoTestServer;
  let proxy: TcpProxy;
  let config: ReturnType<typeof resolveConfig>;
  let a: Server;
  let b: Server;

  before(async () => {
    redis = (await startRedis())!;
    mongo = await startMongo();
    const db = await mongo.database();
    const direct = new URL(db.url);
    proxy = await startTcpProxy(Number(direct.port), direct.hostname);
    const at = (port: string) => `mongodb://${direct.hostname}:${port}/${db.name}${direct.search}`;
    const env = {
      WILDDUCK_DATA_DIR: join(dir, 'data'),
      WILDDUCK_STORAGE_BACKEND: 'mongodb',
      WILDDUCK_STORAGE_MONGODB_URL: at(String(proxy.port)),
      WILDDUCK_STORAGE_EPHEMERAL: 'redis',
      WILDDUCK_STORAGE_REDIS_URL: redis.url,
      WILDDUCK_STORAGE_REDIS_KEY_PREFIX: 'mongo-e2e:',
      WILDDUCK_STORAGE_REDIS_COMMAND_TIMEOUT_MS: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_USER: '4',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_IP: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_NETWORK: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_DELAY_MS: '0',
      WILDDUCK_IMAP_MAX_CONNECTIONS_PER_USER: '2',
      // a write cut off mid-way by the outage can leave a hole in the change log that no writer fills (its sequence
      // number was taken but the answer lost): readers wait this long for it before they pass it
      WILDDUCK_STORAGE_MONGODB_GAP_WAIT_MS: '2000',
    };
    config = resolveConfig({ dataDir: env.WILDDUCK_DATA_DIR, storage: { backend: 'mongodb', mongodb: { url: at(direct.port) }, ephemeral: 'redis', redis: { url: redis.url, keyPrefix: 'mongo-e2e:' } } } as never);
    const setup = await openStorage(config);
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) {
      await createUser(setup, config, { username: name, password: `${name}-pw`, addresses: [`${name}@example.com`] });
    }
    await setup.close();
    a = await startServer(dir, { ...env, WILDDUCK_SERVER_WORKERS: '2' });
    b = await startServer(dir, { ...env, WILDDUCK_SERVER_WORKERS: '1' });
  });

  after(async () => {
    for (const server of [a, b]) if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await proxy?.close();
    await mongo?.stop();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn`; a failure carries the tail of both servers' logs, so a CI log shows what the servers saw. */
  async function withServerLogs(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- instance A ---\n${a.output().slice(-3000)}\n--- instance B ---\n${b.output().slice(-3000)}`;
      throw err;
    }
  }

  it('both instances run on MongoDB and Redis', () => {
    assert.equal(a.ready.workers, runtimeName === 'deno' ? 1 : 2);
    assert.equal(b.ready.workers, 1);
    for (const server of [a, b]) {
      const ready = server.entries().find((e) => e.msg === 'wildduck ready')!;
      assert.equal(ready.ephemeral, 'redis');
      assert.equal(ready.storage, 'mongodb');
    }
  });

  it('IDLE on A sees an APPEND made on B; \\Recent goes to one session only', { timeout: 120_000 }, async () => {
    await idleSeesAppendFromElsewhere(await open(a.ports.imap!), await open(b.ports.imap!), 'across instances on MongoDB');
  });

  it('IDLE on A sees a STORE and an EXPUNGE made on B', { timeout: 120_000 }, async () => {
    const watcher = await open(a.ports.imap!);
    const writer = await open(b.ports.imap!);
    for (const c of [watcher, writer]) assert.match((await imap(c, 'l', 'LOGIN frank frank-pw')).at(-1)!, /^l OK/);
    for (let i = 1; i <= 3; i++) assert.match((await appendTo(writer, `p${i}`, `Subject: m${i}\r\n\r\nbody ${i}\r\n`)).at(-1)!, /OK/);
    assert.ok((await imap(watcher, 's', 'SELECT INBOX')).includes('* 3 EXISTS'));
    watcher.lines.send('i IDLE\r\n');
    assert.equal(await watcher.lines.line(30_000), '+ idling');
    assert.match((await imap(writer, 's', 'SELECT INBOX')).at(-1)!, /^s OK/);
    assert.match((await imap(writer, 'f', 'STORE 2 +FLAGS (\\Flagged)')).at(-1)!, /^f OK/);
    const flagged = await until(watcher, /^\* 2 FETCH \(.*FLAGS \(.*\\Flagged/);
    assert.ok(flagged.length > 0);
    assert.match((await imap(writer, 'd', 'STORE 1 +FLAGS (\\Deleted)')).at(-1)!, /^d OK/);
    assert.match((await imap(writer, 'e', 'EXPUNGE')).at(-1)!, /^e OK/);
    await until(watcher, /^\* 1 EXPUNGE$/);
    watcher.lines.send('DONE\r\n');
    assert.match((await untilTagged(watcher, 'i')).at(-1)!, /^i OK/);
    const left = await imap(watcher, 'u', 'UID FETCH 1:* (FLAGS)');
    assert.equal(left.filter((l) => l.startsWith('* ')).length, 2, left.join('\n'));
    for (const c of [watcher, writer]) c.lines.close();
  });

  it('a message delivered over LMTP into A is read over IMAP on B, byte for byte', { timeout: 120_000 }, async () => {
    const message = 'From: sender@example.net\r\nTo: bob@example.com\r\nSubject: over LMTP\r\nMessage-ID: <lmtp-1@example.net>\r\n\r\nDelivered on A.\r\n';
    assert.match(await lmtp(a.ports.lmtp!, 'bob@example.com', message), /^250 /);
    const reader = await open(b.ports.imap!);
    assert.match((await imap(reader, 'l', 'LOGIN bob bob-pw')).at(-1)!, /^l OK/);
    assert.ok((await imap(reader, 's', 'SELECT INBOX')).includes('* 1 EXISTS'));
    const fetched = (await imap(reader, 'f', 'FETCH 1 BODY.PEEK[]')).join('\r\n');
    assert.ok(fetched.includes('Subject: over LMTP') && fetched.includes('Delivered on A.'), fetched);
    const size = /BODY\[\] \{(\d+)\}/.exec(fetched);
    assert.ok(size, fetched);
    // the literal carries the stored message; the server may add the Delivered-To / Return-Path it prepends
    assert.ok(Number(size[1]) >= message.length);
    reader.lines.close();
  });

  it('the POP3 maildrop lock taken on one instance holds against a session on the other', { timeout: 120_000 }, async () => {
    await pop3LockHoldsElsewhere(await open(a.ports.pop3!), await open(b.ports.pop3!), 'carol', 'carol-pw');
  });

  it('the failed-login limit and the per-user connection limit count on both instances', { timeout: 120_000 }, async () => {
    const clients = [await open(a.ports.imap!), await open(b.ports.imap!), await open(a.ports.imap!), await open(b.ports.imap!)];
    for (const [i, client] of clients.entries()) assert.doesNotMatch((await imap(client, `f${i}`, 'LOGIN dave wrong')).at(-1)!, /\[LIMIT\]/);
    assert.match((await imap(clients[0]!, 'r', 'LOGIN dave dave-pw')).at(-1)!, /^r NO \[LIMIT\]/);
    for (const c of clients) c.lines.close();

    const [one, two, three] = [await open(a.ports.imap!), await open(b.ports.imap!), await open(b.ports.imap!)];
    assert.match((await imap(one, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a OK/);
    assert.match((await imap(two, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a OK/);
    assert.match((await imap(three, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a NO \[LIMIT\]/);
    for (const c of [one, two, three]) c.lines.close();
  });

  it("a client's CONDSTORE state stays valid when it reconnects to the other instance", { timeout: 120_000 }, async () => {
    const first = await open(a.ports.imap!);
    assert.match((await imap(first, 'l', 'LOGIN alice alice-pw')).at(-1)!, /^l OK/);
    const selected = (await imap(first, 's', 'SELECT INBOX (CONDSTORE)')).join('\n');
    const before = Number(/HIGHESTMODSEQ (\d+)/.exec(selected)![1]);
    const stored = (await imap(first, 't', 'STORE 1 +FLAGS (\\Answered)')).join('\n');
    const modseq = Number(/MODSEQ \((\d+)\)/.exec(stored)![1]);
    assert.ok(modseq > before);
    await imap(first, 'z', 'LOGOUT');
    first.lines.close();

    const second = await open(b.ports.imap!);
    assert.match((await imap(second, 'l', 'LOGIN alice alice-pw')).at(-1)!, /^l OK/);
    const again = (await imap(second, 's', 'SELECT INBOX (CONDSTORE)')).join('\n');
    assert.equal(Number(/HIGHESTMODSEQ (\d+)/.exec(again)![1]), modseq, 'the same HIGHESTMODSEQ on the other instance');
    const changed = await imap(second, 'c', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${before})`);
    const lines = changed.filter((l) => l.startsWith('* '));
    assert.equal(lines.length, 1, changed.join('\n'));
    assert.match(lines[0]!, new RegExp(`MODSEQ \\(${modseq}\\)`));
    assert.match(lines[0]!, /\\Answered/);
    second.lines.close();
  });

  it('while MongoDB is unreachable: NO [UNAVAILABLE], 451 4.3.0, -ERR [SYS/TEMP]; both recover, nothing acknowledged is lost', { timeout: 240_000 }, () => withServerLogs(async () => {
    const session = await open(b.ports.imap!);
    assert.match((await imap(session, 'l', 'LOGIN bob bob-pw')).at(-1)!, /^l OK/);
    assert.match((await imap(session, 's', 'SELECT INBOX')).at(-1)!, /^s OK/);
    const status = async (tag: string) => (await imap(session, tag, 'STATUS INBOX (MESSAGES)')).join('\n');
    const stored = Number(/MESSAGES (\d+)/.exec(await status('c'))![1]);
    const pop = await open(a.ports.pop3!);

    // under load: two delivery loops into bob on both instances while the database goes away and comes back
    let running = true;
    const accepted: string[] = [];
    const refused: string[] = [];
    const loop = async (port: number, name: string) => {
      for (let i = 0; running; i++) {
        const subject = `${name}-${i}`;
        const reply = await lmtp(port, 'bob@example.com', `Subject: ${subject}\r\n\r\nunder load\r\n`).catch((err: Error) => `error ${err.message}`);
        if (reply.startsWith('250')) accepted.push(subject);
        else {
          assert.match(reply, /^451 4\.3\.0|^421 /, reply);
          refused.push(subject);
          await sleep(50);
        }
      }
    };
    const loops = [loop(a.ports.lmtp!, 'a'), loop(b.ports.lmtp!, 'b')];
    await sleep(1000);
    await proxy.down();
    try {
      const reply = (await imap(session, 'n', 'STATUS INBOX (MESSAGES)')).at(-1)!;
      assert.match(reply, /^n NO \[UNAVAILABLE\]/, `${reply}\n${b.output().slice(-3000)}`);
      assert.match(await pop3(pop, 'USER bob'), /^\+OK/);
      assert.match(await pop3(pop, 'PASS bob-pw'), /^-ERR \[SYS\/TEMP\]/);
      // the database stays away until the loops have met it (a delivery waits for the driver's server selection)
      for (const end = Date.now() + 60_000; Date.now() < end && refused.length === 0; ) await sleep(100);
    } finally {
      await proxy.up();
    }
    // both instances deliver again by themselves
    const refusedWhileDown = refused.length;
    for (const end = Date.now() + 60_000; Date.now() < end && accepted.length < 3 + refusedWhileDown; ) await sleep(100);
    running = false;
    await Promise.all(loops);
    assert.ok(refusedWhileDown > 0, 'deliveries were refused with a temporary failure while the database was away');
    // every acknowledged delivery is stored; a refused one may be too (the database took it, the answer was lost):
    // the client retries it, a duplicate at worst, never a loss
    let count = 0;
    for (let i = 0, end = Date.now() + 60_000; Date.now() < end && count < stored + accepted.length; i++) {
      const m = /MESSAGES (\d+)\)/.exec(await status(`r${i}`));
      count = m ? Number(m[1]) : 0;
      if (count < stored + accepted.length) await sleep(100);
    }
    assert.ok(count >= stored + accepted.length && count <= stored + accepted.length + refused.length, `${count} stored: ${stored} before, ${accepted.length} accepted, ${refused.length} refused`);
    // durable: every acknowledged delivery is in the database (read through the storage ports)
    const check = await openStorage(config);
    const found = new Set<string>();
    let total = 0;
    try {
      const bob = (await check.users.getByUsername('bob'))!;
      const inbox = (await check.mailboxes.getByPath(bob.id, 'INBOX'))!;
      const index = await check.messages.index(inbox.id);
      total = index.length;
      for (const entry of index) {
        const record = await check.messages.get(inbox.id, entry.uid);
        if (record && /^[ab]-\d+$/.test(record.subject)) found.add(record.subject);
      }
    } finally {
      await check.close();
    }
    for (const subject of accepted) assert.ok(found.has(subject), `${subject} (acknowledged) is stored; found ${[...found].join(' ')}`);
    for (const subject of found) assert.ok(accepted.includes(subject) || refused.includes(subject), `${subject} was delivered`);
    // and the session selected all along converges on every stored message (entries the outage cut off are written
    // again by the instance that made them, storage/mongodb/changes.ts; test/storage-mongodb.test.ts tests that alone)
    let exists = 0;
    for (let i = 0, end = Date.now() + 60_000; Date.now() < end && exists !== total; i++) {
      await imap(session, `x${i}`, 'NOOP');
      const line = (await imap(session, `y${i}`, 'SEARCH ALL')).find((l) => l.startsWith('* SEARCH'))!;
      exists = line.split(' ').length - 2;
      if (exists !== total) await sleep(100);
    }
    assert.equal(exists, total, 'the selected session sees every stored message');
    assert.match(await pop3(pop, 'USER bob'), /^\+OK/);
    assert.match(await pop3(pop, 'PASS bob-pw'), /^\+OK/, 'POP3 works again');
    session.lines.close();
    pop.lines.close();
  }));

  it('both instances stop cleanly on SIGTERM', { timeout: 120_000 }, () => stopsCleanly([a, b]));
});
