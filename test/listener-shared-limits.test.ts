/**
 * Connection caps shared by the processes of one server (protocols/net/listener.ts ConnectionLimits over the primary's
 * ephemeral store): the cap's slot and the address's share are taken in one reservation, and each cap holds for
 * the sockets of every process together.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLimits, type SharedSlots } from '../protocols/net/listener.ts';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';

/** The shared store, counting the round trips made to it. */
function countingStore(): { slots: SharedSlots; store: MemoryEphemeral; calls: () => number } {
  const store = new MemoryEphemeral();
  let calls = 0;
  return {
    store,
    calls: () => calls,
    slots: {
      reserve: (counters, ttlMs) => {
        calls++;
        return store.reserve(counters, ttlMs);
      },
      release: (key, by) => {
        calls++;
        return store.release(key, by);
      },
    },
  };
}

describe('connection limits shared between processes', () => {
  it('takes the cap slot and the address share in one round trip; each cap counts every process', async () => {
    const shared = countingStore();
    const name = 'listener:imap';
    const a = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 2 }, { slots: shared.slots, name });
    const b = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 2 }, { slots: shared.slots, name });

    const first = await a.admitWithAddress('10.0.0.1');
    assert.ok(first.slot && first.share);
    assert.equal(shared.calls(), 1, 'one reservation for both');
    const second = await b.admitWithAddress('10.0.0.1');
    assert.ok(second.slot && second.share);

    // the address has its two sockets, in two processes: a third gets a slot (to be told why) but no share
    const third = await a.admitWithAddress('10.0.0.1');
    assert.ok(third.slot, 'a slot of the cap, to write the refusal');
    assert.equal(third.share, null);
    assert.equal(await shared.store.get(`${name}:ip:10.0.0.1`), 2);
    assert.equal(await shared.store.get(`${name}:connections`), 3);
    assert.equal(a.countFor('10.0.0.1'), 1, 'the refused share is given back locally');

    // the cap (3) is full across both processes: nothing at all
    const fourth = await b.admitWithAddress('10.0.0.2');
    assert.deepEqual(fourth, { slot: null, share: null });
    assert.equal(b.total, 1);
    assert.equal(b.countFor('10.0.0.2'), 0);

    third.slot.release();
    first.slot.release();
    first.share.release();
    first.share.release(); // idempotent
    await new Promise((r) => setImmediate(r));
    assert.equal(await shared.store.get(`${name}:connections`), 1);
    assert.equal(await shared.store.get(`${name}:ip:10.0.0.1`), 1);
    const again = await a.admitWithAddress('10.0.0.2');
    assert.ok(again.slot && again.share);
    shared.store.close();
  });

  it('without a shared store, counts this process alone', async () => {
    const limits = new ConnectionLimits({ maxConnections: 2, maxConnectionsPerIp: 1 });
    const one = await limits.admitWithAddress('10.0.0.1');
    assert.ok(one.slot && one.share);
    const two = await limits.admitWithAddress('10.0.0.1');
    assert.ok(two.slot);
    assert.equal(two.share, null);
    assert.deepEqual(await limits.admitWithAddress('10.0.0.3'), { slot: null, share: null });
  });
});
