/**
 * The embedded storage backend: one SQLite file `<dataDir>/wildduck.sqlite` (WAL, foreign keys, busy timeout,
 * `synchronous=FULL` by default so a message is acknowledged only once durable), blobs as files under
 * `<dataDir>/blobs/`, and the in-process ephemeral port for counters, locks and pub/sub.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryEphemeral } from '../ephemeral/memory.ts';
import { StorageError } from '../ports.ts';
import type { EphemeralPort, StoragePorts } from '../ports.ts';
import { SqliteBlobs } from './blobs.ts';
import { ChangeLog, SqliteChanges } from './changes.ts';
import { openDb } from './driver.ts';
import type { Db } from './driver.ts';
import { SqliteMailboxes } from './mailboxes.ts';
import { IndexSnapshotFiles } from './index-snapshots.ts';
import { toId } from './common.ts';
import { InflatedCache } from './inflated-cache.ts';
import { SqliteMessages } from './messages.ts';
import { SqliteSearch } from './search.ts';
import { SearchIndexer } from './search-indexer.ts';
import { SqliteMaintenance } from './maintenance.ts';
import type { SearchIndexerOptions } from './search-indexer.ts';
import type { SearchPlanOptions } from './search.ts';
import { GroupCommit } from './group-commit.ts';
import { SqliteDocuments } from './documents.ts';
import { migrate } from './schema.ts';
import { SqliteUsers } from './users.ts';
import { SqliteRestore } from './restore.ts';

/** With `backgroundWork: 'here'`: how often the WAL's backlog is read for a checkpoint (maintenance.ts). */
const CHECKPOINT_CHECK_MS = 50;
/** Default SqliteStorageOptions.inflatedCacheBytes. */
const DEFAULT_INFLATED_CACHE_BYTES = 8 * 1024 * 1024;
/** Default SQLite mmap_size (SqliteStorageOptions.mmapBytes). */
export const DEFAULT_MMAP_BYTES = 256 * 1024 * 1024;

export interface SqliteStorageOptions {
  /** Directory holding wildduck.sqlite, blobs/, tmp/ and trash/. Created if missing. */
  dataDir: string;
  /** `full` (default): every commit is durable before it is acknowledged. `normal`: faster, may lose the last commits on power loss. */
  synchronous?: 'full' | 'normal';
  /**
   * With `synchronous: 'full'`: `optimized` (default) lets writes that carry no new message bytes (flag changes,
   * expunges, copies, moves) commit without an fsync of their own, made durable by the next commit that has one
   * (WAL order) or `orderedSyncDelayMs` later; `always` fsyncs before every acknowledgement (group-commit.ts).
   */
  fsyncMode?: 'optimized' | 'always';
  /** How long an ordered commit that no durable one follows waits for its fsync (default 1000 ms). */
  orderedSyncDelayMs?: number;
  /** How the WAL is fsynced (tests: a fake that records or delays). */
  fsyncWal?: (dbPath: string) => Promise<void>;
  /** How long a write waits for another process holding the database lock (default 10 s). */
  busyTimeoutMs?: number;
  /** SQLite wal_autocheckpoint: WAL pages before a commit checkpoints (default 1,000, SQLite's own). */
  walAutocheckpointPages?: number;
  /**
   * SQLite mmap_size: bytes of the database file read through a memory map instead of read() into the page cache
   * (default 256 MiB; 0 = off). With several worker processes each commit by one invalidates the others' page
   * caches; through the map, re-reading those pages is a memory access, not a system call and a copy.
   */
  mmapBytes?: number;
  /** Bytes of inflated message bytes kept for FETCHes of the same messages (inflated-cache.ts; default 8 MiB; 0 = none). */
  inflatedCacheBytes?: number;
  /** Staging files older than this that this process does not know are removed at open and by collect() (default 1 h; 0 = all). */
  stagingMaxAgeMs?: number;
  /** Bytes of blob data held in memory until the blob's hash is known (default 64 MiB; see SqliteBlobs). */
  blobMemoryBytes?: number;
  /**
   * While anyone subscribes to changes, look this often (ms) for changes committed by other processes on the same
   * data directory (a CLI beside the server) and announce them. Default 1000; 0 disables.
   */
  changePollMs?: number;
  /** Pub/sub, counters and locks; default: a new in-process MemoryEphemeral. */
  ephemeral?: EphemeralPort;
  /** Force a SQLite binding (tests). */
  driver?: 'node:sqlite' | 'better-sqlite3';
  /** Clock (tests). */
  now?: () => number;
  /** How the search port picks the index or a scan of the mailbox per term (defaults suit most servers). */
  search?: SearchPlanOptions;
  /** How the search indexes are written after the acknowledgement (search-indexer.ts). */
  searchIndexer?: Omit<SearchIndexerOptions, 'durable'>;
  /**
   * Who writes the search indexes and checkpoints the WAL (maintenance.ts). `self` (default): this process, after its
   * own writes (index batches on its event loop, SQLite's autocheckpoint in its commits). `others`: another process
   * of the same server does (its writes schedule no index batch; its autocheckpoint finds most of the WAL copied
   * already). `here`: this process does it for every process on the database, polling for work.
   */
  backgroundWork?: 'self' | 'others' | 'here';
  /** With `backgroundWork: 'here'`: rows per index batch (default 16; maintenance.ts). */
  maintenanceIndexBatch?: number;
  /** With `backgroundWork: 'here'`: index batches wait until no other process committed for this long (ms; default 100, 0: never wait). */
  maintenanceQuietMs?: number;
  /** ... at most this long after the work was found (ms; default 5000). */
  maintenanceMaxDeferMs?: number;
  /** Told what a schema migration reports (login names that already collide); default stderr. */
  warn?: (message: string) => void;
}

