/**
 * The worker's EphemeralPort: every operation is a request to the primary's EphemeralHub
 * (storage/ephemeral/hub.ts) over a message channel (the cluster IPC channel), answered by the one
 * MemoryEphemeral all workers share. Pub/sub: the first local listener of a channel subscribes this worker at the
 * hub, the last one to leave unsubscribes it; the hub forwards every message published on the channel (by any
 * worker, this one included) and it is delivered here on a microtask, like MemoryEphemeral does. A channel whose
 * last listener left stays subscribed at the hub until the next sweep (`lingerMs`): a session that re-selects a
 * mailbox, or the next one of the same user, listens again without two messages to the primary.
 *
 * Costs one IPC round trip per operation (tens of microseconds on loopback): cheap next to the storage work each
 * operation guards. A publish is one message with no answer. When the channel is gone (the primary died), operations fail with StorageError UNAVAILABLE:
 * the client gets a temporary failure while the worker shuts down.
 */
import { setImmediate } from 'node:timers';
import type { EphemeralPort } from '../ports.ts';
import { StorageError } from '../ports.ts';
import type { EphemeralOp, EphemeralWire } from './hub.ts';
import { isEphemeralWire } from './hub.ts';

export interface EphemeralChannel {
  send(message: EphemeralWire): void;
  /** Registers the handler for every message from the hub (and others: they are ignored). */
  onMessage(handler: (message: unknown) => void): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export class RemoteEphemeral implements EphemeralPort {
  readonly #channel: EphemeralChannel;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  #next = 1;
  #closed = false;
  /** Channels subscribed at the hub with no listener left here, unsubscribed by the next sweep if still unused. */
  readonly #unused = new Set<string>();
  readonly #lingerMs: number;
  #sweep: ReturnType<typeof setTimeout> | null = null;
  /** Publishes not sent yet (`publish`); sent before any other message, so the hub sees everything in call order. */
  #outbox: EphemeralWire[] = [];

  constructor(channel: EphemeralChannel, options: { lingerMs?: number } = {}) {
    this.#channel = channel;
    this.#lingerMs = options.lingerMs ?? 5000;
    channel.onMessage((message) => {
      if (isEphemeralWire(message)) this.#receive(message);
    });
  }

  #receive(message: EphemeralWire): void {
    if (message.t === 'wd:eph:r') {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) pending.reject(new StorageError('UNAVAILABLE', `ephemeral store: ${message.error}`));
      else pending.resolve(message.value);
    } else if (message.t === 'wd:eph:msg') {
      const listeners = this.#listeners.get(message.channel);
      if (!listeners || listeners.size === 0) return;
      const snapshot = [...listeners];
      queueMicrotask(() => {
        for (const listener of snapshot) {
          if (!listeners.has(listener)) continue;
          try {
            listener(message.message);
          } catch {
            // a failing listener must not break delivery to the others
          }
        }
      });
    }
  }

  #call<T>(op: EphemeralOp, args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageError('UNAVAILABLE', 'ephemeral store: the channel to the primary process is closed'));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      try {
        this.#sendOutbox();
        this.#channel.send({ t: 'wd:eph', id, op, args });
      } catch (err) {
        this.#pending.delete(id);
        reject(new StorageError('UNAVAILABLE', `ephemeral store: ${(err as Error)?.message ?? String(err)}`));
      }
    });
  }

  incr(key: string, by: number, ttlMs: number): Promise<number> {
    return this.#call('incr', [key, by, ttlMs]);
  }

  get(key: string): Promise<number> {
    return this.#call('get', [key]);
  }

  raise(key: string, to: number, ttlMs: number): Promise<number> {
    return this.#call('raise', [key, to, ttlMs]);
  }

  reserve(counters: ReadonlyArray<{ readonly key: string; readonly limit: number }>, ttlMs: number): Promise<number> {
    return this.#call('reserve', [counters.map((c) => ({ key: c.key, limit: c.limit })), ttlMs]);
  }

  release(key: string, by: number): Promise<number> {
    return this.#call('release', [key, by]);
  }

  async del(key: string): Promise<void> {
    await this.#call('del', [key]);
  }

  setIfAbsent(key: string, ttlMs: number): Promise<boolean> {
    return this.#call('setIfAbsent', [key, ttlMs]);
  }

  lock(key: string, ttlMs: number): Promise<string | null> {
    return this.#call('lock', [key, ttlMs]);
  }

  unlock(key: string, token: string): Promise<boolean> {
    return this.#call('unlock', [key, token]);
  }

  extend(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#call('extend', [key, token, ttlMs]);
  }

  /**
   * One way (no answer to wait for, one IPC message): it comes back to this process's listeners like to everyone's.
   * Sent at the end of this turn of the event loop, or before the next operation or (un)subscription if that comes
   * first: a commit's change announcement leaves after the acknowledgement its promise led to (an LMTP 250, an IMAP
   * OK, written on microtasks of the same turn), not before it, and the hub still sees messages in call order.
   */
  async publish(channel: string, message: string): Promise<void> {
    if (this.#closed) throw new StorageError('UNAVAILABLE', 'ephemeral store: the channel to the primary process is closed');
    this.#outbox.push({ t: 'wd:eph:pub', channel, message });
    if (this.#outbox.length === 1) setImmediate(() => this.#flushOutbox());
  }

  #flushOutbox(): void {
    try {
      this.#sendOutbox();
    } catch {
      // the channel is closing; pub/sub is a hint (listeners catch up on the next notification)
    }
  }

  /** Sends the queued publishes (throws what the channel throws; the rest stay queued). */
  #sendOutbox(): void {
    while (this.#outbox.length > 0) {
      this.#channel.send(this.#outbox[0]!);
      this.#outbox.shift();
    }
  }

  subscribe(channel: string, listener: (message: string) => void): () => void {
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
      this.#signal({ t: 'wd:eph:sub', channel });
    }
    this.#unused.delete(channel);
    const wrapped = (m: string): void => listener(m);
    set.add(wrapped);
    return () => {
      const s = this.#listeners.get(channel);
      if (!s || !s.delete(wrapped) || s.size > 0) return;
      if (this.#lingerMs <= 0) return this.#unsubscribe(channel);
      this.#unused.add(channel);
      if (this.#sweep) return;
      this.#sweep = setTimeout(() => this.#sweepUnused(), this.#lingerMs);
      (this.#sweep as { unref?: () => void }).unref?.();
    };
  }

  #sweepUnused(): void {
    this.#sweep = null;
    for (const channel of this.#unused) if (this.#listeners.get(channel)?.size === 0) this.#unsubscribe(channel);
    this.#unused.clear();
  }

  #unsubscribe(channel: string): void {
    this.#listeners.delete(channel);
    this.#signal({ t: 'wd:eph:unsub', channel });
  }

  #signal(message: EphemeralWire): void {
    if (this.#closed) return;
    try {
      this.#sendOutbox();
      this.#channel.send(message);
    } catch {
      // the channel is closing; the worker goes with it
    }
  }

  /** The channel is gone: pending and later operations fail, listeners are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbox = [];
    if (this.#sweep) clearTimeout(this.#sweep);
    this.#sweep = null;
    this.#unused.clear();
    for (const pending of this.#pending.values()) pending.reject(new StorageError('UNAVAILABLE', 'ephemeral store: the channel to the primary process closed'));
    this.#pending.clear();
    this.#listeners.clear();
  }
}
