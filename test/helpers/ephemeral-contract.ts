/**
 * The EphemeralPort contract: every implementation (MemoryEphemeral, the cluster path RemoteEphemeral → EphemeralHub,
 * RedisEphemeral) runs exactly these tests.
 *
 *   ephemeralContract('redis', async () => ({ a, b, close }))
 *
 * `a` and `b` are two clients of one fresh, empty store: the same object for an in-process store, two workers of one
 * hub, two server instances on one Redis. What one does, the other sees.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EphemeralPort } from '../../storage/ports.ts';

export interface EphemeralPair {
  a: EphemeralPort;
  b: EphemeralPort;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `check` holds (pub/sub crosses a channel or a network: delivery is later, never at a known time). */
export async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await sleep(5);
  assert.ok(check(), `timed out waiting for ${what}`);
}

/**
 * Subscribes `listener` and returns once the subscription is live at the store (a probe published on the channel came
 * back), so a message published next reaches it. Probes are not passed to `listener`.
 */
export async function subscribed(e: EphemeralPort, publisher: EphemeralPort, channel: string, listener: (m: string) => void): Promise<() => void> {
  let probed = false;
  const off = e.subscribe(channel, (m) => {
    if (m === '\u0000probe') probed = true;
    else listener(m);
  });
  for (let i = 0; i < 400 && !probed; i++) {
    await publisher.publish(channel, '\u0000probe');
    await sleep(5);
  }
  assert.ok(probed, `subscription to ${channel} never became live`);
  return off;
}

