/**
 * RedisEphemeral on a real redis-server, beyond the EphemeralPort contract (test/ephemeral-contract.test.ts): faults
 * (unreachable at start, stopped while running, frozen while running, back again with its subscriptions), the key
 * prefix that separates deployments, and openStorage with `storage.ephemeral: 'redis'`.
 * Skipped, saying so, when redis-server is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRedis, RedisEphemeral } from '../storage/ephemeral/redis.ts';
import { StorageError } from '../storage/ports.ts';
import { resolveConfig } from '../hooks/config.ts';
import { openStorage } from '../storage/open.ts';
import { subscribed, until } from './helpers/ephemeral-contract.ts';
import { REDIS_MISSING, redisInstalled, startRedis, type RedisServer } from './helpers/redis-server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsUnavailable(p: Promise<unknown>, mentions: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StorageError, `expected StorageError UNAVAILABLE, got ${String(err)}`);
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, mentions);
    return true;
  });
}

/** Retries `op` until it works (Redis came back and the client reconnected by itself). */
async function eventually<T>(op: () => Promise<T>, what: string): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      return await op();
    } catch (err) {
      last = err;
      await sleep(20);
    }
  }
  throw new Error(`${what} never worked again: ${String(last)}`);
}

describe('describeRedis', () => {
  it('names where Redis is looked for, without the password', () => {
    assert.equal(describeRedis({ url: 'redis://user:secret@redis.example:6380/2' }), 'Redis at redis://redis.example:6380/2');
    assert.equal(describeRedis({ url: 'x', sentinels: [{ host: 's1', port: 26379 }], name: 'mail' }), 'Redis master "mail" via Sentinel s1:26379');
    assert.equal(describeRedis({ url: 'x', cluster: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }] }), 'Redis Cluster n1:7000,n2:7001');
  });
});

