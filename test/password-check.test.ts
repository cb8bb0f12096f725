/**
 * The bounded fair queue (storage/fair-queue.ts) and the password checker built on it (storage/password-check.ts):
 * concurrency bound, round-robin between keys, shedding when full, errors not stalling the queue; the checker's
 * UNAVAILABLE on a full queue, one check for identical concurrent attempts, the cache of successful checks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue, QueueFullError } from '../storage/fair-queue.ts';
import { PasswordChecker } from '../storage/password-check.ts';
import { hashPassword } from '../storage/passwords.ts';
import { StorageError } from '../storage/ports.ts';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';

/** A task the test finishes by hand. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void; fail: (err: Error) => void } {
  let open!: (value: T) => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('FairQueue', () => {
  it('runs at most `concurrency` tasks at once and starts the next as one ends', async () => {
    const q = new FairQueue({ concurrency: 2, maxQueue: 10, maxQueuePerKey: 10 });
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const runs = gates.map((g, i) => q.run('a', () => (started.push(i), g.promise)));
    await tick();
    assert.deepEqual(started, [0, 1]);
    assert.deepEqual([q.running, q.queued], [2, 1]);
    gates[0]!.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[1]!.open();
    gates[2]!.open();
    await Promise.all(runs);
    assert.deepEqual([q.running, q.queued], [0, 0]);
  });

  it('serves waiting keys round-robin, so one key’s burst does not delay another key', async () => {
    const q = new FairQueue({ concurrency: 1, maxQueue: 100, maxQueuePerKey: 100 });
    const first = gate();
    const order: string[] = [];
    const runs = [q.run('burst', () => first.promise)];
    for (let i = 0; i < 5; i++) runs.push(q.run('burst', async () => void order.push(`burst${i}`)));
    runs.push(q.run('other', async () => void order.push('other')));
    runs.push(q.run('third', async () => void order.push('third')));
    first.open();
    await Promise.all(runs);
    assert.deepEqual(order, ['burst0', 'other', 'third', 'burst1', 'burst2', 'burst3', 'burst4']);
  });

  it('refuses at once when the whole queue or one key’s line is full', async () => {
    const q = new FairQueue({ concurrency: 1, maxQueue: 3, maxQueuePerKey: 2 });
    const g = gate();
    const runs = [q.run('a', () => g.promise), q.run('a', async () => {}), q.run('a', async () => {})];
    await assert.rejects(q.run('a', async () => {}), QueueFullError, 'key a already has 2 waiting');
    runs.push(q.run('b', async () => {}));
    await assert.rejects(q.run('c', async () => {}), QueueFullError, '3 waiting in all');
    g.open();
    await Promise.all(runs);
    await q.run('c', async () => {});
  });

  it('passes a task’s error to its caller and goes on with the next', async () => {
    const q = new FairQueue({ concurrency: 1, maxQueue: 5, maxQueuePerKey: 5 });
    const failing = q.run('a', async () => {
      throw new Error('boom');
    });
    const next = q.run('a', async () => 'next');
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 'next');
    assert.throws(() => new FairQueue({ concurrency: 0, maxQueue: 1, maxQueuePerKey: 1 }), RangeError);
  });
});

describe('PasswordChecker', () => {
  const options = { concurrency: 1, maxQueue: 0, maxQueuePerClient: 0, cacheTtlMs: 0, cacheEntries: 100 };

  it('answers UNAVAILABLE when its queue is full, and checks passwords otherwise', async () => {
    const hash = await hashPassword('right');
    const checker = new PasswordChecker(options);
    const running = checker.verify(hash, 'wrong-1', { userId: 'u1', client: 'net:a' });
    await assert.rejects(checker.verify(hash, 'wrong-2', { userId: 'u1', client: 'net:b' }), (err: unknown) => err instanceof StorageError && err.code === 'UNAVAILABLE');
    assert.equal(await running, false);
    assert.equal(await checker.verify(hash, 'right', { userId: 'u1' }), true);
    assert.equal(await checker.verify(null, 'right'), false, 'no password set');
  });

  it('runs one check for identical concurrent attempts', async () => {
    const hash = await hashPassword('right');
    const checker = new PasswordChecker(options);
    // with room for one check only, the second identical attempt can only succeed by sharing the first
    const both = await Promise.all([checker.verify(hash, 'right', { userId: 'u1' }), checker.verify(hash, 'right', { userId: 'u1' })]);
    assert.deepEqual(both, [true, true]);
    const wrong = await Promise.all([checker.verify(hash, 'nope', { userId: 'u1' }), checker.verify(hash, 'nope', { userId: 'u1' })]);
    assert.deepEqual(wrong, [false, false]);
  });

  it('remembers successful checks for the TTL only, per user, hash and password', async () => {
    let now = 1_000_000;
    const hash = await hashPassword('right');
    const rehashed = await hashPassword('right');
    const checker = new PasswordChecker({ ...options, cacheTtlMs: 60_000, now: () => now });
    assert.equal(await checker.verify(hash, 'right', { userId: 'u1' }), true);
    // occupy the only slot: whatever needs scrypt now is refused, a remembered success is not
    const busy = checker.verify(hash, 'other', { userId: 'u1' });
    assert.equal(await checker.verify(hash, 'right', { userId: 'u1' }), true, 'remembered');
    await assert.rejects(checker.verify(hash, 'right', { userId: 'u2' }), StorageError, 'another user is not remembered');
    await assert.rejects(checker.verify(rehashed, 'right', { userId: 'u1' }), StorageError, 'a changed hash is not remembered');
    await assert.rejects(checker.verify(hash, 'Right', { userId: 'u1' }), StorageError);
    now += 60_001;
    await assert.rejects(checker.verify(hash, 'right', { userId: 'u1' }), StorageError, 'expired');
    assert.equal(await busy, false, 'failures are never remembered');
    now = 1_000_000;
    const off = new PasswordChecker(options);
    assert.equal(await off.verify(hash, 'right', { userId: 'u1' }), true);
    const busy2 = off.verify(hash, 'other', { userId: 'u1' });
    await assert.rejects(off.verify(hash, 'right', { userId: 'u1' }), StorageError, 'cache off: checked again');
    await busy2;
  });
  it('shares remembered successes with checkers holding the same store and key, never failures', async () => {
    const hash = await hashPassword('right');
    const store = new MemoryEphemeral();
    const key = new Uint8Array(32).fill(7);
    const first = new PasswordChecker({ ...options, cacheTtlMs: 60_000, shared: { store, key } });
    const second = new PasswordChecker({ ...options, cacheTtlMs: 60_000, shared: { store, key } });
    const stranger = new PasswordChecker({ ...options, cacheTtlMs: 60_000, shared: { store, key: new Uint8Array(32).fill(8) } });
    assert.equal(await first.verify(hash, 'right', { userId: 'u1' }), true);
    assert.equal(await first.verify(hash, 'wrong', { userId: 'u1' }), false);
    await tick();
    // the second checker's only slot is taken: it can answer only from the shared store
    const busy = second.verify(hash, 'other', { userId: 'u1' });
    assert.equal(await second.verify(hash, 'right', { userId: 'u1' }), true, 'remembered by the other checker');
    await assert.rejects(second.verify(hash, 'wrong', { userId: 'u1' }), StorageError, 'a failure is not shared');
    await assert.rejects(second.verify(hash, 'right', { userId: 'u2' }), StorageError, 'another user is not remembered');
    const busy2 = stranger.verify(hash, 'other', { userId: 'u1' });
    await assert.rejects(stranger.verify(hash, 'right', { userId: 'u1' }), StorageError, 'another key finds nothing');
    assert.equal(await busy, false);
    assert.equal(await busy2, false);
    store.close();
  });
});
