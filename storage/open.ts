/**
 * Opens the configured storage backend. Each backend is loaded with a dynamic import so an embedded install
 * never loads the MongoDB or Redis drivers; so is the Redis ephemeral store (`storage.ephemeral: 'redis'`).
 */
import { resolve } from 'node:path';
import type { StorageSettings } from './config.ts';
import type { EphemeralPort, StoragePorts } from './ports.ts';
import type { RedisEphemeralOptions } from './ephemeral/redis.ts';

/** What a process of a multi-process server (protocols/net/cluster.ts) sets differently. */
export interface OpenStorageOptions {
  /** Counters, locks and pub/sub shared with the other processes, instead of the backend's own. */
  ephemeral?: EphemeralPort;
  /** How often this process looks for changes committed by other processes (ms; 0 = never, another process does). */
  changePollMs?: number;
  /**
   * Who writes the search indexes and checkpoints the WAL (embedded backend, storage/sqlite/maintenance.ts): this
   * process after its own writes (`self`, default), another process (`others`), or this one for all (`here`).
   */
  backgroundWork?: 'self' | 'others' | 'here';
}

/** The options of RedisEphemeral from the config (storage.redis). */
export function redisOptions(config: StorageSettings, warn?: (message: string) => void): RedisEphemeralOptions {
  const r = config.storage.redis;
  return {
    url: r.url,
    keyPrefix: r.keyPrefix,
    connectTimeoutMs: r.connectTimeoutMs,
    commandTimeoutMs: r.commandTimeoutMs,
    sentinels: r.sentinels,
    name: r.name,
    cluster: r.cluster,
    warn,
  };
}

/**
 * The ephemeral store `storage.ephemeral` names when this process owns it: null for 'memory' (the backend makes its
 * own, or the caller hands one in), a connected RedisEphemeral for 'redis'. Fails, naming Redis and where it was
 * looked for, when Redis cannot be reached.
 */
export async function openEphemeral(config: StorageSettings, warn?: (message: string) => void): Promise<(EphemeralPort & { ping(): Promise<void>; close(): Promise<void> }) | null> {
  if (config.storage.ephemeral !== 'redis') return null;
  const { RedisEphemeral } = await import('./ephemeral/redis.ts');
  const redis = new RedisEphemeral(redisOptions(config, warn));
  await redis.connect();
  return redis;
}

export async function openStorage(config: StorageSettings, warn?: (message: string) => void, options: OpenStorageOptions = {}): Promise<StoragePorts> {
  // with 'redis', every process talks to Redis itself (a worker too: it gets no ephemeral store from the primary)
  const own = options.ephemeral ? null : await openEphemeral(config, warn);
  try {
    const storage = await openBackend(config, warn, own ? { ...options, ephemeral: own } : options);
    if (own) ownEphemeral(storage, own);
    return storage;
  } catch (err) {
    await own?.close();
    throw err;
  }
}

/** The storage closes (and its health check pings) the ephemeral store it was opened with. */
function ownEphemeral(storage: StoragePorts, ephemeral: { ping(): Promise<void>; close(): Promise<void> }): void {
  const { ping, close } = storage;
  storage.ping = async () => {
    await ping.call(storage);
    await ephemeral.ping();
  };
  storage.close = async () => {
    try {
      await close.call(storage);
    } finally {
      await ephemeral.close();
    }
  };
}

async function openBackend(config: StorageSettings, warn: ((message: string) => void) | undefined, options: OpenStorageOptions): Promise<StoragePorts> {
  switch (config.storage.backend) {
    case 'sqlite': {
      const { openSqliteStorage } = await import('./sqlite/index.ts');
      return openSqliteStorage({
        dataDir: resolve(config.dataDir),
        synchronous: config.storage.sqlite.synchronous,
        fsyncMode: config.storage.sqlite.fsyncMode,
        orderedSyncDelayMs: config.storage.sqlite.orderedSyncDelayMs,
        blobMemoryBytes: config.storage.sqlite.blobMemoryBytes,
        busyTimeoutMs: config.storage.sqlite.busyTimeoutMs,
        walAutocheckpointPages: config.storage.sqlite.walAutocheckpointPages,
        mmapBytes: config.storage.sqlite.mmapBytes,
        inflatedCacheBytes: config.storage.sqlite.inflatedCacheBytes,
        searchIndexer: { batchRows: config.storage.sqlite.searchIndexBatch, delayMs: config.storage.sqlite.searchIndexDelayMs },
        maintenanceIndexBatch: config.storage.sqlite.maintenanceIndexBatch,
        maintenanceQuietMs: config.storage.sqlite.maintenanceQuietMs,
        maintenanceMaxDeferMs: config.storage.sqlite.maintenanceMaxDeferMs,
        warn,
        ...options,
      });
    }
    case 'mongodb': {
      // changePollMs and backgroundWork are the embedded backend's: every MongoDB client sees every commit, and its
      // writers do their own follow-up work
      const m = config.storage.mongodb;
      if (config.storage.ephemeral !== 'redis' && options.changePollMs !== 0) warnOnce(warn, 'storage.ephemeral is "memory": this MongoDB backend serves one server instance (its counters, locks and change notifications are not shared); use "redis" to run more than one');
      const { openMongoStorage } = await import('./mongodb/index.ts');
      return openMongoStorage({
        url: m.url,
        database: m.database,
        writeConcern: m.writeConcern,
        journal: m.journal,
        writeConcernTimeoutMs: m.writeConcernTimeoutMs,
        readPreference: m.readPreference,
        connectTimeoutMs: m.connectTimeoutMs,
        serverSelectionTimeoutMs: m.serverSelectionTimeoutMs,
        maxPoolSize: m.maxPoolSize,
        gapWaitMs: m.gapWaitMs,
        orphanAgeMs: m.orphanAgeMs,
        ephemeral: options.ephemeral,
        warn,
      });
    }
  }
}

let warned = false;

/** Once per process (a worker of a multi-process server opens its storage with changePollMs 0 and says nothing). */
function warnOnce(warn: ((message: string) => void) | undefined, message: string): void {
  if (warned) return;
  warned = true;
  (warn ?? ((m: string) => console.warn(`wildduck storage: ${m}`)))(message);
}
