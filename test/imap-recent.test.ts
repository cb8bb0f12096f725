/**
 * \Recent claims (protocols/imap/recent.ts): each UID is claimed by one session, in one atomic step of the
 * ephemeral store (`raise`): no lock, one round trip per claim (none under a mark the process has seen).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { claimRecent } from '../protocols/imap/recent.ts';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';

class CountingEphemeral extends MemoryEphemeral {
  locks = 0;
  raises = 0;
  override lock(key: string, ttlMs: number): Promise<string | null> {
    this.locks++;
    return super.lock(key, ttlMs);
  }
  override raise(key: string, to: number, ttlMs: number): Promise<number> {
    this.raises++;
    return super.raise(key, to, ttlMs);
  }
}

describe('claimRecent', () => {
  it('hands each UID to one claimer; one round trip each, no lock', async () => {
    const store = new CountingEphemeral();
    assert.equal(await claimRecent(store, 'm1', 1, 5), 0, 'first claim: UIDs 1-5 are recent');
    assert.equal(await claimRecent(store, 'm1', 1, 5), 5, 'nothing above the mark');
    assert.equal(await claimRecent(store, 'm1', 1, 3), 5);
    assert.equal(store.raises, 1, 'one call to the store per claim; none for a claim under a mark already seen');
    const otherProcess = { raise: (k: string, to: number, ttl: number) => store.raise(k, to, ttl) } as unknown as MemoryEphemeral;
    assert.equal(await claimRecent(otherProcess, 'm1', 1, 5), 5, 'another process asks the store');
    assert.equal(store.raises, 2);
    assert.equal(store.locks, 0, 'no lock taken');
    const [a, b] = await Promise.all([claimRecent(store, 'm1', 1, 9), claimRecent(store, 'm1', 1, 9)]);
    assert.deepEqual([a, b].sort(), [5, 9], 'two sessions claiming 6-9 at once: one gets them, the other nothing');
    assert.equal(await claimRecent(store, 'm1', 2, 4), 0, 'another UIDVALIDITY starts afresh');
  });
});
