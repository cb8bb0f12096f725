/**
 * The MongoDB backend (README.md here): one MongoClient per process (each worker of a multi-process server opens its
 * own), the collections and indexes created at open (collections.ts, idempotent), the ports built on them, and the
 * ephemeral store it is given (Redis with `storage.ephemeral: 'redis'`) or an in-process one.
 *
 * MongoDB unreachable at open: a StorageError naming MongoDB and where it was looked for (the password hidden), which
 * the CLI prints before it exits non-zero. Unreachable later: every port answers StorageError('UNAVAILABLE')
 * (errors.ts), and the driver reconnects by itself.
 */
import { MongoClient, MongoParseError } from 'mongodb';
import type { Db, MongoClientOptions, ReadPreferenceMode } from 'mongodb';
import { ConfigError } from '../config.ts';
import { MemoryEphemeral } from '../ephemeral/memory.ts';
import { StorageError } from '../ports.ts';
import type { EphemeralPort, StoragePorts } from '../ports.ts';
import { MongoBlobs } from './blobs.ts';
import { MongoChangeLog } from './changes.ts';
import { collections, ensureIndexes } from './collections.ts';
import type { MongoCollections } from './collections.ts';
import { MongoDocuments } from './documents.ts';
import { mongoError, mongoPort } from './errors.ts';
import { MongoMailboxes } from './mailboxes.ts';
import { MongoMessages } from './messages.ts';
import { MongoRestore } from './restore.ts';
import { MongoSearch } from './search.ts';
import { KeyedSerial } from './serial.ts';
import { MongoUsers } from './users.ts';

/** The database used when neither `database` nor the URL's path names one. */
export const DEFAULT_DATABASE = 'wildduck';

export interface MongoStorageOptions {
  /** Connection string (hosts, credentials, replicaSet, TLS options). */
  url: string;
  /** Database name; default: the URL's path, else 'wildduck'. */
  database?: string;
  /** Write concern `w` (default 'majority'). */
  writeConcern?: 'majority' | number;
  /** Write concern `j`: acknowledged once journaled (default true). */
  journal?: boolean;
  /** wtimeout (ms; default 10,000; 0 = none). */
  writeConcernTimeoutMs?: number;
  readPreference?: ReadPreferenceMode;
  connectTimeoutMs?: number;
  /** How long an operation (the first connection too) waits for a suitable server (default 5,000 ms). */
  serverSelectionTimeoutMs?: number;
  maxPoolSize?: number;
  /** How long a change-log reader waits for a missing entry (changes.ts; default DEFAULT_GAP_WAIT_MS). */
  gapWaitMs?: number;
  /** recalculateUsage removes search documents with no message older than this (users.ts). */
  orphanAgeMs?: number;
  /** Pub/sub, counters and locks; default: a new in-process MemoryEphemeral. */
  ephemeral?: EphemeralPort;
  now?: () => number;
  warn?: (message: string) => void;
}

export interface MongoStorage extends StoragePorts {
  readonly client: MongoClient;
  readonly db: Db;
  readonly collections: MongoCollections;
  readonly changes: MongoChangeLog;
}

/** Where MongoDB is looked for, for messages: the connection string without user and password. */
export function describeMongo(url: string): string {
  const hidden = url.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/i, '$1');
  return `MongoDB at ${hidden}`;
}

/** The database the URL's path names ('' when none). */
export function databaseOfUrl(url: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]*)/i.exec(url);
  return m ? decodeURIComponent(m[1]!) : '';
}

export function mongoClientOptions(options: MongoStorageOptions): MongoClientOptions {
  const wtimeout = options.writeConcernTimeoutMs ?? 10_000;
  return {
    appName: 'wildduck',
    writeConcern: { w: options.writeConcern ?? 'majority', journal: options.journal ?? true, ...(wtimeout > 0 ? { wtimeoutMS: wtimeout } : {}) },
    readPreference: options.readPreference ?? 'primary',
    connectTimeoutMS: options.connectTimeoutMs ?? 5000,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 5000,
    maxPoolSize: options.maxPoolSize ?? 100,
  };
}

/** Ports of this build that are stubs (notYet) until the merge with the messages half: empty once merged. */
export const PENDING_PORTS: readonly string[] = [];

export async function openMongoStorage(options: MongoStorageOptions): Promise<MongoStorage> {
  const where = describeMongo(options.url);
  let client: MongoClient;
  try {
    client = new MongoClient(options.url, mongoClientOptions(options));
  } catch (err) {
    if (err instanceof MongoParseError || (err as Error)?.name === 'MongoParseError') throw new ConfigError('storage.mongodb.url', `${where}: ${(err as Error).message}`);
    throw err;
  }
  let db: Db;
  let c: MongoCollections;
  try {
    await client.connect();
    db = client.db(options.database || databaseOfUrl(options.url) || DEFAULT_DATABASE);
    c = collections(db);
    await ensureIndexes(c);
  } catch (err) {
    await client.close().catch(() => {});
    const mapped = mongoError(err);
    if (mapped instanceof StorageError) throw new StorageError('UNAVAILABLE', `${where} is unreachable: ${(err as Error).message}`);
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }

  const now = options.now ?? Date.now;
  const ownEphemeral = options.ephemeral ? null : new MemoryEphemeral({ now });
  const ephemeral = options.ephemeral ?? ownEphemeral!;
  const serial = new KeyedSerial();
  const changes = new MongoChangeLog(c, ephemeral, { gapWaitMs: options.gapWaitMs, now });
  const mailboxes = new MongoMailboxes(c, changes, { now, serial });
  const blobs = new MongoBlobs(c, { now });
  const users = new MongoUsers(c, { now, serial, orphanAgeMs: options.orphanAgeMs });
  const documents = new MongoDocuments(c, { now, serial });
  const messages = new MongoMessages(c, changes, blobs);
  let closed = false;

  const storage: MongoStorage = {
    name: 'mongodb',
    client,
    db,
    collections: c,
    users: mongoPort(users),
    documents: mongoPort(documents),
    mailboxes: mongoPort(mailboxes),
    // their methods map driver errors themselves (mongoCall)
    messages,
    blobs,
    search: new MongoSearch(c),
    changes: mongoPort(changes),
    ephemeral,
    restore: mongoPort(new MongoRestore(c, { users, documents, messages, blobs })),
    async ping() {
      if (closed) throw new StorageError('UNAVAILABLE', 'storage is closed');
      try {
        await db.command({ ping: 1 });
      } catch (err) {
        throw mongoError(err);
      }
    },
    async warmUp() {
      const none = '000000000000000000000000'; // no ObjectId the driver makes is all zeros
      await mailboxes.getByPath(none, 'INBOX');
      await changes.latest(none);
      await changes.since(none, 0, { mailboxId: none, limit: 1 });
    },
    async close() {
      if (closed) return;
      closed = true;
      changes.close();
      try {
        await blobs.close().catch(() => {}); // this process's staged blobs no message took
        await client.close();
      } finally {
        ownEphemeral?.close();
      }
    },
  };
  return storage;
}
