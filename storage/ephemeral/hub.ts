/**
 * Serves one in-process EphemeralPort (a MemoryEphemeral held by the primary process) to worker processes over a
 * message channel (the cluster IPC channel; storage/ephemeral/remote.ts is the worker's side). Every counter, lock
 * and reservation then lives in one place, so limits and locks hold across workers exactly as in one process, and
 * a message published by any worker reaches the subscribers of every worker.
 *
 * A worker that dies (crash, kill) is detached: its subscriptions end, and the locks and reservations it still
 * held are given back at once instead of lingering until their expiry (a POP3 maildrop lock, a login attempt in
 * progress, a per-user IMAP connection slot). Plain counters (`incr`) are shared state, not held, and stay.
 */
import type { EphemeralPort } from '../ports.ts';

/** Messages on the wire. `wd:eph` is the prefix every message of this protocol carries in `t`. */
export type EphemeralRequest = { t: 'wd:eph'; id: number; op: EphemeralOp; args: unknown[] };
export type EphemeralReply = { t: 'wd:eph:r'; id: number; value?: unknown; error?: string };
/** One-way from a worker: `sub` / `unsub` a channel, `pub` a message. From the hub: a published message (`msg`). */
export type EphemeralSignal =
  | { t: 'wd:eph:sub' | 'wd:eph:unsub'; channel: string }
  | { t: 'wd:eph:pub' | 'wd:eph:msg'; channel: string; message: string };
export type EphemeralWire = EphemeralRequest | EphemeralReply | EphemeralSignal;

export const EPHEMERAL_OPS = ['incr', 'get', 'raise', 'reserve', 'release', 'del', 'setIfAbsent', 'lock', 'unlock', 'extend', 'publish'] as const;
export type EphemeralOp = (typeof EPHEMERAL_OPS)[number];

/** Whether an IPC message belongs to this protocol. */
export function isEphemeralWire(message: unknown): message is EphemeralWire {
  const t = (message as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('wd:eph');
}

export interface HubPeer {
  send(message: EphemeralWire): void;
}

export interface AttachedPeer {
  /** Handles a message from the peer; false when it is not an ephemeral message. */
  receive(message: unknown): boolean;
  /** The peer is gone: drop its subscriptions, give back its locks and reservations. */
  detach(): Promise<void>;
}

export class EphemeralHub {
  readonly #store: EphemeralPort;
  readonly #onPublish: ((channel: string, message: string) => void) | null;

  /** `onPublish` sees every message a worker publishes (the primary uses it to skip re-announcing changes). */
  constructor(store: EphemeralPort, options: { onPublish?: (channel: string, message: string) => void } = {}) {
    this.#store = store;
    this.#onPublish = options.onPublish ?? null;
  }

  attach(peer: HubPeer): AttachedPeer {
    const store = this.#store;
    const subscriptions = new Map<string, () => void>();
    /** Lock key → token this peer holds. */
    const locks = new Map<string, string>();
    /** Reserved counter key → units this peer has not released yet. */
    const reserved = new Map<string, number>();
    let detached = false;

    const reply = (id: number, value: unknown, error?: string) => {
      if (detached) return;
      try {
        peer.send(error === undefined ? { t: 'wd:eph:r', id, value } : { t: 'wd:eph:r', id, error });
      } catch {
        // the channel closed under us: the peer is going away
      }
    };

    const publish = (channel: string, message: string): Promise<void> => {
      this.#onPublish?.(channel, message);
      return store.publish(channel, message);
    };

    const run = async (op: EphemeralOp, args: unknown[]): Promise<unknown> => {
      switch (op) {
        case 'incr':
          return store.incr(String(args[0]), Number(args[1]), Number(args[2]));
        case 'get':
          return store.get(String(args[0]));
        case 'raise':
          return store.raise(String(args[0]), Number(args[1]), Number(args[2]));
        case 'reserve': {
          const counters = args[0] as Array<{ key: string; limit: number }>;
          const over = await store.reserve(counters, Number(args[1]));
          if (over < 0) for (const c of counters) reserved.set(c.key, (reserved.get(c.key) ?? 0) + 1);
          return over;
        }
        case 'release': {
          const key = String(args[0]);
          const by = Number(args[1]);
          const held = reserved.get(key);
          if (held !== undefined) {
            if (held - by > 0) reserved.set(key, held - by);
            else reserved.delete(key);
          }
          return store.release(key, by);
        }
        case 'del':
          return store.del(String(args[0]));
        case 'setIfAbsent':
          return store.setIfAbsent(String(args[0]), Number(args[1]));
        case 'lock': {
          const key = String(args[0]);
          const token = await store.lock(key, Number(args[1]));
          if (token) locks.set(key, token);
          return token;
        }
        case 'unlock': {
          const key = String(args[0]);
          const token = String(args[1]);
          if (locks.get(key) === token) locks.delete(key);
          return store.unlock(key, token);
        }
        case 'extend': {
          // the lock stays this peer's (given back when it dies) while the token holds it
          const key = String(args[0]);
          const token = String(args[1]);
          const held = await store.extend(key, token, Number(args[2]));
          if (!held && locks.get(key) === token) locks.delete(key);
          return held;
        }
        case 'publish':
          return publish(String(args[0]), String(args[1]));
      }
    };

    return {
      receive: (message) => {
        if (!isEphemeralWire(message) || detached) return isEphemeralWire(message);
        switch (message.t) {
          case 'wd:eph': {
            if (!(EPHEMERAL_OPS as readonly string[]).includes(message.op) || !Array.isArray(message.args)) {
              reply(message.id, undefined, `unknown ephemeral operation ${String(message.op)}`);
              return true;
            }
            run(message.op, message.args).then(
              (value) => reply(message.id, value ?? null),
              (err: unknown) => reply(message.id, undefined, (err as Error)?.message ?? String(err)),
            );
            return true;
          }
          case 'wd:eph:sub': {
            if (!subscriptions.has(message.channel)) {
              const channel = message.channel;
              subscriptions.set(
                channel,
                store.subscribe(channel, (m) => {
                  if (detached) return;
                  try {
                    peer.send({ t: 'wd:eph:msg', channel, message: m });
                  } catch {
                    // going away
                  }
                }),
              );
            }
            return true;
          }
          case 'wd:eph:pub': {
            publish(String(message.channel), String(message.message)).catch(() => {
              // a hint: listeners catch up on the next one
            });
            return true;
          }
          case 'wd:eph:unsub': {
            subscriptions.get(message.channel)?.();
            subscriptions.delete(message.channel);
            return true;
          }
          default:
            return true;
        }
      },
      detach: async () => {
        if (detached) return;
        detached = true;
        for (const off of subscriptions.values()) off();
        subscriptions.clear();
        for (const [key, token] of locks) await store.unlock(key, token).catch(() => false);
        locks.clear();
        for (const [key, units] of reserved) await store.release(key, units).catch(() => 0);
        reserved.clear();
      },
    };
  }
}
