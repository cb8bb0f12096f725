/**
 * Opens the configured storage backend. Each backend is loaded with a dynamic import so an embedded install
 * never loads the MongoDB or Redis drivers.
 */
import { resolve } from 'node:path';
import type { Config } from '../hooks/config.ts';
import { ConfigError } from '../hooks/config.ts';
import type { StoragePorts } from './ports.ts';

export async function openStorage(config: Config, warn?: (message: string) => void): Promise<StoragePorts> {
  switch (config.storage.backend) {
    case 'sqlite': {
      const { openSqliteStorage } = await import('./sqlite/index.ts');
      return openSqliteStorage({
        dataDir: resolve(config.dataDir),
        synchronous: config.storage.sqlite.synchronous,
        blobMemoryBytes: config.storage.sqlite.blobMemoryBytes,
        warn,
      });
    }
    case 'mongodb':
      throw new ConfigError('storage.backend', 'the MongoDB + Redis backend is not part of this build yet; use "sqlite"');
  }
}
