/**
 * In-process EphemeralPort for the embedded backend: counters with expiry, setIfAbsent, locks with tokens and
 * expiry, pub/sub. One keyspace like Redis (a lock key, a counter and a setIfAbsent key with the same name are the
 * same key). Expiry is checked on access and swept now and then; no timers, so nothing keeps the process alive.
 *
 * Pub/sub delivers asynchronously (on a microtask), never inside `publish`, so a listener can call back into the
 * storage without re-entrancy. A listener that throws does not stop the others.
 */
import { randomUUID } from 'node:crypto';
import type { EphemeralPort } from '../ports.ts';

interface Entry {
  value: number | string;
  /** ms since epoch; Infinity = no expiry. */
  expires: number;
}

const SWEEP_EVERY = 1000;

export class MemoryEphemeral implements EphemeralPort {
  #keys = new Map<string, Entry>();
  #channels = new Map<string, Set<(message: string) => void>>();
  #ops = 0;
  #now: () => number;
  #closed = false;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  #live(key: string): Entry | undefined {
    if (++this.#ops % SWEEP_EVERY === 0) this.#sweep();
    const e = this.#keys.get(key);
    if (!e) return undefined;
    if (e.expires <= this.#now()) {
      this.#keys.delete(key);
      return undefined;
    }
    return e;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, e] of this.#keys) if (e.expires <= now) this.#keys.delete(k);
  }

  #expiry(ttlMs: number): number {
    return ttlMs > 0 && Number.isFinite(ttlMs) ? this.#now() + ttlMs : Infinity;
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    const e = this.#live(key);
    if (e && typeof e.value === 'number') {
      e.value += by;
      return e.value;
    }
    this.#keys.set(key, { value: by, expires: this.#expiry(ttlMs) });
    return by;
  }

  async get(key: string): Promise<number> {
    const e = this.#live(key);
    return e && typeof e.value === 'number' ? e.value : 0;
  }

  async raise(key: string, to: number, ttlMs: number): Promise<number> {
    const e = this.#live(key);
    if (e && typeof e.value === 'number') {
      const before = e.value;
      if (to > before) e.value = to;
      return before;
    }
    if (to > 0) this.#keys.set(key, { value: to, expires: this.#expiry(ttlMs) });
    return 0;
  }

  async reserve(counters: ReadonlyArray<{ readonly key: string; readonly limit: number }>, ttlMs: number): Promise<number> {
    const entries = counters.map((c) => this.#live(c.key));
    const over = counters.findIndex((c, i) => {
      const e = entries[i];
      return (e && typeof e.value === 'number' ? e.value : 0) >= c.limit;
    });
    if (over >= 0) return over;
    counters.forEach((c, i) => {
      const e = entries[i];
      if (e && typeof e.value === 'number') e.value += 1;
      else this.#keys.set(c.key, { value: 1, expires: this.#expiry(ttlMs) });
    });
    return -1;
  }

  async release(key: string, by: number): Promise<number> {
    const e = this.#live(key);
    if (!e || typeof e.value !== 'number') return 0;
    e.value = Math.max(0, e.value - by);
    return e.value;
  }

  async del(key: string): Promise<void> {
    this.#keys.delete(key);
  }

  async setIfAbsent(key: string, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return false;
    this.#keys.set(key, { value: 1, expires: this.#expiry(ttlMs) });
    return true;
  }

  async lock(key: string, ttlMs: number): Promise<string | null> {
    if (this.#live(key)) return null;
    const token = randomUUID();
    this.#keys.set(key, { value: token, expires: this.#expiry(ttlMs) });
    return token;
  }

  async unlock(key: string, token: string): Promise<boolean> {
    const e = this.#live(key);
    if (!e || e.value !== token) return false;
    this.#keys.delete(key);
    return true;
  }

  async extend(key: string, token: string, ttlMs: number): Promise<boolean> {
    const e = this.#live(key);
    if (!e || e.value !== token) return false;
    e.expires = this.#expiry(ttlMs);
    return true;
  }

  async publish(channel: string, message: string): Promise<void> {
    if (this.#closed) return;
    const listeners = this.#channels.get(channel);
    if (!listeners || listeners.size === 0) return;
    const snapshot = [...listeners];
    queueMicrotask(() => {
      for (const listener of snapshot) {
        if (!listeners.has(listener)) continue; // unsubscribed meanwhile
        try {
          listener(message);
        } catch {
          // a failing listener must not break delivery to the others
        }
      }
    });
  }

  subscribe(channel: string, listener: (message: string) => void): () => void {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
    }
    // Wrap so the same function subscribed twice gets two independent subscriptions.
    const wrapped = (m: string): void => listener(m);
    set.add(wrapped);
    return () => {
      const s = this.#channels.get(channel);
      if (!s) return;
      s.delete(wrapped);
      if (s.size === 0) this.#channels.delete(channel);
    };
  }

  /** Drops all keys and subscriptions. */
  close(): void {
    this.#closed = true;
    this.#keys.clear();
    this.#channels.clear();
  }
}
