/**
 * The MongoDB backend's collections, their document shapes and their indexes, declared in one place.
 * `ensureIndexes` creates them at start; `createIndexes` is idempotent, so every process may run it.
 *
 * Two rules shape the documents (storage/mongodb/README.md has the whole model):
 * - Binary data lives only in documents that are written once and never updated (`messageContent`,
 *   `blobPieces`): a message's flags change often, its bytes never, so an update never rewrites them.
 * - Every id is an ObjectId (`_id`), shown to the rest of the server as its 24-hex string (ids.ts).
 */
import type { Binary, Collection, Db, IndexDescription, ObjectId } from 'mongodb';
import type { Envelope, Flag, MimeNode, Segment, SpecialUse } from '../ports.ts';

export interface UserDoc {
  _id: ObjectId;
  username: string;
  name: string;
  passwordHash: string | null;
  quota: { storage: number | null; messages: number | null };
  storageUsed: number;
  messagesUsed: number;
  disabled: boolean;
  tags: string[];
  created: number;
  /** The last change-log sequence number handed out for this user (changes.ts reserve). */
  changeSeq: number;
}

/** A folded login name or username skeleton (storage/addresses.ts), unique across users. */
export interface LoginKeyDoc {
  _id: ObjectId;
  kind: 'name' | 'skeleton';
  key: string;
  user: ObjectId;
  refs: number;
}

export interface AddressDoc {
  _id: ObjectId;
  user: ObjectId;
  address: string;
  display: string;
  main: boolean;
  created: number;
}

/** A per-user document (UserDocumentsPort): `docId` is the port's id ('default' for singletons, else 24 hex). */
export interface DocumentDoc {
  _id: ObjectId;
  user: ObjectId;
  kind: string;
  docId: string;
  key: string | null;
  data: unknown;
  created: number;
  updated: number;
}

export interface MailboxDoc {
  _id: ObjectId;
  user: ObjectId;
  path: string;
  specialUse: SpecialUse | null;
  subscribed: boolean;
  uidValidity: number;
  uidNext: number;
  /** HIGHESTMODSEQ. */
  modseq: number;
  /** The highest change-log sequence number of a write ordered on this mailbox (changes.ts mailboxWrite). */
  lastChange: number;
  /** The highest modseq of an expunge entry the change log pruned (changes.ts vanished); absent when none. */
  vanishedFloor?: number;
  messages: number;
  unseen: number;
  size: number;
  created: number;
}

export interface MessageDoc {
  _id: ObjectId;
  user: ObjectId;
  mailbox: ObjectId;
  uid: number;
  modseq: number;
  /** The change-log sequence number of this message's `exists` entry (indexColumns throughChange). */
  seq: number;
  flags: Flag[];
  internalDate: number;
  size: number;
  messageId: string | null;
  thread: ObjectId;
  headerDate: number;
  subject: string;
  envelope: Envelope;
  mime: MimeNode;
  hasAttachments: boolean;
  sha256: string;
  segments: Segment[];
  /** Distinct blob hashes the segments name (one reference each). */
  blobs: string[];
  /** How the inline bytes are kept in messageContent: pieces and whether they are deflated. */
  inline: { size: number; pieces: number; deflated: boolean };
}

/** One piece of a message's inline bytes. Written once with the message, deleted with it, never updated. */
export interface ContentDoc {
  _id: ObjectId;
  message: ObjectId;
  n: number;
  data: Binary;
}

/** What SEARCH looks in, folded (storage/search/fold.ts), one per message; `_id` is the message's. */
export interface SearchDoc {
  _id: ObjectId;
  mailbox: ObjectId;
  uid: number;
  subject: string | null;
  from: string | null;
  to: string | null;
  cc: string | null;
  bcc: string | null;
  headers: string;
  body: string;
  /** The body search text as stored (IngestedMessage.searchText, not folded): MessagesPort.searchText. */
  text: string;
  /** The sent date's UTC day (storage/search/sent-date.ts), else the internal date's. */
  sentDay: number;
}

/** Message-ID → thread, per user (threading by References / In-Reply-To). */
export interface ThreadRefDoc {
  _id: ObjectId;
  user: ObjectId;
  ref: string;
  thread: ObjectId;
}

/** A content-addressed blob (storage/blob-codec.ts framing), stored in `blobPieces`. Staged until a commit names it. */
export interface BlobDoc {
  _id: ObjectId;
  /** Hex SHA-256 of the original bytes; null while staged. */
  hash: string | null;
  state: 'staged' | 'live';
  size: number;
  storedSize: number;
  pieces: number;
  /** Messages referencing it; 0 = collectable. */
  refs: number;
  created: number;
}

export interface BlobPieceDoc {
  _id: ObjectId;
  blob: ObjectId;
  n: number;
  data: Binary;
}

/** A change-log entry (ChangesPort); `seq` is the port's id, per user. `noop` fills a sequence number given up. */
export interface ChangeDoc {
  _id: ObjectId;
  user: ObjectId;
  seq: number;
  mailbox: ObjectId | null;
  type: string;
  modseq: number;
  uid: number | null;
  flags: Flag[] | null;
  path: string | null;
  created: number;
}

