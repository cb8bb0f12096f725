/**
 * The first SELECT rehearsed at start (protocols/imap/warm-up.ts): it runs the storage reads, the index load from a
 * snapshot, the catch-up and the session's view, and leaves nothing behind: no ephemeral key written, no index in
 * the app's registry, no snapshot file, no change-log entry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { imapTestAppPerSuite } from './helpers/imap-harness.ts';
import { rehearseSelect } from '../protocols/imap/warm-up.ts';
import type { EphemeralPort } from '../storage/ports.ts';

describe('IMAP warm-up at start', () => {
  const t = imapTestAppPerSuite();

  it('rehearses a first SELECT without a trace', async () => {
    const real = t.app.storage.ephemeral;
    const calls: string[] = [];
    const ephemeral = new Proxy(real, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (calls.push(String(name)), (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    }) as EphemeralPort;
    let warmed = 0;
    const storage = { ...t.app.storage, ephemeral, warmUp: () => (warmed++, t.app.storage.warmUp!()) };
    const latest = await t.app.storage.changes.latest(t.userId);

    assert.equal(await rehearseSelect({ storage }), true, 'every step ran');
    assert.equal(warmed, 1);
    assert.deepEqual([...new Set(calls)], ['get'], 'the ephemeral store is only read');
    assert.equal(t.app.indexes.size, 0);
    const dir = join(t.dataDir, 'index');
    assert.ok(!existsSync(dir) || readdirSync(dir).length === 0, 'no snapshot saved');
    assert.equal(await t.app.storage.changes.latest(t.userId), latest);
  });
});
