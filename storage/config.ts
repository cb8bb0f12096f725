/**
 * The `storage` section of the server configuration: backend, SQLite, MongoDB, Redis, the ephemeral store and the
 * shared mailbox indexes. hooks/config.ts composes it into the one schema (defaults, descriptions and environment
 * variables work as for every other option); it lives here so that storage/open.ts reads its own settings without
 * importing hooks/ (floors point one way: protocols -> hooks -> storage). Also ConfigError, which any floor
 * throws for a bad value (storage: an unparseable MongoDB URL).
 */
import { z } from 'zod';

export const storageConfigSchema = z
  .object({
    backend: z.enum(['sqlite', 'mongodb']).default('sqlite').describe('Storage backend: embedded SQLite (one node) or MongoDB + Redis.'),
    sqlite: z
      .object({
        synchronous: z.enum(['full', 'normal']).default('full').describe('SQLite synchronous mode; "full" makes every acknowledged message survive power loss.'),
        fsyncMode: z
          .enum(['optimized', 'always'])
          .default('optimized')
          .describe('With synchronous "full": "optimized" lets changes that carry no new mail (flag changes, EXPUNGE, COPY, MOVE) be acknowledged once written to the write-ahead log, without an fsync of their own, as Dovecot does for its index (fsync_mode=optimized). A power cut may undo the last such changes, never reorder them and never lose mail: the next fsync (of any new message, or orderedSyncDelayMs later) makes every earlier change durable, and the file of an attachment an expunge released is deleted only after that. "always": every change waits for its fsync.'),
        orderedSyncDelayMs: z
          .number()
          .int()
          .min(0)
          .default(1000)
          .describe('With fsyncMode "optimized": how long a change acknowledged without an fsync waits for one when no new message brings it sooner (the window a power cut can undo).'),
        blobMemoryBytes: z
          .number()
          .int()
          .min(0)
          .default(64 * 1024 * 1024)
          .describe('Bytes of attachment data held in memory (all deliveries together) until its hash is known, so an attachment already stored is never compressed or written again; more streams to a staging file.'),
        busyTimeoutMs: z
          .number()
          .int()
          .nonnegative()
          .default(10_000)
          .describe('How long a write waits for the database lock held by another process (a worker, the CLI) before the command fails with a temporary error.'),
        walAutocheckpointPages: z
          .number()
          .int()
          .nonnegative()
          .default(1_000)
          .describe('Pages (4 KiB) the write-ahead log grows to before a commit copies it into the database file (SQLite wal_autocheckpoint; 0 = never). Larger: fewer, longer checkpoints and a page changed again and again copied once per checkpoint, but the WAL file stays on disk at up to this size (10,000 = 40 MB).'),
        mmapBytes: z
          .number()
          .int()
          .nonnegative()
          .default(256 * 1024 * 1024)
          .describe('Bytes of the database file each process reads through a memory map (SQLite mmap_size; 0 = off). A commit by one worker process empties the other workers\' page caches; through the map their next reads are memory accesses instead of read() calls and copies (about a quarter less CPU per IMAP command with two workers). Mapped pages are shared between processes and count as page cache, not as private memory.'),
        inflatedCacheBytes: z
          .number()
          .int()
          .nonnegative()
          .default(8 * 1024 * 1024)
          .describe('Bytes of recently read message bytes each process keeps inflated (the inline part of a message is stored deflated), so many sessions fetching the same messages inflate each once. 0 = inflate on every read.'),
        searchIndexBatch: z
          .number()
          .int()
          .positive()
          .default(64)
          .describe('Messages whose search text is written into the full-text indexes per transaction, after their acknowledgement (about 0.25 ms of CPU each, holding the event loop for the batch); as many expunged messages are removed from the indexes in the same transaction. Until then a search tests new messages by their stored text, and never answers an expunged one.'),
        maintenanceProcess: z
          .boolean()
          .default(true)
          .describe('With worker processes (server.workers > 1): one more process writes the search indexes and copies the write-ahead log into the database file (checkpoints) for all of them, polling every searchIndexDelayMs, so neither runs on an event loop that serves connections (it copies the WAL once half of walAutocheckpointPages is not yet in the database file; the worker whose commit fills the WAL then finds little left to copy). false: each worker does both after its own writes, as a single process does.'),
        maintenanceIndexBatch: z
          .number()
          .int()
          .positive()
          .default(16)
          .describe('With a maintenance process: messages indexed per transaction there (searchIndexBatch is the batch of a process that indexes its own writes). Each batch holds the database\'s write lock, so a worker committing a message meanwhile waits for it: 16 rows hold it about 4 ms, 64 about 20 ms, for about the same CPU per row. Between two batches the lock stays free at least as long as the batch held it.'),
        maintenanceQuietMs: z
          .number()
          .int()
          .nonnegative()
          .default(100)
          .describe('With a maintenance process: its index batches wait until no worker has committed for this long (ms), so a batch does not hold the write lock while a client waits for its OK (a worker committing meanwhile waits for the lock, and its fsync also writes the batch\'s pages); new messages are searched by their stored text until indexed. 0: batches run whenever work is found.'),
        maintenanceMaxDeferMs: z
          .number()
          .int()
          .nonnegative()
          .default(5_000)
          .describe('With a maintenance process: the longest its index batches wait for a quiet moment after finding work (ms); past it they run between the workers\' commits, so the rows searched by their stored text stay few under a steady stream of messages.'),
        searchIndexDelayMs: z
          .number()
          .int()
          .nonnegative()
          .default(500)
          .describe('How long after a message is stored (or expunged) its search text is indexed (or removed from the index), so the messages arriving meanwhile are indexed together: a batch of one message costs about 1.8 ms of CPU, of eight about 0.45 ms each. Until then a search tests the new messages by their stored text.'),
      })
      .strict()
      .prefault({}),
    mongodb: z
      .object({
        url: z
          .string()
          .default('mongodb://127.0.0.1:27017/wildduck')
          .describe('MongoDB connection string (replica set or mongos): hosts, user and password, authSource, replicaSet and TLS options go in it. The database is the one in its path (else storage.mongodb.database).'),
        database: z.string().default('').describe('Database name; empty: the one in the URL\'s path, else "wildduck".'),
        writeConcern: z
          // a number of members may come from the environment as digits
          .preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v), z.union([z.literal('majority'), z.number().int().min(1)]))
          .default('majority')
          .describe('Write concern of every write: "majority" (a message is acknowledged to the client only once a majority of the replica set has it, so a failover cannot lose it) or a number of members.'),
        journal: z.boolean().default(true).describe('Writes are acknowledged only once in the on-disk journal (write concern j).'),
        writeConcernTimeoutMs: z
          .number()
          .int()
          .nonnegative()
          .default(10_000)
          .describe('How long a write waits for its write concern (wtimeout; 0 = forever). Past it the command fails with a temporary error instead of hanging while the replica set has no majority.'),
        readPreference: z
          .enum(['primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest'])
          .default('primary')
          .describe('Which members serve reads. "primary" (default) reads what was just written; a secondary may show a session data older than its own writes.'),
        connectTimeoutMs: z.number().int().positive().default(5000).describe('How long opening a connection to a MongoDB server may take.'),
        serverSelectionTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(5000)
          .describe('How long an operation waits for a suitable server (a primary for writes). At start, an unreachable MongoDB stops the server with an error naming it after this long; while running, a command waits this long before it fails with a temporary error.'),
        maxPoolSize: z.number().int().positive().default(100).describe('Connections each server process keeps open to each MongoDB server at most.'),
        orphanAgeMs: z
          .number()
          .int()
          .positive()
          .default(10 * 60 * 1000)
          .describe('`quota recalc` removes what a crashed write left (search documents and content of a message never written, login keys of an address never written) only when older than this, so it never takes the pieces of a write still under way.'),
        gapWaitMs: z
          .number()
          .int()
          .positive()
          .default(10_000)
          .describe('How long a reader of the change log waits for a missing entry that a writer on another instance may still write, before skipping it as a write that crashed (storage/mongodb/changes.ts). Longer than any write takes; a crashed write delays that user\'s IDLE and sync updates this long.'),
      })
      .strict()
      .prefault({}),
    ephemeral: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe(
        'Where counters, rate limits (failed logins, transfer limits, forwards per day), locks (the POP3 maildrop), \\Recent marks, per-user IMAP connection counts and change notifications live. "memory": in the server (the primary process shares them with its workers); one server instance only. "redis": in Redis (storage.redis), shared by every process of every server instance that uses the same Redis and key prefix; every process talks to Redis itself. The MongoDB backend needs "redis" for more than one server instance; with "memory" it runs as one instance (and says so at start).',
      ),
    redis: z
      .object({
        url: z
          .string()
          .default('redis://127.0.0.1:6379/3')
          .describe('Redis URL (redis:// or rediss:// for TLS; user, password and database number in the URL) for pub/sub, counters, locks and rate limits. With sentinels, the host and port are ignored; with cluster, only the user, password and TLS are used.'),
        keyPrefix: z
          .string()
          .max(100)
          .default('wd:')
          .describe('Put before every key and pub/sub channel, so several deployments can share one Redis (give each its own). With cluster, it becomes a hash tag ("wd:" → "{wd}:") unless it holds one: every key lands in one hash slot, as the atomic multi-key operations (a failed-login reservation counts a user and an address at once) require.'),
        connectTimeoutMs: z.number().int().positive().default(5000).describe('How long connecting to Redis may take (at start: then the server stops with an error naming Redis).'),
        commandTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(2000)
          .describe('A Redis command with no answer in this time fails, and the client gets a temporary failure (IMAP NO [UNAVAILABLE], LMTP 451 4.3.0, POP3 -ERR [SYS/TEMP], HTTP 503). While Redis is unreachable commands fail at once (no offline queue); the connection comes back by itself.'),
        sentinels: z
          .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict())
          .default([])
          .describe('Redis Sentinel: the sentinels to ask for the current master (passed to ioredis). Empty: no Sentinel.'),
        name: z.string().min(1).default('mymaster').describe('Redis Sentinel: the name of the master group the sentinels watch.'),
        cluster: z
          .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict())
          .default([])
          .describe('Redis Cluster: nodes to discover the cluster from (passed to ioredis Cluster). Empty: no Cluster.'),
      })
      .strict()
      .prefault({}),
    mailboxIndex: z
      .object({
        lingerSeconds: z
          .number()
          .nonnegative()
          .default(60)
          .describe('How long the shared index of a mailbox (UIDs, flags, modseqs, kept once per process for every session that has it selected) stays in memory after its last session left, so a re-SELECT finds it warm; 0 = drop it with the last session.'),
        maxLingering: z.number().int().nonnegative().default(200).describe('Most shared mailbox indexes kept in memory with no session holding them (oldest dropped first).'),
        snapshotMinMessages: z
          .number()
          .int()
          .nonnegative()
          .default(5000)
          .describe('A shared mailbox index of at least this many messages is saved as one compact snapshot when it leaves memory (and at shutdown), so the next SELECT after a restart or eviction reads it and catches up on the change log instead of reading every message; 0 = never.'),
        sortCacheMessages: z
          .number()
          .int()
          .nonnegative()
          .default(200_000)
          .describe('Most messages whose SORT / THREAD data (subject, dates, first addresses, message ids; never the body) is kept in memory once per process for every session, so a SORT or THREAD reads storage only for messages not held yet; over it, whole mailboxes are dropped, least recently used first; 0 = keep none.'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type StorageConfig = z.output<typeof storageConfigSchema>;

/** What opening storage reads of the server configuration (hooks/config.ts `Config` satisfies it). */
export interface StorageSettings {
  readonly dataDir: string;
  readonly storage: StorageConfig;
}

/** A bad configuration value, named by its path (`storage.mongodb.url`); the CLI prints it and exits. */
export class ConfigError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(path ? `config ${path}: ${message}` : `config: ${message}`);
    this.name = 'ConfigError';
    this.path = path;
  }
}
