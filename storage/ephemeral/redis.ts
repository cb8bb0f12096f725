/**
 * EphemeralPort on Redis (ioredis), for several server instances (or the worker processes of one) that share
 * counters, rate limits, locks, `\Recent` marks and change notifications (`storage.ephemeral: 'redis'`).
 *
 * - Every operation of more than one Redis command is one Lua script (storage/ephemeral/redis-scripts.ts): atomic
 *   against every other client. `setIfAbsent` and `lock` are `SET NX PX`; a lock's value is a random owner token,
 *   and `unlock` / `extend` act only for that token.
 * - Every key and channel gets `keyPrefix`, so several deployments can share one Redis. In a Redis Cluster a
 *   multi-key script must find all its keys in one hash slot: `reserve` takes keys of a user and of an address at
 *   once, so with `cluster` set the prefix is made a hash tag (`{wd}:`) and every key of this store lands in one slot
 *   (ephemeral state is small; pub/sub is cluster-wide anyway).
 * - Pub/sub runs on a second connection (a subscribed Redis connection can do nothing else): one SUBSCRIBE per
 *   channel shared by all local listeners, UNSUBSCRIBE when the last one leaves. Delivery is asynchronous (never
 *   inside `publish`), and a listener that throws does not stop the others. After a reconnection every channel with
 *   listeners is subscribed again.
 * - Faults never hang a caller: no offline queue on the command connection (a command while Redis is unreachable
 *   fails at once), a command timeout, no retry of a command in flight when the connection drops (an INCR must not
 *   count twice). Each failure is a StorageError UNAVAILABLE, which the protocols answer with a temporary failure.
 *   ioredis reconnects by itself (backing off up to 2 s); the store works again as soon as Redis is back.
 *   `connect()` fails (naming Redis and where it was looked for) when Redis cannot be reached at start.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { ClusterNode, ClusterOptions, RedisOptions } from 'ioredis';
import type { EphemeralPort } from '../ports.ts';
import { StorageError } from '../ports.ts';
import { EPHEMERAL_SCRIPTS, type EphemeralScripts } from './redis-scripts.ts';

export interface RedisEphemeralOptions {
  /** redis:// or rediss:// URL (user, password, database). With `sentinels`, the host is ignored. */
  url: string;
  /** Put before every key and channel. */
  keyPrefix?: string;
  connectTimeoutMs?: number;
  /** A command that gets no answer in this time fails UNAVAILABLE. */
  commandTimeoutMs?: number;
  /** Sentinels to ask for the master `name` (Redis Sentinel). */
  sentinels?: Array<{ host: string; port: number }>;
  name?: string;
  /** Cluster nodes to start from (Redis Cluster); the URL then gives only user, password and TLS. */
  cluster?: Array<{ host: string; port: number }>;
  /** Told about connection losses and recoveries (once per change, not per retry). */
  warn?: (message: string) => void;
}

type Client = (Redis | Cluster) & EphemeralScripts;

const RETRY_MAX_MS = 2000;
const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), RETRY_MAX_MS);

