/**
 * Password verification for logins, bounded and shared:
 *
 * - **A fair queue** (storage/fair-queue.ts): at most `concurrency` scrypt checks run at once (node:crypto runs
 *   them on libuv's thread pool on Node, on a blocking-task thread on Deno — off the event loop either way, but
 *   the Node pool has 4 threads shared with file and DNS work, so we keep some free), the others wait per client
 *   network, served round-robin; a full queue throws StorageError UNAVAILABLE (the client gets a temporary
 *   failure) so a burst is shed instead of delaying every login by seconds.
 * - **One check for identical concurrent attempts**: the same user, stored hash and password arriving together
 *   share one scrypt run.
 * - **A short cache of successful checks** (optional, `cacheTtlMs` > 0): keyed by HMAC-SHA256, under a random
 *   per-process key, of user id + stored hash + password; only the HMAC is kept, never the password. A client
 *   that reconnects often then costs one scrypt per TTL, not one per login. Trade-off: while an entry lives,
 *   someone able to read this process's memory (key and entries) could test guesses for that user at HMAC speed
 *   instead of scrypt speed; a password change (new hash) makes old entries useless at once.
 *
 * Worker threads would add nothing here: the hashing already runs off the event loop, and the queue bounds how
 * many threads it takes.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { FairQueue, QueueFullError } from './fair-queue.ts';
import { verifyPassword } from './passwords.ts';
import { StorageError } from './ports.ts';
import type { EphemeralPort, Id } from './ports.ts';

export interface PasswordCheckOptions {
  /** scrypt checks running at once. */
  concurrency: number;
  /** Checks waiting, all clients together; beyond it logins get a temporary failure. */
  maxQueue: number;
  /** Checks waiting for one client network. */
  maxQueuePerClient: number;
  /** Lifetime of a cached successful check; 0 = no cache. */
  cacheTtlMs: number;
  /** Most cached checks kept (the oldest go first). */
  cacheEntries: number;
  now?: () => number;
  /**
   * Share remembered successes with other processes (the worker processes of one server, protocols/net/cluster.ts):
   * entries go to `store` under `pwcheck:<HMAC>`, with `key` the HMAC key every sharer holds, so a user who logged
   * in through one worker costs no scrypt on the next. Only the HMAC is stored, never the password.
   */
  shared?: SharedCheckCache;
}

export interface SharedCheckCache {
  store: Pick<EphemeralPort, 'get' | 'setIfAbsent'>;
  key: Uint8Array;
}

const sharedKey = (id: string): string => `pwcheck:${id}`;

export interface VerifyRequest {
  /** The account; without one (the dummy check for unknown logins) nothing is cached or shared. */
  userId?: Id;
  /** Fairness key: the client's network (plugins/client-address.ts); '' for internal callers. */
  client?: string;
}

export class PasswordChecker {
  readonly #queue: FairQueue;
  readonly #key: Uint8Array;
  readonly #shared: SharedCheckCache['store'] | null;
  readonly #ttl: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** HMAC → expiry (ms); Map order is insertion order, oldest first. */
  readonly #cache = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<boolean>>();

  constructor(options: PasswordCheckOptions) {
    this.#queue = new FairQueue({ concurrency: options.concurrency, maxQueue: options.maxQueue, maxQueuePerKey: options.maxQueuePerClient });
    this.#ttl = options.cacheTtlMs;
    this.#maxEntries = options.cacheEntries;
    this.#now = options.now ?? Date.now;
    this.#key = options.shared?.key ?? randomBytes(32);
    this.#shared = options.shared?.store ?? null;
  }

  /** Checks running and waiting now (for tests and metrics). */
  get load(): { running: number; queued: number } {
    return { running: this.#queue.running, queued: this.#queue.queued };
  }

  async verify(encoded: string | null, password: string, request: VerifyRequest = {}): Promise<boolean> {
    if (!encoded) return false;
    const id = request.userId === undefined ? null : createHmac('sha256', this.#key).update(`${request.userId}\0${encoded}\0${password}`).digest('base64');
    if (id !== null) {
      const expires = this.#cache.get(id);
      if (expires !== undefined) {
        if (expires > this.#now()) return true;
        this.#cache.delete(id);
      }
      if (this.#shared && this.#ttl > 0 && (await this.#shared.get(sharedKey(id)).catch(() => 0)) > 0) {
        if (this.#maxEntries > 0) this.#remember(id);
        return true;
      }
      const pending = this.#inflight.get(id);
      if (pending) return pending;
    }
    const check = this.#queue.run(request.client ?? '', () => verifyPassword(encoded, password)).catch((err: unknown) => {
      if (err instanceof QueueFullError) throw new StorageError('UNAVAILABLE', 'Too many logins in progress, try again later');
      throw err;
    });
    if (id === null) return check;
    this.#inflight.set(id, check);
    try {
      const valid = await check;
      if (valid && this.#ttl > 0) {
        if (this.#maxEntries > 0) this.#remember(id);
        // a hint for the other sharers: losing it costs one scrypt, never a wrong answer
        this.#shared?.setIfAbsent(sharedKey(id), this.#ttl).catch(() => {});
      }
      return valid;
    } finally {
      this.#inflight.delete(id);
    }
  }

  #remember(id: string): void {
    this.#cache.delete(id);
    while (this.#cache.size >= this.#maxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(id, this.#now() + this.#ttl);
  }
}
