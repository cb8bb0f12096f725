/**
 * The POP3 maildrop lock in a long session (protocols/pop3/maildrop.ts `refresh`): past half its TTL it is extended
 * for the token it holds (EphemeralPort.extend), never unlocked and taken again, so no other session can take the
 * maildrop in between; a lock lost anyway is taken again when free; a store that does not answer fails no command.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Maildrop } from '../protocols/pop3/maildrop.ts';
import type { PipelineApp } from '../hooks/pipeline/index.ts';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';
import type { EphemeralPort, MailboxRecord } from '../storage/ports.ts';

const MINUTE = 60_000;

/** A store whose clock the test moves, recording which operations the maildrop calls. */
function fixture() {
  let clock = 1_000_000;
  const store = new MemoryEphemeral({ now: () => clock });
  const calls: string[] = [];
  let failing = false;
  const ephemeral = new Proxy(store, {
    get(target, name: string) {
      const value = (target as unknown as Record<string, unknown>)[name];
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(name);
        if (failing) return Promise.reject(new Error('store unreachable'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as EphemeralPort;
  const inbox = { id: '7', userId: '1', path: 'INBOX', uidValidity: 1 } as MailboxRecord;
  const app = {
    config: { pop3: { idleTimeoutSeconds: 60, maxMessages: 100 } },
    storage: {
      ephemeral,
      mailboxes: { getByPath: async () => inbox },
      messages: { index: async () => [] },
    },
  } as unknown as PipelineApp;
  return {
    app,
    store,
    calls,
    /** Moves the store's clock forward (the maildrop's, Date.now, is moved by `later`). */
    advance(ms: number) {
      clock += ms;
    },
    setFailing(value: boolean) {
      failing = value;
    },
  };
}

/** Runs `fn` with Date.now moved `ms` ahead. */
async function later<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real() + ms;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

describe('POP3 maildrop lock', () => {
  it('a long session extends its lock for its own token, with no unlock in between', async () => {
    const f = fixture();
    const drop = await Maildrop.open(f.app, '1');
    assert.ok(drop instanceof Maildrop);
    assert.equal(await f.store.lock('pop3:lock:7', MINUTE), null, 'held');
    f.calls.length = 0;
    await drop.refresh();
    assert.deepEqual(f.calls, [], 'young lock: nothing to do');

    // six minutes on (the TTL is 10 minutes): the lock is extended
    f.advance(6 * MINUTE);
    await later(6 * MINUTE, () => drop.refresh());
    assert.deepEqual(f.calls, ['extend'], 'extended, never unlocked and relocked');
    // past the first expiry, within the extended one
    f.advance(6 * MINUTE);
    assert.equal(await f.store.lock('pop3:lock:7', MINUTE), null, 'still held 12 minutes after it was taken');
    await drop.close();
    assert.ok(await f.store.lock('pop3:lock:7', MINUTE), 'close released it');
  });

  it('a lock lost anyway is taken again when free; a store that does not answer fails nothing', async () => {
    const f = fixture();
    const drop = await Maildrop.open(f.app, '1');
    assert.ok(drop instanceof Maildrop);
    await f.store.del('pop3:lock:7'); // as if it had expired
    f.calls.length = 0;
    await later(6 * MINUTE, () => drop.refresh());
    assert.deepEqual(f.calls, ['extend', 'lock']);
    assert.equal(await f.store.lock('pop3:lock:7', MINUTE), null, 'held again');

    f.setFailing(true);
    await later(12 * MINUTE, () => drop.refresh()); // does not throw
    f.setFailing(false);
    await drop.close();
    assert.ok(await f.store.lock('pop3:lock:7', MINUTE), 'close released the lock taken again');
  });
});
