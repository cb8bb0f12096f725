import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines, type DeadlineOwner } from '../protocols/net/deadlines.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function owner(name: string, log: string[]): DeadlineOwner & { at: number } {
  const o = {
    deadline: 0,
    queuedAt: 0,
    at: 0,
    expire() {
      o.at = performance.now();
      log.push(name);
    },
  };
  return o;
}

test('owners expire in deadline order, each once, and nothing is left armed', async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const owners = [70, 10, 40, 25, 55].map((ms, i) => [owner(`o${i}:${ms}`, log), ms] as const);
  for (const [o, ms] of owners) d.set(o, ms);
  assert.equal(d.size, 5);
  await sleep(150);
  assert.deepEqual(log, ['o1:10', 'o3:25', 'o2:40', 'o4:55', 'o0:70']);
  assert.equal(d.size, 0);
  for (const [o] of owners) assert.equal(o.deadline, 0);
});

test('moving a deadline later postpones it; earlier brings it forward; clear cancels', async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const later = owner('later', log);
  const earlier = owner('earlier', log);
  const cleared = owner('cleared', log);
  const t0 = performance.now();
  d.set(later, 20);
  d.set(earlier, 2000);
  d.set(cleared, 30);
  d.set(later, 400); // pushed back: its first entry (20 ms) is stale when it comes up
  d.set(earlier, 40); // brought forward: a new, earlier entry
  d.clear(cleared);
  assert.equal(d.size, 2);
  while (log.length < 2) await sleep(20);
  assert.deepEqual(log, ['earlier', 'later']);
  assert.ok(earlier.at - t0 < 2000, `the deadline brought forward fired after ${earlier.at - t0} ms`);
  assert.ok(later.at - t0 >= 399, `the postponed deadline fired after ${later.at - t0} ms`);
  assert.equal(d.size, 0);
});

test('a busy owner moving its deadline on every chunk keeps one live entry and expires once after going quiet', async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const busy = owner('busy', log);
  const t0 = performance.now();
  let last = t0;
  for (let i = 0; i < 10; i++) {
    d.set(busy, 300);
    last = performance.now();
    await sleep(5);
  }
  if (performance.now() - t0 < 250) assert.deepEqual(log, [], 'not expired while active'); // (unless the machine stalled)
  while (log.length === 0) await sleep(20);
  assert.ok(busy.at - last >= 299, `expired ${busy.at - last} ms after the last move`);
  assert.deepEqual(log, ['busy']);
  assert.equal(d.size, 0);
});

test('clearing the last deadline disarms the timer, and an expiring owner may set a new deadline', async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const a = owner('a', log);
  d.set(a, 10_000);
  d.clear(a);
  assert.equal(d.size, 0); // no timer left (the test runner would wait 10 s for it otherwise)
  let rounds = 0;
  const again: DeadlineOwner = {
    deadline: 0,
    queuedAt: 0,
    expire() {
      log.push(`again${++rounds}`);
      if (rounds < 3) d.set(again, 5);
    },
  };
  d.set(again, 5);
  await sleep(80);
  assert.deepEqual(log, ['again1', 'again2', 'again3']);
  assert.equal(d.size, 0);
});

test('many owners with deadlines set in random order expire in deadline order', async () => {
  const d = new Deadlines();
  const log: string[] = [];
  const due = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const o = owner(String(i), log);
    d.set(o, (i * 37) % 100); // deadlines 0..99 ms, set out of order
    due.set(String(i), o.deadline);
  }
  while (log.length < 200) await sleep(20);
  const order = log.map((name) => due.get(name)!);
  assert.deepEqual(order, [...order].sort((a, b) => a - b));
  assert.equal(new Set(log).size, 200, 'each once');
  assert.equal(d.size, 0);
});
