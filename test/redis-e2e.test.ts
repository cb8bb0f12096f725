/**
 * `storage.ephemeral: 'redis'` end to end: two server instances (the real CLI, `cli/main.ts start`) on one data directory
 * and one real redis-server — instance A with two worker processes (Node.js; Deno runs one process), instance B a
 * single process — share what the ephemeral store holds, with no primary's hub between them:
 * - the failed-login limit counts failures made on both instances;
 * - the POP3 maildrop lock taken on one instance holds against a session on the other;
 * - imap.maxConnectionsPerUser counts the sessions on both instances;
 * - IDLE on A sees an APPEND made on B (change notifications over Redis pub/sub), and `\Recent` goes to one session;
 * - while Redis is stopped, IMAP LOGIN answers NO [UNAVAILABLE] and POP3 PASS -ERR [SYS/TEMP]; both recover by
 *   themselves once it is back on its port.
 * Skipped, saying so, when redis-server is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runtimeName } from '../hooks/runtime.ts';
import { resolveConfig } from '../hooks/config.ts';
import { openStorage } from '../storage/open.ts';
import { createUser } from '../storage/users.ts';
import { connectPlain } from './helpers/line-client.ts';
import { idleSeesAppendFromElsewhere, imap, pop3, pop3LockHoldsElsewhere, startServer, stopsCleanly, type Client, type Server } from './helpers/cli-server.ts';
import { REDIS_MISSING, redisInstalled, startRedis, type RedisServer } from './helpers/redis-server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connection with its greeting read (which worker took it does not matter here). */
async function open(port: number): Promise<Client> {
  const lines = await connectPlain(port);
  await lines.line(30_000);
  return { lines, worker: 0 };
}

