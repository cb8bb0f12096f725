/**
 * Opens the configured storage backend. Each backend is loaded with a dynamic import so an embedded install
 * never loads the MongoDB or Redis drivers.
 */
import { resolve } from 'node:path';
import type { Config } from '../hooks/config.ts';
import { ConfigError } from '../hooks/config.ts';
import type { EphemeralPort, StoragePorts } from './ports.ts';

/** What a process of a multi-process server (protocols/cluster.ts) sets differently. */
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

export async function openStorage(config: Config, warn?: (message: string) => void, options: OpenStorageOptions = {}): Promise<StoragePorts> {
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
    case 'mongodb':
      throw new ConfigError('storage.backend', 'the MongoDB + Redis backend is not part of this build yet; use "sqlite"');
  }
}