/** A named server-wide counter: `uidvalidity`, the UIDVALIDITY allocator (mailboxes.ts). */
export interface MetaDoc {
  _id: ObjectId;
  name: string;
  value: number;
}

export interface MongoCollections {
  users: Collection<UserDoc>;
  loginKeys: Collection<LoginKeyDoc>;
  addresses: Collection<AddressDoc>;
  documents: Collection<DocumentDoc>;
  mailboxes: Collection<MailboxDoc>;
  messages: Collection<MessageDoc>;
  messageContent: Collection<ContentDoc>;
  messageSearch: Collection<SearchDoc>;
  threadRefs: Collection<ThreadRefDoc>;
  blobs: Collection<BlobDoc>;
  blobPieces: Collection<BlobPieceDoc>;
  changes: Collection<ChangeDoc>;
  meta: Collection<MetaDoc>;
}

/** Collection names in the database (the README's table lists them with their shard keys). */
export const COLLECTION_NAMES: { readonly [K in keyof MongoCollections]: string } = {
  users: 'users',
  loginKeys: 'loginkeys',
  addresses: 'addresses',
  documents: 'userdocuments',
  mailboxes: 'mailboxes',
  messages: 'messages',
  messageContent: 'messagecontent',
  messageSearch: 'messagesearch',
  threadRefs: 'threadrefs',
  blobs: 'blobs',
  blobPieces: 'blobpieces',
  changes: 'changes',
  meta: 'meta',
};

const stringKey = { partialFilterExpression: { key: { $type: 'string' } } };

/** Every index, by collection. Unique indexes are what keeps the data correct under concurrent writers. */
export const INDEXES: { readonly [K in keyof MongoCollections]: IndexDescription[] } = {
  users: [{ key: { username: 1 }, name: 'username', unique: true }, { key: { tags: 1 }, name: 'tags' }],
  loginKeys: [{ key: { kind: 1, key: 1 }, name: 'kind_key', unique: true }, { key: { user: 1 }, name: 'user' }],
  addresses: [{ key: { address: 1 }, name: 'address', unique: true }, { key: { user: 1 }, name: 'user' }],
  documents: [
    { key: { user: 1, kind: 1, docId: 1 }, name: 'user_kind_doc', unique: true },
    { key: { kind: 1, key: 1 }, name: 'kind_key', unique: true, ...stringKey },
  ],
  mailboxes: [{ key: { user: 1, path: 1 }, name: 'user_path', unique: true }, { key: { user: 1, specialUse: 1 }, name: 'user_special_use' }],
  messages: [
    { key: { mailbox: 1, uid: 1 }, name: 'mailbox_uid', unique: true },
    { key: { mailbox: 1, modseq: 1 }, name: 'mailbox_modseq' },
    { key: { mailbox: 1, messageId: 1 }, name: 'mailbox_message_id' },
    { key: { user: 1, thread: 1 }, name: 'user_thread' },
    // `quota recalc` recounts the references of a user's blobs (users.ts)
    { key: { blobs: 1 }, name: 'blobs' },
  ],
  messageContent: [{ key: { message: 1, n: 1 }, name: 'message_n', unique: true }],
  messageSearch: [{ key: { mailbox: 1, uid: 1 }, name: 'mailbox_uid' }],
  threadRefs: [{ key: { user: 1, ref: 1 }, name: 'user_ref', unique: true }],
  blobs: [
    { key: { hash: 1 }, name: 'hash', unique: true, partialFilterExpression: { hash: { $type: 'string' } } },
    { key: { state: 1, refs: 1, created: 1 }, name: 'state_refs_created' },
  ],
  blobPieces: [{ key: { blob: 1, n: 1 }, name: 'blob_n', unique: true }],
  changes: [
    { key: { user: 1, seq: 1 }, name: 'user_seq', unique: true },
    { key: { created: 1 }, name: 'created' },
    // QRESYNC (changes.ts vanished): a mailbox's expunge entries by modseq; only expunges are in it
    { key: { mailbox: 1, modseq: 1 }, name: 'mailbox_expunged', partialFilterExpression: { type: 'expunge' } },
  ],
  meta: [{ key: { name: 1 }, name: 'name', unique: true }],
};

export function collections(db: Db): MongoCollections {
  const out = {} as Record<keyof MongoCollections, Collection<never>>;
  for (const k of Object.keys(COLLECTION_NAMES) as (keyof MongoCollections)[]) out[k] = db.collection(COLLECTION_NAMES[k]);
  return out as unknown as MongoCollections;
}

/** Creates every index (idempotent: an index that exists with the same definition is left alone). */
export async function ensureIndexes(c: MongoCollections): Promise<void> {
  for (const k of Object.keys(INDEXES) as (keyof MongoCollections)[]) {
    const indexes = INDEXES[k];
    if (indexes.length > 0) await (c[k] as unknown as Collection).createIndexes(indexes);
  }
}