describe("storage.ephemeral 'redis': two server instances share one Redis", { skip: redisInstalled() ? false : REDIS_MISSING }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-redis-e2e-'));
  const dataDir = join(dir, 'data');
  let redis: RedisServer;
  let a: Server;
  let b: Server;

  before(async () => {
    redis = (await startRedis())!;
    const config = resolveConfig({ dataDir });
    const setup = await openStorage(config);
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      await createUser(setup, config, { username: name, password: `${name}-pw`, addresses: [`${name}@example.com`] });
    }
    await setup.close();
    const env = {
      WILDDUCK_DATA_DIR: dataDir,
      WILDDUCK_STORAGE_EPHEMERAL: 'redis',
      WILDDUCK_STORAGE_REDIS_URL: redis.url,
      WILDDUCK_STORAGE_REDIS_KEY_PREFIX: 'e2e:',
      WILDDUCK_STORAGE_REDIS_COMMAND_TIMEOUT_MS: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_USER: '4',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_IP: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_PER_NETWORK: '1000',
      WILDDUCK_AUTH_FAILED_LOGINS_DELAY_MS: '0',
      WILDDUCK_IMAP_MAX_CONNECTIONS_PER_USER: '2',
    };
    // one after the other: the first generates the TLS certificate the second then finds
    a = await startServer(dir, { ...env, WILDDUCK_SERVER_WORKERS: '2' });
    b = await startServer(dir, { ...env, WILDDUCK_SERVER_WORKERS: '1' });
  });

  after(async () => {
    for (const server of [a, b]) if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both instances run on Redis; A has two workers (one process on Deno)', async () => {
    assert.equal(a.ready.workers, runtimeName === 'deno' ? 1 : 2);
    assert.equal(b.ready.workers, 1);
    for (const server of [a, b]) assert.equal(server.entries().find((e) => e.msg === 'wildduck ready')!.ephemeral, 'redis');
  });

  it('the failed-login limit counts failures made on both instances, in Redis under the key prefix', { timeout: 120_000 }, async () => {
    const clients = [await open(a.ports.imap!), await open(b.ports.imap!), await open(a.ports.imap!), await open(b.ports.imap!)];
    for (const [i, client] of clients.entries()) {
      const reply = (await imap(client, `f${i}`, 'LOGIN bob wrong-password')).at(-1)!;
      assert.match(reply, new RegExp(`^f${i} NO`), reply);
      assert.doesNotMatch(reply, /\[LIMIT\]/, 'under the limit until the fourth failure');
    }
    for (const [i, client] of clients.slice(0, 2).entries()) {
      assert.match((await imap(client, `r${i}`, 'LOGIN bob bob-pw')).at(-1)!, new RegExp(`^r${i} NO \\[LIMIT\\]`), 'four failures on two instances: locked on both');
    }
    for (const c of clients) c.lines.close();
    const raw = new Redis(redis.url);
    try {
      const keys = await raw.keys('*');
      assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('e2e:')), `every key under the prefix: ${keys.join(' ')}`);
    } finally {
      raw.disconnect();
    }
  });

  it('the POP3 maildrop lock taken on one instance holds against a session on the other', { timeout: 120_000 }, async () => {
    await pop3LockHoldsElsewhere(await open(a.ports.pop3!), await open(b.ports.pop3!), 'carol', 'carol-pw');
  });

  it('imap.maxConnectionsPerUser counts the sessions of both instances', { timeout: 120_000 }, async () => {
    const [one, two, three] = [await open(a.ports.imap!), await open(b.ports.imap!), await open(b.ports.imap!)];
    assert.match((await imap(one, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a OK/);
    assert.match((await imap(two, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a OK/);
    assert.match((await imap(three, 'a', 'LOGIN erin erin-pw')).at(-1)!, /^a NO \[LIMIT\]/, 'one session on A, one on B: the limit of 2 is reached');
    await imap(one, 'z', 'LOGOUT');
    one.lines.close();
    let reply = '';
    for (let i = 0; i < 100 && !/ OK/.test(reply); i++) {
      reply = (await imap(three, `r${i}`, 'LOGIN erin erin-pw')).at(-1)!;
      if (!/ OK/.test(reply)) await sleep(50);
    }
    assert.match(reply, /^r\d+ OK/, 'the session that ended on A gave its place back');
    for (const c of [two, three]) c.lines.close();
  });

  it('IDLE on A sees an APPEND made on B; \\Recent goes to one session only', { timeout: 120_000 }, async () => {
    const watcher = await open(a.ports.imap!);
    const writer = await open(b.ports.imap!);
    await idleSeesAppendFromElsewhere(watcher, writer, 'across instances');
  });

  it('while Redis is stopped: IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]; both recover when it is back', { timeout: 120_000 }, async () => {
    const client = await open(b.ports.imap!);
    const pop = await open(a.ports.pop3!);
    await redis.stop();
    try {
      const reply = (await imap(client, 'a', 'LOGIN dave dave-pw')).at(-1)!;
      assert.match(reply, /^a NO \[UNAVAILABLE\]/, reply);
      assert.match(await pop3(pop, 'USER dave'), /^\+OK/);
      assert.match(await pop3(pop, 'PASS dave-pw'), /^-ERR \[SYS\/TEMP\]/);
    } finally {
      await redis.start();
    }
    let reply = '';
    for (let i = 0; i < 100; i++) {
      reply = (await imap(client, `r${i}`, 'LOGIN dave dave-pw')).at(-1)!;
      if (/ OK/.test(reply)) break;
      await sleep(50);
    }
    assert.match(reply, /^r\d+ OK/, 'logins work again once Redis is back');
    for (let i = 0; i < 100; i++) {
      assert.match(await pop3(pop, 'USER dave'), /^\+OK/);
      reply = await pop3(pop, 'PASS dave-pw');
      if (reply.startsWith('+OK')) break;
      await sleep(50);
    }
    assert.match(reply, /^\+OK/);
    client.lines.close();
    pop.lines.close();
  });

  it('both instances stop cleanly on SIGTERM', { timeout: 120_000 }, () => stopsCleanly([a, b]));
});