export const DATABASE_FILE = 'wildduck.sqlite';

export interface SqliteStorage extends StoragePorts {
  readonly db: Db;
  readonly dataDir: string;
  /** The blob store, with `settle()` to wait for after-commit unlinks (tests, shutdown). */
  readonly blobs: SqliteBlobs;
  /** Writes the search indexes after the acknowledgement; `flush()` indexes every pending row (tests, benchmarks). */
  readonly searchIndexer: SearchIndexer;
  /** With `backgroundWork: 'here'`: the polling index and checkpoint work (maintenance.ts); else null. */
  readonly maintenance: SqliteMaintenance | null;
}

export async function openSqliteStorage(options: SqliteStorageOptions): Promise<SqliteStorage> {
  const dataDir = options.dataDir;
  await mkdir(dataDir, { recursive: true });
  const now = options.now ?? Date.now;
  const synchronous = options.synchronous ?? 'full';
  const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 10_000));
  const background = options.backgroundWork ?? 'self';
  const checkpointPages = Math.max(0, Math.floor(options.walAutocheckpointPages ?? 1_000));
  const db = await openDb(join(dataDir, DATABASE_FILE), { driver: options.driver });
  let blobs: SqliteBlobs;
  try {
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.exec('PRAGMA foreign_keys = ON');
    db.exec(`PRAGMA mmap_size = ${Math.max(0, Math.floor(options.mmapBytes ?? DEFAULT_MMAP_BYTES))}`);
    // 'here' checkpoints on its own timer (maintenance.ts)
    const autocheckpoint = background === 'here' ? 0 : checkpointPages;
    db.exec(`PRAGMA wal_autocheckpoint = ${autocheckpoint}`);
    migrate(db, options.warn ?? ((message) => console.warn(`wildduck storage: ${message}`)));
    blobs = new SqliteBlobs(db, {
      dataDir,
      durable: synchronous === 'full',
      stagingMaxAgeMs: options.stagingMaxAgeMs ?? 60 * 60 * 1000,
      memoryBytes: options.blobMemoryBytes ?? 64 * 1024 * 1024,
      now,
    });
    await blobs.init();
  } catch (err) {
    db.close();
    throw err;
  }

  const ownEphemeral = options.ephemeral ? null : new MemoryEphemeral({ now });
  const ephemeral = options.ephemeral ?? ownEphemeral!;
  const log = new ChangeLog(db, ephemeral);
  const group = new GroupCommit(db, {
    durable: synchronous === 'full',
    ordered: (options.fsyncMode ?? 'optimized') === 'optimized',
    syncDelayMs: options.orderedSyncDelayMs,
    fsync: options.fsyncWal,
    lockWaitMs: busyTimeoutMs,
  });
  const inflatedBytes = options.inflatedCacheBytes ?? DEFAULT_INFLATED_CACHE_BYTES;
  const inflated = inflatedBytes > 0 ? new InflatedCache(inflatedBytes) : null;
  const indexer = new SearchIndexer(db, { ...options.searchIndexer, durable: synchronous === 'full', scheduled: background === 'self' });
  indexer.schedule(); // rows a crash (or another process) left pending
  const maintenance =
    background === 'here'
      ? new SqliteMaintenance(db, indexer, {
          checkpointPages: Math.ceil(checkpointPages / 2),
          intervalMs: Math.max(10, indexer.delayMs),
          batchRows: options.maintenanceIndexBatch ?? 16,
          checkpointCheckMs: CHECKPOINT_CHECK_MS,
          quietMs: options.maintenanceQuietMs ?? 100,
          maxDeferMs: options.maintenanceMaxDeferMs ?? 5_000,
        })
      : null;
  maintenance?.start();
  const changes = new SqliteChanges(db, ephemeral, log, options.changePollMs ?? 1000);
  let closed = false;
  const mailboxes = new SqliteMailboxes(db, blobs, log, now);
  const messages = new SqliteMessages(db, blobs, log, now, group, indexer, new IndexSnapshotFiles(db, join(dataDir, 'index')), inflated);
  const users = new SqliteUsers(db, blobs, now);
  const documents = new SqliteDocuments(db, now);

  return {
    name: 'sqlite',
    db,
    dataDir,
    users,
    documents,
    restore: new SqliteRestore(db, { users, documents, messages, blobs }),
    mailboxes,
    messages,
    search: new SqliteSearch(db, options.search, indexer),
    blobs,
    searchIndexer: indexer,
    maintenance,
    changes,
    ephemeral,
    async ping() {
      if (closed) throw new StorageError('UNAVAILABLE', 'storage is closed');
      db.get('SELECT 1 AS ok');
    },
    async warmUp() {
      const none = toId(Number.MAX_SAFE_INTEGER); // row ids are never that high
      await mailboxes.getByPath(none, 'INBOX');
      await messages.indexSnapshot(none);
      await changes.latest(none);
      await changes.since(none, 0, { mailboxId: none, limit: 1 });
    },
    async close() {
      if (closed) return;
      closed = true;
      await group.settle();
      maintenance?.close();
      indexer.close();
      try {
        indexer.flush();
      } catch (err) {
        // left pending: searched by their text, indexed by the next process that opens the database
        (options.warn ?? console.warn)(`wildduck storage: search rows left to index at the next start (${String(err)})`);
      }
      changes.close();
      await blobs.close();
      ownEphemeral?.close();
      db.close();
    },
  };
}
