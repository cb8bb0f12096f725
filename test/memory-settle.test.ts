import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySettler } from '../protocols/net/memory-settle.ts';

const MB = 1024 * 1024;

/** A settler on a scripted heap and event loop, checked by hand. */
function scripted(options: { growthMb?: number } = {}) {
  const state = { heap: 100 * MB, busy: 0, collections: 0 };
  const settler = MemorySettler.start({
    growthBytes: (options.growthMb ?? 16) * MB,
    checkMs: 3_600_000, // never by itself here: the test calls check()
    gc: () => {
      state.collections++;
    },
    heapBytes: () => state.heap,
    utilization: () => state.busy,
  })!;
  // the start's own settle: the first quiet look after the start collects once
  state.busy = 0.5;
  assert.equal(settler.check(), false, 'not while the start keeps it busy');
  state.busy = 0;
  assert.equal(settler.check(), true, 'the first quiet moment after the start');
  state.collections = 0;
  return { state, settler };
}

test('settles once after the heap grew and the process went quiet, not while it is busy', () => {
  const { state, settler } = scripted();
  try {
    state.heap += 8 * MB;
    assert.equal(settler.check(), false, 'grown less than the threshold');
    state.heap += 20 * MB;
    state.busy = 0.6;
    assert.equal(settler.check(), false, 'busy: a full collection would pause the clients it serves');
    state.busy = 0.01;
    assert.equal(settler.check(), true);
    assert.equal(state.collections, 1);
    assert.equal(settler.check(), false, 'the same growth does not call for another');
    assert.equal(state.collections, 1);
  } finally {
    settler.stop();
  }
});

test('growth is measured from the low point after the heap shrank', () => {
  const { state, settler } = scripted();
  try {
    state.heap = 60 * MB; // the reducer gave pages back
    assert.equal(settler.check(), false);
    state.heap = 70 * MB; // 10 MB above the low point, though below the start
    assert.equal(settler.check(), false);
    state.heap = 80 * MB; // 20 MB above it
    assert.equal(settler.check(), true);
    assert.equal(state.collections, 1);
  } finally {
    settler.stop();
  }
});

test('does nothing without an exposed collector', () => {
  assert.equal(MemorySettler.start({ growthBytes: MB, checkMs: 1000, gc: null }), null);
});
