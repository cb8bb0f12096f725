/** The cache of inflated message bytes (storage/sqlite/inflated-cache.ts): least recently used out first, within its byte budget. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InflatedCache } from '../storage/sqlite/inflated-cache.ts';

const bytes = (n: number) => new Uint8Array(n);

describe('inflated bytes cache', () => {
  it('keeps entries within its budget, dropping the least recently used first', () => {
    const cache = new InflatedCache(100);
    cache.set(1, bytes(20));
    cache.set(2, bytes(20));
    cache.set(3, bytes(20));
    assert.ok(cache.get(1), 'a hit makes 1 the most recently used');
    cache.set(4, bytes(25));
    cache.set(5, bytes(25));
    assert.equal(cache.bytes <= 100, true);
    assert.equal(cache.get(2), undefined, '2 was the least recently used');
    assert.ok(cache.get(1));
    assert.ok(cache.get(5));
  });

  it('keeps nothing larger than a quarter of its budget, and nothing with a budget of 0', () => {
    const cache = new InflatedCache(100);
    cache.set(1, bytes(26));
    assert.equal(cache.get(1), undefined);
    const none = new InflatedCache(0);
    none.set(1, bytes(1));
    assert.equal(none.get(1), undefined);
    assert.equal(none.bytes, 0);
  });
});