describe('RedisEphemeral key prefix', () => {
  it('is a hash tag in a Redis Cluster (a script\'s keys share one slot), as given otherwise', async () => {
    const made = [
      new RedisEphemeral({ url: 'redis://127.0.0.1:1/0' }),
      new RedisEphemeral({ url: 'redis://127.0.0.1:1/0', keyPrefix: 'mail:' }),
      new RedisEphemeral({ url: 'redis://127.0.0.1:1', cluster: [{ host: '127.0.0.1', port: 1 }] }),
      new RedisEphemeral({ url: 'redis://127.0.0.1:1', keyPrefix: 'mail:', cluster: [{ host: '127.0.0.1', port: 1 }] }),
      new RedisEphemeral({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:{tenant}:', cluster: [{ host: '127.0.0.1', port: 1 }] }),
    ];
    assert.deepEqual(made.map((e) => e.keyPrefix), ['wd:', 'mail:', '{wd}:', '{mail}:', 'x:{tenant}:']);
    await Promise.all(made.map((e) => e.close())); // never connected: nothing to wait for
  });
});

describe('RedisEphemeral on a real redis-server', { skip: redisInstalled() ? false : REDIS_MISSING }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = (await startRedis())!;
  });
  after(() => redis?.close());

  it('fails to connect with an error naming Redis and its URL', async () => {
    const gone = (await startRedis())!;
    const url = gone.url.replace('redis://', 'redis://:hunter2@');
    await gone.close();
    const e = new RedisEphemeral({ url });
    await rejectsUnavailable(e.connect(), new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${gone.port}/0 is unreachable: .*ECONNREFUSED`));
    await rejectsUnavailable(e.get('k'), /closed/);
  });

  it('keeps deployments with different key prefixes apart, keys and channels', async () => {
    const one = new RedisEphemeral({ url: redis.url, keyPrefix: 'one:' });
    const two = new RedisEphemeral({ url: redis.url, keyPrefix: 'two:' });
    await Promise.all([one.connect(), two.connect()]);
    try {
      await one.incr('n', 5, 60_000);
      assert.equal(await two.get('n'), 0);
      assert.ok(await one.lock('L', 60_000));
      assert.ok(await two.lock('L', 60_000), 'the same lock name in another deployment is another lock');
      const heard: string[] = [];
      const off = await subscribed(two, two, 'changes:1', (m) => heard.push(m));
      const offOne = await subscribed(one, one, 'changes:1', () => {});
      await one.publish('changes:1', 'not for two');
      await two.publish('changes:1', 'for two');
      await until(() => heard.length > 0, 'the message of its own deployment');
      await sleep(50);
      assert.deepEqual(heard, ['for two']);
      off();
      offOne();
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('a stopped Redis fails operations at once (UNAVAILABLE); restarted on the same port, operations and subscriptions work again', async () => {
    const warnings: string[] = [];
    const a = new RedisEphemeral({ url: redis.url, keyPrefix: 'fault:', warn: (m) => warnings.push(m) });
    const b = new RedisEphemeral({ url: redis.url, keyPrefix: 'fault:' });
    await Promise.all([a.connect(), b.connect()]);
    try {
      const heard: string[] = [];
      const off = await subscribed(a, b, 'changes:9', (m) => heard.push(m));
      const token = await a.lock('pop3:lock:1', 60_000);
      assert.ok(token);

      await redis.stop();
      await until(() => warnings.some((w) => w.includes('connection lost')), 'the warning');
      await rejectsUnavailable(a.incr('n', 1, 60_000), new RegExp(`^Redis at ${redis.url.replace(/\./g, '\\.')}: `));
      await rejectsUnavailable(a.reserve([{ key: 'r', limit: 3 }], 60_000), /Redis/);
      await rejectsUnavailable(a.extend('pop3:lock:1', token!, 60_000), /Redis/);
      await rejectsUnavailable(b.publish('changes:9', 'lost'), /Redis/);
      await rejectsUnavailable(a.ping(), /Redis/);

      await redis.start();
      assert.equal(await eventually(() => a.incr('n', 1, 60_000), 'incr'), 1, 'a fresh Redis (no persistence): counting starts again');
      assert.equal(await eventually(() => b.setIfAbsent('k', 60_000), 'setIfAbsent'), true);
      await until(() => warnings.some((w) => w.includes('connection back')), 'the recovery notice');
      // the subscriber connection came back and subscribed its channel again
      for (let i = 0; i < 300 && heard.length === 0; i++) {
        await b.publish('changes:9', 'again').catch(() => {});
        await sleep(20);
      }
      assert.equal(heard[0], 'again');
      off();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a Redis that stops answering fails a command after commandTimeoutMs, never hangs', async () => {
    const e = new RedisEphemeral({ url: redis.url, keyPrefix: 'frozen:', commandTimeoutMs: 200 });
    await e.connect();
    try {
      redis.pause();
      try {
        await rejectsUnavailable(e.incr('n', 1, 60_000), /timed out/i);
        await rejectsUnavailable(e.lock('L', 60_000), /Redis/);
      } finally {
        redis.resume();
      }
      assert.ok(await eventually(() => e.incr('after', 1, 60_000), 'incr after the freeze'));
    } finally {
      await e.close();
    }
  });

  it("openStorage with storage.ephemeral 'redis': the storage's ephemeral port is Redis, its health check pings Redis too", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-redis-storage-'));
    const config = resolveConfig({ dataDir: dir, storage: { ephemeral: 'redis', redis: { url: redis.url, keyPrefix: 'storage:' } } });
    const storage = await openStorage(config);
    const probe = new RedisEphemeral({ url: redis.url, keyPrefix: 'storage:' });
    await probe.connect();
    try {
      assert.ok(storage.ephemeral instanceof RedisEphemeral);
      await storage.ephemeral.incr('seen', 3, 60_000);
      assert.equal(await probe.get('seen'), 3, 'the counter is in Redis, under the prefix');
      await storage.ping();
      const user = await storage.users.create({ username: 'alice', passwordHash: null });
      // a change committed by this process is announced on Redis: another instance hears it
      const heard: string[] = [];
      const off = await subscribed(probe, probe, `changes:${user.id}`, (m) => heard.push(m));
      await storage.mailboxes.create(user.id, { path: 'Archive' });
      await until(() => heard.length > 0, 'the change announced on Redis');
      off();
    } finally {
      await probe.close();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await rejectsUnavailable(storage.ephemeral.get('seen'), /closed/);
  });

  it('openStorage stops with an error naming Redis when it is unreachable', async () => {
    const gone = (await startRedis())!;
    await gone.close();
    const dir = mkdtempSync(join(tmpdir(), 'wd-redis-storage-'));
    try {
      const config = resolveConfig({ dataDir: dir, storage: { ephemeral: 'redis', redis: { url: gone.url } } });
      await rejectsUnavailable(openStorage(config), /^Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