/** Where Redis is looked for, for messages (no password). */
export function describeRedis(options: Pick<RedisEphemeralOptions, 'url' | 'sentinels' | 'name' | 'cluster'>): string {
  if (options.cluster?.length) return `Redis Cluster ${options.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (options.sentinels?.length) return `Redis master "${options.name ?? 'mymaster'}" via Sentinel ${options.sentinels.map((n) => `${n.host}:${n.port}`).join(',')}`;
  try {
    const u = new URL(options.url);
    u.password = '';
    u.username = '';
    return `Redis at ${u.toString()}`;
  } catch {
    return 'Redis (unparsable URL)';
  }
}

function createClient(options: RedisEphemeralOptions): Client {
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResubscribe: false, // RedisEphemeral resubscribes itself (#resubscribe)
    retryStrategy,
  };
  let client: Redis | Cluster;
  if (options.cluster?.length) {
    const u = new URL(options.url);
    const redisOptions: RedisOptions = {
      ...common,
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
      tls: u.protocol === 'rediss:' ? {} : undefined,
    };
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      clusterRetryStrategy: retryStrategy,
      redisOptions,
    };
    client = new Cluster(options.cluster as ClusterNode[], clusterOptions);
  } else if (options.sentinels?.length) {
    client = new Redis(options.url, { ...common, sentinels: options.sentinels, name: options.name ?? 'mymaster' });
  } else {
    client = new Redis(options.url, common);
  }
  for (const [name, [numberOfKeys, lua]] of Object.entries(EPHEMERAL_SCRIPTS)) {
    client.defineCommand(name, numberOfKeys === null ? { lua } : { numberOfKeys, lua });
  }
  return client as Client;
}

/** ttl in whole ms for Redis (PX takes integers); <= 0 or not finite: no expiry. */
function ttl(ms: number): number {
  return ms > 0 && Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : 0;
}

export class RedisEphemeral implements EphemeralPort {
  readonly #client: Client;
  readonly #subscriber: Redis | Cluster;
  readonly #prefix: string;
  readonly #where: string;
  readonly #warn: (message: string) => void;
  /** Channel (without prefix) → local listeners. */
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  #closed = false;
  /** Whether the last state reported by #warn was "lost". */
  #lost = false;
  /** Connected once (before that, a failure is connect()'s to report, not #warn's). */
  #started = false;
  #lastError: string | null = null;

  constructor(options: RedisEphemeralOptions) {
    const prefix = options.keyPrefix ?? 'wd:';
    // Redis Cluster: one hash tag for every key, so a script's keys are always in one slot (see the file comment)
    this.#prefix = options.cluster?.length && !/\{[^}]+\}/.test(prefix) ? `{${prefix.replace(/:$/, '') || 'wd'}}:` : prefix;
    this.#where = describeRedis(options);
    this.#warn = options.warn ?? (() => {});
    this.#client = createClient(options);
    // the subscriber may queue its (un)subscriptions while offline: they are few, and replayed on reconnection
    const client: Redis | Cluster = this.#client;
    this.#subscriber = client instanceof Cluster ? client.duplicate([], { enableOfflineQueue: true }) : client.duplicate({ enableOfflineQueue: true });
    for (const connection of [this.#client, this.#subscriber]) {
      // listened to, so ioredis does not print every failed reconnection attempt
      connection.on('error', (err: Error) => {
        this.#lastError = err.message;
        this.#connectionLost(err.message);
      });
    }
    this.#client.on('close', () => this.#connectionLost('connection closed'));
    this.#client.on('ready', () => this.#connectionBack());
    this.#subscriber.on('ready', () => this.#resubscribe());
    this.#subscriber.on('message', (channel: string, message: string) => this.#deliver(channel, message));
  }

  /** The prefix every key and channel gets (a hash tag in a Redis Cluster). */
  get keyPrefix(): string {
    return this.#prefix;
  }

  /** Connects both connections; fails (and gives up reconnecting) when Redis cannot be reached. */
  async connect(): Promise<void> {
    try {
      await Promise.all([this.#client.connect(), this.#subscriber.connect()]);
      await this.#client.ping();
      this.#started = true;
    } catch (err) {
      this.#closed = true;
      this.#client.disconnect();
      this.#subscriber.disconnect();
      throw new StorageError('UNAVAILABLE', `${this.#where} is unreachable: ${this.#lastError ?? (err as Error)?.message ?? String(err)}`);
    }
  }

  #connectionLost(reason: string): void {
    if (!this.#started || this.#closed || this.#lost || this.#client.status === 'ready') return;
    this.#lost = true;
    this.#warn(`${this.#where}: connection lost (${reason}); ephemeral operations fail until it is back`);
  }

  #connectionBack(): void {
    if (!this.#lost || this.#closed) return;
    this.#lost = false;
    this.#warn(`${this.#where}: connection back`);
  }

  #key(key: string): string {
    return this.#prefix + key;
  }

  async #run<T>(op: (client: Client) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageError('UNAVAILABLE', `${this.#where}: the ephemeral store is closed`);
    try {
      return await op(this.#client);
    } catch (err) {
      if (err instanceof StorageError) throw err;
      const status = this.#client.status;
      const reason = status === 'ready' ? ((err as Error)?.message ?? String(err)) : `not connected (${status})`;
      throw new StorageError('UNAVAILABLE', `${this.#where}: ${reason}`);
    }
  }

  incr(key: string, by: number, ttlMs: number): Promise<number> {
    return this.#run((c) => c.wdIncr(this.#key(key), by, ttl(ttlMs)));
  }

  get(key: string): Promise<number> {
    return this.#run(async (c) => {
      const value = Number(await c.get(this.#key(key)));
      return Number.isFinite(value) ? value : 0;
    });
  }

  raise(key: string, to: number, ttlMs: number): Promise<number> {
    return this.#run((c) => c.wdRaise(this.#key(key), to, ttl(ttlMs)));
  }

  reserve(counters: ReadonlyArray<{ readonly key: string; readonly limit: number }>, ttlMs: number): Promise<number> {
    if (counters.length === 0) return Promise.resolve(-1);
    const keys = counters.map((c) => this.#key(c.key));
    return this.#run((c) => c.wdReserve(keys.length, ...keys, ttl(ttlMs), ...counters.map((x) => x.limit)));
  }

  release(key: string, by: number): Promise<number> {
    return this.#run((c) => c.wdRelease(this.#key(key), by));
  }

  async del(key: string): Promise<void> {
    await this.#run((c) => c.del(this.#key(key)));
  }

  setIfAbsent(key: string, ttlMs: number): Promise<boolean> {
    return this.#set(key, '1', ttlMs).then((ok) => ok);
  }

  async lock(key: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    return (await this.#set(key, token, ttlMs)) ? token : null;
  }

  /** SET NX (PX ttl): true when the key was absent. */
  #set(key: string, value: string, ttlMs: number): Promise<boolean> {
    const px = ttl(ttlMs);
    return this.#run(async (c) => (px > 0 ? await c.set(this.#key(key), value, 'PX', px, 'NX') : await c.set(this.#key(key), value, 'NX')) === 'OK');
  }

  async unlock(key: string, token: string): Promise<boolean> {
    return (await this.#run((c) => c.wdUnlock(this.#key(key), token))) === 1;
  }

  async extend(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.#run((c) => c.wdExtend(this.#key(key), token, ttl(ttlMs)))) === 1;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#run((c) => c.publish(this.#key(channel), message));
  }

  subscribe(channel: string, listener: (message: string) => void): () => void {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      this.#subscriber.subscribe(this.#key(channel)).catch(() => {
        // offline: #resubscribe subscribes every channel with listeners when the connection is back
      });
    }
    // wrapped: the same function subscribed twice gets two independent subscriptions
    const wrapped = (m: string): void => listener(m);
    set.add(wrapped);
    return () => {
      const s = this.#channels.get(channel);
      if (!s || !s.delete(wrapped) || s.size > 0) return;
      this.#channels.delete(channel);
      if (this.#closed) return;
      this.#subscriber.unsubscribe(this.#key(channel)).catch(() => {
        // offline: the connection is subscribed to nothing after it comes back but what #resubscribe asks for
      });
    };
  }

  #resubscribe(): void {
    if (this.#closed || this.#channels.size === 0) return;
    this.#subscriber.subscribe(...[...this.#channels.keys()].map((c) => this.#key(c))).catch(() => {
      // lost again: the next 'ready' tries again
    });
  }

  #deliver(prefixed: string, message: string): void {
    if (!prefixed.startsWith(this.#prefix)) return;
    const listeners = this.#channels.get(prefixed.slice(this.#prefix.length));
    if (!listeners) return;
    for (const listener of [...listeners]) {
      if (!listeners.has(listener)) continue; // unsubscribed by an earlier listener
      try {
        listener(message);
      } catch {
        // a failing listener must not break delivery to the others
      }
    }
  }

  /** Reachability (for /health). */
  async ping(): Promise<void> {
    await this.#run((c) => c.ping());
  }

  /** Closes both connections (pending commands are answered first when Redis is reachable). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#channels.clear();
    await Promise.all(
      [this.#client, this.#subscriber].map(async (connection) => {
        try {
          if (connection.status === 'ready') await connection.quit();
          else connection.disconnect();
        } catch {
          connection.disconnect();
        }
      }),
    );
  }
}
