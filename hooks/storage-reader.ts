/**
 * The read side of StoragePorts that plugins get. Writes to mailboxes and messages go through the pipeline
 * (the storage plugin commits them); plugins may read anything (per-user documents too) and use the ephemeral port (counters, locks,
 * pub/sub) for their own state.
 */
import type { BlobsPort, ChangesPort, EphemeralPort, MailboxesPort, MessagesPort, SearchPort, StoragePorts, UserDocumentsPort, UsersPort } from '../storage/ports.ts';

export interface StorageReader {
  readonly name: string;
  readonly users: Pick<UsersPort, 'get' | 'getByUsername' | 'getByLoginName' | 'list' | 'listAddresses' | 'resolveAddress'>;
  readonly mailboxes: Pick<MailboxesPort, 'get' | 'getByPath' | 'getBySpecialUse' | 'list' | 'counters'>;
  readonly messages: Pick<MessagesPort, 'get' | 'getById' | 'parts' | 'sortData' | 'index' | 'content' | 'searchText' | 'findByMessageId'>;
  /** Text search answered by the backend's indexes. */
  readonly search: SearchPort;
  readonly blobs: Pick<BlobsPort, 'read' | 'stats'>;
  readonly changes: Pick<ChangesPort, 'since' | 'latest' | 'subscribe' | 'vanished'>;
  readonly ephemeral: EphemeralPort;
  /** Per-user documents (filters, autoreply, delivery settings), read only. */
  readonly documents: Pick<UserDocumentsPort, 'list' | 'get' | 'findByKey'>;
  ping(): Promise<void>;
}

function pick<T extends object, K extends keyof T>(port: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) {
    const value = port[key];
    out[key] = (typeof value === 'function' ? value.bind(port) : value) as T[K];
  }
  return Object.freeze(out);
}

/**
 * A frozen object exposing only the read methods of `storage` (bound, so backends keep their `this`). `sortData`
 * replaces messages.sortData (the app's shared cache of it, storage/mailbox-index/sort-cache.ts).
 */
export function storageReader(storage: StoragePorts, options: { sortData?: MessagesPort['sortData'] } = {}): StorageReader {
  const messages = pick(storage.messages, ['get', 'getById', 'parts', 'sortData', 'index', 'page', 'content', 'searchText', 'findByMessageId']);
  return Object.freeze({
    name: storage.name,
    users: pick(storage.users, ['get', 'getByUsername', 'getByLoginName', 'list', 'listAddresses', 'resolveAddress']),
    mailboxes: pick(storage.mailboxes, ['get', 'getByPath', 'getBySpecialUse', 'list', 'counters']),
    messages: options.sortData ? Object.freeze({ ...messages, sortData: options.sortData }) : messages,
    search: pick(storage.search, ['match', 'matchSent', 'matchMeta']),
    blobs: pick(storage.blobs, ['read', 'stats']),
    changes: pick(storage.changes, ['since', 'latest', 'subscribe', 'vanished']),
    ephemeral: pick(storage.ephemeral, ['incr', 'get', 'raise', 'reserve', 'release', 'del', 'setIfAbsent', 'lock', 'unlock', 'extend', 'publish', 'subscribe']),
    documents: pick(storage.documents, ['list', 'get', 'findByKey']),
    ping: () => storage.ping(),
  });
}