export function ephemeralContract(name: string, open: () => Promise<EphemeralPair>, options: { skip?: string | false } = {}): void {
  const withPair = (fn: (pair: EphemeralPair) => Promise<void>) => async () => {
    const pair = await open();
    try {
      await fn(pair);
    } finally {
      await pair.close();
    }
  };

  describe(`EphemeralPort contract: ${name}`, { skip: options.skip ?? false }, () => {
    it('counts with expiry from the first increment; del forgets', withPair(async ({ a, b }) => {
      assert.equal(await a.get('c'), 0);
      assert.equal(await a.incr('c', 2, 60_000), 2);
      assert.equal(await b.incr('c', 3, 60_000), 5, 'one counter for every client');
      assert.equal(await b.get('c'), 5);
      await a.del('c');
      assert.equal(await b.get('c'), 0);
      await a.incr('short', 1, 30);
      await sleep(60);
      assert.equal(await a.get('short'), 0, 'counter expired');
      assert.equal(await a.incr('short', 1, 30), 1, 'an expired counter starts again');
      await a.incr('long', 1, 60_000);
      await a.incr('long', 1, 30);
      await sleep(60);
      assert.equal(await a.get('long'), 2, 'a later increment does not change the expiry');
      await a.incr('forever', 1, 0);
      assert.equal(await a.incr('forever', 4, 0), 5);
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).incr('many', 1, 60_000)));
      assert.deepEqual([...many].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), 'concurrent increments: each value once');
    }));

    it('raises a high-water mark atomically: concurrent raises hand out disjoint ranges', withPair(async ({ a, b }) => {
      assert.equal(await a.raise('mark', 10, 60_000), 0, 'absent: 0, then set');
      assert.equal(await b.raise('mark', 4, 60_000), 10, 'below the mark: unchanged');
      assert.equal(await a.get('mark'), 10);
      const [x, y] = await Promise.all([a.raise('mark', 15, 60_000), b.raise('mark', 20, 60_000)]);
      const ranges = [[x, 15], [y, 20]].filter(([from, to]) => to! > from!);
      const claimed = ranges.flatMap(([from, to]) => Array.from({ length: to! - from! }, (_, i) => from! + 1 + i));
      assert.deepEqual([...claimed].sort((p, q) => p - q), Array.from({ length: 10 }, (_, i) => 11 + i), 'every UID 11..20 claimed exactly once');
      assert.equal(await b.get('mark'), 20);
      assert.equal(await a.raise('zero', 0, 60_000), 0);
      assert.equal(await a.get('zero'), 0, 'raising an absent mark to 0 creates nothing');
      await a.raise('brief', 3, 30);
      await a.raise('brief', 9, 60_000);
      await sleep(60);
      assert.equal(await a.get('brief'), 0, 'a raise keeps the expiry of the mark');
    }));

    it('reserves all or nothing across counters; release never goes below zero nor creates a key', withPair(async ({ a, b }) => {
      const pair = [{ key: 'ra', limit: 2 }, { key: 'rb', limit: 3 }];
      assert.equal(await a.reserve(pair, 60_000), -1);
      assert.equal(await b.reserve(pair, 60_000), -1);
      assert.equal(await a.reserve(pair, 60_000), 0, 'first counter at its limit');
      assert.deepEqual([await a.get('ra'), await a.get('rb')], [2, 2], 'a refused reservation changes nothing');
      assert.equal(await b.release('ra', 1), 1);
      assert.equal(await a.reserve(pair, 60_000), -1);
      assert.equal(await a.reserve(pair, 60_000), 0);
      assert.equal(await a.reserve([{ key: 'free', limit: 9 }, ...pair], 60_000), 1, 'the index of the first counter at its limit');
      assert.equal(await a.get('free'), 0);
      assert.equal(await a.get('rb'), 3);
      assert.equal(await a.release('rb', 5), 0, 'not below zero');
      assert.equal(await a.release('absent', 1), 0);
      assert.equal(await a.get('absent'), 0, 'release does not create a key');
      assert.equal(await a.reserve([{ key: 'rshort', limit: 5 }], 30), -1);
      await sleep(60);
      assert.equal(await a.release('rshort', 1), 0, 'expired');
      assert.equal(await a.reserve([{ key: 'rshort', limit: 1 }], 60_000), -1, 'an expired counter starts again');
      assert.equal(await a.reserve([{ key: 'rshort', limit: 1 }], 60_000), 0);
      assert.equal(await a.reserve([{ key: 'kept', limit: 5 }], 30), -1);
      assert.equal(await a.release('kept', 1), 0);
      await a.reserve([{ key: 'kept', limit: 5 }], 60_000);
      await sleep(60);
      assert.equal(await a.get('kept'), 0, 'release keeps the expiry, and a reservation on a live counter too');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserve([{ key: 'race', limit: 7 }, { key: 'race-ip', limit: 100 }], 60_000)));
      assert.equal(results.filter((r) => r === -1).length, 7, 'concurrent reservations: exactly the limit succeed');
      assert.deepEqual([await a.get('race'), await a.get('race-ip')], [7, 7]);
    }));

    it('remembers a key for a while (setIfAbsent)', withPair(async ({ a, b }) => {
      assert.equal(await a.setIfAbsent('k', 60_000), true);
      assert.equal(await b.setIfAbsent('k', 60_000), false);
      assert.equal(await a.setIfAbsent('k2', 30), true);
      await sleep(60);
      assert.equal(await b.setIfAbsent('k2', 30), true, 'an expired key can be set again');
      await a.del('k');
      assert.equal(await b.setIfAbsent('k', 60_000), true);
      const once = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).setIfAbsent('race', 60_000)));
      assert.equal(once.filter(Boolean).length, 1, 'exactly one of concurrent callers sets it');
    }));

    it('locks with owner tokens: unlock and extend only for the owner', withPair(async ({ a, b }) => {
      const t1 = await a.lock('L', 60_000);
      assert.ok(t1);
      assert.equal(await b.lock('L', 60_000), null, 'held');
      assert.equal(await b.unlock('L', 'wrong-token'), false);
      assert.equal(await b.extend('L', 'wrong-token', 60_000), false);
      assert.equal(await a.get('L'), 0, 'a lock is not a counter');
      assert.equal(await a.unlock('L', t1!), true);
      assert.equal(await a.unlock('L', t1!), false, 'unlocked already');
      assert.equal(await a.extend('L', t1!, 60_000), false, 'an unlocked lock is not extended');
      assert.equal(await b.lock('L', 60_000) !== null, true, 'free again');

      const t2 = await a.lock('L2', 30);
      assert.ok(t2);
      await sleep(60);
      const t3 = await b.lock('L2', 60_000);
      assert.ok(t3 && t3 !== t2, 'an expired lock can be taken');
      assert.equal(await a.unlock('L2', t2!), false, 'the old token is no longer valid');
      assert.equal(await a.extend('L2', t2!, 60_000), false, 'nor extended for it');
      assert.equal(await b.unlock('L2', t3!), true);

      const t4 = await a.lock('L3', 30);
      assert.equal(await b.extend('L3', t4!, 60_000), true, 'the token holds it, whoever asks');
      await sleep(60);
      assert.equal(await b.lock('L3', 60_000), null, 'extended: still held after its first expiry');
      assert.equal(await a.extend('L3', t4!, 30), true, 'shortened');
      await sleep(60);
      assert.equal(await a.extend('L3', t4!, 60_000), false, 'expired: not extended');
      assert.ok(await b.lock('L3', 60_000));

      const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).lock('race', 60_000)));
      assert.equal(tokens.filter(Boolean).length, 1, 'exactly one of concurrent lockers wins');
    }));

    it('publishes to every listener of every client, later than publish, a throwing listener stopping none', withPair(async ({ a, b }) => {
      const seen: string[] = [];
      const offA = await subscribed(a, b, 'changes:7', (m) => seen.push(`a:${m}`));
      const offB1 = await subscribed(b, a, 'changes:7', (m) => seen.push(`b1:${m}`));
      const offThrow = b.subscribe('changes:7', () => {
        throw new Error('listener bug');
      });
      const offB2 = b.subscribe('changes:7', (m) => seen.push(`b2:${m}`));
      const other = await subscribed(b, a, 'changes:8', (m) => seen.push(`other:${m}`));
      const sent = a.publish('changes:7', '41');
      assert.equal(seen.length, 0, 'not delivered inside publish');
      await sent;
      await until(() => seen.length === 3, 'three deliveries');
      assert.deepEqual([...seen].sort(), ['a:41', 'b1:41', 'b2:41']);

      offB1();
      offThrow();
      await b.publish('changes:7', '42');
      await a.publish('changes:8', 'marker');
      await until(() => seen.includes('other:marker') && seen.filter((s) => s.endsWith(':42')).length >= 2, 'the second message');
      assert.deepEqual(seen.filter((s) => s.endsWith(':42')).sort(), ['a:42', 'b2:42'], 'a listener that left hears nothing');

      offA();
      offB2();
      offA();
      await a.publish('changes:7', '43');
      await a.publish('changes:8', 'marker2');
      await until(() => seen.includes('other:marker2'), 'the marker');
      assert.equal(seen.filter((s) => s.endsWith(':43')).length, 0, 'nobody listens any more');
      other();

      const twice: string[] = [];
      const listener = (m: string) => twice.push(m);
      const off1 = await subscribed(a, b, 'dup', listener);
      const off2 = a.subscribe('dup', listener);
      await b.publish('dup', 'x');
      await until(() => twice.length === 2, 'both subscriptions');
      off1();
      await b.publish('dup', 'y');
      await until(() => twice.length === 3, 'the remaining subscription');
      assert.deepEqual(twice, ['x', 'x', 'y']);
      off2();

      const again: string[] = [];
      const offAgain = await subscribed(a, b, 'changes:7', (m) => again.push(m));
      await b.publish('changes:7', '44');
      await until(() => again.length === 1, 'a channel subscribed again');
      assert.deepEqual(again, ['44']);
      offAgain();
    }));
  });
}
