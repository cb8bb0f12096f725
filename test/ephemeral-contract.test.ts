/**
 * One contract (test/helpers/ephemeral-contract.ts) for every EphemeralPort: the embedded MemoryEphemeral, the cluster
 * path (two workers' RemoteEphemeral → the primary's EphemeralHub, over JSON-copying channels), and RedisEphemeral on a
 * real redis-server, found directly and through a Redis Sentinel (skipped, saying so, when redis-server is not
 * installed). Faults of Redis: test/ephemeral-redis.test.ts.
 */
import { after } from 'node:test';
import { randomUUID } from 'node:crypto';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';
import { EphemeralHub } from '../storage/ephemeral/hub.ts';
import { RedisEphemeral } from '../storage/ephemeral/redis.ts';
import { ephemeralContract } from './helpers/ephemeral-contract.ts';
import { ipcWorker } from './helpers/ephemeral-ipc.ts';
import { REDIS_MISSING, startRedis, startRedisSentinel } from './helpers/redis-server.ts';

ephemeralContract('MemoryEphemeral', async () => {
  const store = new MemoryEphemeral();
  return { a: store, b: store, close: async () => store.close() };
});

ephemeralContract('EphemeralHub + RemoteEphemeral (cluster workers)', async () => {
  const store = new MemoryEphemeral();
  const hub = new EphemeralHub(store);
  const a = ipcWorker(hub, { lingerMs: 0 });
  const b = ipcWorker(hub, { lingerMs: 0 });
  return {
    a: a.remote,
    b: b.remote,
    close: async () => {
      await a.die();
      await b.die();
      store.close();
    },
  };
});

const redis = await startRedis();
after(() => redis?.close());

ephemeralContract(
  'RedisEphemeral (two instances on one redis-server)',
  async () => {
    // a fresh prefix per test: an empty store without FLUSHDB, as two deployments sharing one Redis would be
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const a = new RedisEphemeral({ url: redis!.url, keyPrefix });
    const b = new RedisEphemeral({ url: redis!.url, keyPrefix });
    await a.connect();
    await b.connect();
    return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
  },
  { skip: redis ? false : REDIS_MISSING },
);

const sentinel = redis && (await startRedisSentinel(redis, 'wdmaster'));
after(() => sentinel?.close());

ephemeralContract(
  'RedisEphemeral through Redis Sentinel (the master found by asking the sentinel)',
  async () => {
    const keyPrefix = `s${randomUUID().slice(0, 8)}:`;
    // the URL's host and port are ignored with sentinels: a port nothing listens on proves the master came from Sentinel
    const options = { url: 'redis://127.0.0.1:1/0', sentinels: sentinel!.nodes, name: 'wdmaster', keyPrefix };
    const a = new RedisEphemeral(options);
    const b = new RedisEphemeral(options);
    await a.connect();
    await b.connect();
    return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
  },
  { skip: sentinel ? false : REDIS_MISSING },
);

