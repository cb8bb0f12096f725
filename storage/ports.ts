/**
 * Storage ports: the contract between the rest of the server and a storage backend.
 *
 * Every backend (embedded SQLite, MongoDB + Redis) implements `StoragePorts`. Nothing here leaks a query
 * language: ids are opaque strings, UID and modseq allocation happen inside single atomic operations
 * (`messages.append`, `messages.copy`, `messages.move`, `messages.setFlags`, `messages.expunge`), and every
 * mutation of a mailbox writes its change-log entries in the same atomic step.
 *
 * Reads on hot paths (FETCH, LIST, SEARCH) call these ports directly; writes go through the pipeline
 * functions in hooks/, whose last stage (the storage plugin) calls the mutating methods here.
 */

/** Opaque identifier. Backends choose the format (SQLite: integer as string, MongoDB: ObjectId hex). */
export type Id = string;

/** Error codes a port may throw (as `StorageError`). Everything else thrown is an outage or a bug. */
export type StorageErrorCode =
  | 'NONEXISTENT' // user, mailbox or message does not exist
  | 'ALREADYEXISTS' // unique name taken (username, address, mailbox path)
  | 'CANNOT' // operation not allowed on this object (e.g. delete INBOX)
  | 'UNAVAILABLE'; // backend temporarily unreachable

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Users and addresses
// ---------------------------------------------------------------------------------------------------------

export interface QuotaLimits {
  /** Maximum stored bytes; null = use the server default. */
  storage: number | null;
  /** Maximum message count; null = use the server default. */
  messages: number | null;
}

export interface UserRecord {
  id: Id;
  /** Normalized (lowercased, NFC) login name. */
  username: string;
  name: string;
  /** Encoded KDF hash (see storage/passwords.ts); never logged, never sent to clients. */
  passwordHash: string | null;
  quota: QuotaLimits;
  /** Bytes of stored messages (sum of message sizes, exact after concurrent writes and expunges). */
  storageUsed: number;
  /** Number of stored messages across all mailboxes. */
  messagesUsed: number;
  disabled: boolean;
  /** Admin labels: trimmed, lowercased, distinct, sorted (storage/users.ts normalizeTags). */
  tags: string[];
  created: number; // ms since epoch
}

export interface NewUser {
  username: string;
  name?: string;
  passwordHash: string | null;
  quota?: Partial<QuotaLimits>;
  /** Normalized tags (see UserRecord.tags). */
  tags?: string[];
}

export interface UserPatch {
  name?: string;
  passwordHash?: string | null;
  quota?: Partial<QuotaLimits>;
  disabled?: boolean;
  /** Replaces the user's tags (normalized). */
  tags?: string[];
}

/**
 * Filters for listing users. `query`: substring of the username or name (case-insensitive). `tags`: the user has at
 * least one of these; `requiredTags`: the user has all of these (both normalized; empty arrays filter nothing).
 */
export interface UserFilter {
  query?: string;
  tags?: string[];
  requiredTags?: string[];
}

export interface AddressRecord {
  id: Id;
  userId: Id;
  /** Normalized form used for lookup: local part NFC + lowercased, domain as Unicode NFC lowercased. */
  address: string;
  /** As the admin typed it (Unicode), for display. */
  display: string;
  main: boolean;
  created: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, or null when this is the last page. */
  next: string | null;
}

export interface UsersPort {
  create(user: NewUser): Promise<UserRecord>; // ALREADYEXISTS when username is taken
  get(id: Id): Promise<UserRecord | null>;
  getByUsername(username: string): Promise<UserRecord | null>;
  /**
   * The user whose username or address has this login name's key (storage/addresses.ts loginKey: NFKC, case
   * folded). Backends keep those keys unique across users with a unique index: create and addAddress refuse a
   * username or address folding to another user's username or address (ALREADYEXISTS), and create refuses a
   * username with another user's username skeleton (usernameSkeleton, UTS #39 confusables).
   */
  getByLoginName(login: string): Promise<UserRecord | null>;
  list(options?: UserFilter & { limit?: number; cursor?: string | null }): Promise<Page<UserRecord>>;
  /** How many users `list` would return in all for the same filter (the HTTP API's `total`). */
  count(options?: UserFilter): Promise<number>;
  update(id: Id, patch: UserPatch): Promise<UserRecord>; // NONEXISTENT
  /** Removes the user with all mailboxes, messages (releasing blob references) and addresses. */
  delete(id: Id): Promise<void>;
  /**
   * Recounts `storageUsed` and `messagesUsed` (and every mailbox's message/unseen/size counters) from the stored
   * messages in one transaction, repairing counters that drifted (a crash of an older build, a manual edit).
   * Returns the repaired record. NONEXISTENT.
   */
  recalculateUsage(id: Id): Promise<UserRecord>;

  addAddress(userId: Id, address: { address: string; display: string; main?: boolean }): Promise<AddressRecord>;
  removeAddress(addressId: Id): Promise<void>;
  /** Changes an address's display form (same normalized address) or makes it the user's main one. NONEXISTENT. */
  updateAddress(addressId: Id, patch: { display?: string; main?: boolean }): Promise<AddressRecord>;
  listAddresses(userId: Id): Promise<AddressRecord[]>;
  /** Exact lookup of a normalized address. */
  resolveAddress(address: string): Promise<AddressRecord | null>;
}

// ---------------------------------------------------------------------------------------------------------
// Mailboxes
// ---------------------------------------------------------------------------------------------------------

export type SpecialUse = '\\Inbox' | '\\Drafts' | '\\Sent' | '\\Trash' | '\\Junk' | '\\Archive' | '\\All' | '\\Flagged';

/** Hierarchy delimiter used in stored mailbox paths. */
export const MAILBOX_DELIMITER = '/';

export interface MailboxRecord {
  id: Id;
  userId: Id;
  /** Full path in Unicode, delimiter '/', "INBOX" for the inbox. */
  path: string;
  specialUse: SpecialUse | null;
  subscribed: boolean;
  uidValidity: number;
  /** The UID the next appended message will get. Never decreases. */
  uidNext: number;
  /** Highest modseq assigned in this mailbox (RFC 7162). Never decreases. */
  highestModseq: number;
  created: number;
}

export interface MailboxCounters {
  messages: number;
  unseen: number;
  /** Sum of message sizes. */
  size: number;
}

export interface MailboxesPort {
  create(userId: Id, mailbox: { path: string; specialUse?: SpecialUse | null; subscribed?: boolean }): Promise<MailboxRecord>; // ALREADYEXISTS
  get(id: Id): Promise<MailboxRecord | null>;
  getByPath(userId: Id, path: string): Promise<MailboxRecord | null>;
  getBySpecialUse(userId: Id, specialUse: SpecialUse): Promise<MailboxRecord | null>;
  list(userId: Id): Promise<MailboxRecord[]>;
  counters(id: Id): Promise<MailboxCounters>;
  /**
   * Renames `fromPath` and every descendant (`fromPath/…`) to `toPath…` in one atomic step; UIDVALIDITY and
   * messages are kept. ALREADYEXISTS when any target path is taken.
   */
  rename(userId: Id, fromPath: string, toPath: string): Promise<MailboxRecord[]>;
  setSubscribed(id: Id, subscribed: boolean): Promise<void>;
  /** Deletes the mailbox and all its messages (releasing blob references). */
  delete(id: Id): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// MIME structure (protocol-neutral; IMAP renders ENVELOPE and BODYSTRUCTURE from it)
// ---------------------------------------------------------------------------------------------------------

/** One address as it appears in the header (raw, not RFC 2047-decoded), split the way IMAP ENVELOPE needs. */
export interface EnvelopeAddress {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

/** RFC 3501 ENVELOPE fields as raw header values (unfolded, not decoded). */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: EnvelopeAddress[] | null;
  sender: EnvelopeAddress[] | null;
  replyTo: EnvelopeAddress[] | null;
  to: EnvelopeAddress[] | null;
  cc: EnvelopeAddress[] | null;
  bcc: EnvelopeAddress[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

export interface MimeNode {
  /** IMAP part specifier: "" for the message itself, "1", "1.2", … */
  part: string;
  /** Byte offsets in the original message. header = [headerStart, bodyStart), body = [bodyStart, bodyEnd). */
  headerStart: number;
  bodyStart: number;
  bodyEnd: number;
  /** Lowercased MIME type and subtype; defaults applied (text/plain, or message/rfc822 inside multipart/digest). */
  type: string;
  subtype: string;
  /** Content-Type parameters, names lowercased, RFC 2231 continuations joined, values as given. */
  params: Record<string, string>;
  disposition: { type: string; params: Record<string, string> } | null;
  /** Content-Transfer-Encoding, lowercased; "7bit" when absent. */
  encoding: string;
  id: string | null;
  description: string | null;
  md5: string | null;
  language: string[] | null;
  location: string | null;
  /** Body size in bytes (encoded, as stored) and in lines. */
  size: number;
  lines: number;
  /**
   * Size of the body decoded from its base64 or quoted-printable encoding (IMAP BINARY.SIZE), counted at ingest;
   * absent for other encodings (identity: `size`) and for messages stored before it was recorded.
   */
  decodedSize?: number;
  /** Multipart children. */
  children?: MimeNode[];
  /** For message/rfc822 (and message/global): the encapsulated message's envelope and root node. */
  message?: { envelope: Envelope; root: MimeNode };
}

/**
 * How a message's bytes are kept: an ordered list of segments covering the message exactly. A segment is
 * either the next `length` bytes of the message's inline bytes, or a reference to a blob holding one large
 * part's body exactly as it arrived (still transfer-encoded).
 */
export interface Segment {
  length: number;
  /** Blob hash (hex sha256 of the raw bytes); absent for inline segments. */
  blob?: string;
}

export interface MessageContent {
  /** Concatenation of all inline segments' bytes, in order. */
  inline: Uint8Array;
  segments: Segment[];
}

// ---------------------------------------------------------------------------------------------------------
// Blobs (content-addressed, compressed, reference-counted)
// ---------------------------------------------------------------------------------------------------------

/** A blob that has been written but is not yet referenced by any message. Backend-specific handle. */
export interface StagedBlob {
  readonly hash: string;
  readonly size: number;
}

export interface BlobWriter {
  /** Appends bytes. The writer may keep `chunk` itself (no copy): the caller hands it over and never changes it. */
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the blob: computes the hash, makes the bytes durable in a staging area. */
  finish(): Promise<StagedBlob>;
  /** Drops the staged bytes (parse failed, message refused). Safe to call after finish(). */
  abort(): Promise<void>;
}

export interface BlobsPort {
  /** Starts writing a new blob. It becomes referenced (and deduplicated) only when a message commit names it. */
  stage(): BlobWriter;
  /** Reads decoded (original) bytes [start, end) of a committed blob, without reading the rest. */
  read(hash: string, start?: number, end?: number): AsyncIterable<Uint8Array>;
  /** Releases staged blobs that were never committed (a refused or failed store). */
  discard(staged: StagedBlob[]): Promise<void>;
  /** Removes blobs with no references and leftovers of interrupted writes. Returns how many were freed. */
  collect(): Promise<number>;
  /** Totals for admins and tests: distinct committed blobs and the bytes they occupy on storage. */
  stats(): Promise<{ count: number; size: number; storedSize: number }>;
}

// ---------------------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------------------

/** System flags are stored with their backslash (`\Seen`); keywords as given (case preserved). */
export type Flag = string;

export interface MessageRecord {
  id: Id;
  userId: Id;
  mailboxId: Id;
  uid: number;
  modseq: number;
  flags: Flag[];
  internalDate: number; // ms since epoch
  size: number;
  /** Message-ID header value (raw), or null. */
  messageId: string | null;
  threadId: Id;
  /** Date header parsed to ms, or internalDate when absent/invalid. */
  headerDate: number;
  /** Decoded subject (RFC 2047) for listings. */
  subject: string;
  envelope: Envelope;
  mime: MimeNode;
  hasAttachments: boolean;
}

/** Everything the shared MIME ingest (storage/mime) produces for one message, ready to commit. */
export interface IngestedMessage {
  size: number;
  content: MessageContent;
  mime: MimeNode;
  envelope: Envelope;
  messageId: string | null;
  /** Message-IDs from References and In-Reply-To, oldest first; used for threading. */
  references: string[];
  subject: string;
  headerDate: number | null;
  hasAttachments: boolean;
  /**
   * Decoded body text for BODY searches: attachment file names and the text parts (HTML as text), any charset,
   * NFC, bounded in size. Header fields are in `searchHeaders`.
   */
  searchText: string;
  /** Decoded header text for SUBJECT / FROM / TO / CC / BCC and the header half of TEXT. */
  searchHeaders: SearchHeaders;
  /**
   * The message's preview (RFC 8970; storage/mime/preview.ts): its first text, quotes and signature left out, white
   * space collapsed, at most 256 characters; "" when it has no text. FETCH PREVIEW reads it, never the body.
   */
  preview: string;
  /** Blobs this message references, staged by BlobsPort.stage(); the commit takes references on them. */
  blobs: StagedBlob[];
  /**
   * Identity hash of the message (hex): SHA-256 of its inline bytes followed by its segment layout (lengths and blob
   * hashes, which are SHA-256 of the blob bytes), storage/mime/ingest.ts contentHash. Equal for equal messages
   * stored the same way; every byte is hashed once.
   */
  sha256: string;
}

/** Header text a search index keeps (RFC 2047-decoded, NFC); made once at ingest (storage/mime/search-headers.ts). */
export interface SearchHeaders {
  /** Decoded Subject; null when the message has none. */
  subject: string | null;
  /**
   * Parsed addresses, one per line as `Display Name <local@domain>` (or the bare address; a group as `name:`),
   * comments removed and whitespace inside the address dropped; null when the field is absent.
   */
  from: string | null;
  to: string | null;
  cc: string | null;
  bcc: string | null;
  /** Every header field of the message as `name: decoded value` lines, in order. */
  headers: string;
}

export interface AppendInput {
  userId: Id;
  mailboxId: Id;
  flags: Flag[];
  internalDate: number;
  message: IngestedMessage;
  /** The save date to keep (RFC 8514; the storage copy carries it over); absent: now. */
  savedDate?: number;
}

export interface AppendResult {
  id: Id;
  uid: number;
  modseq: number;
  uidValidity: number;
  threadId: Id;
}

export interface UidMapping {
  sourceUid: number;
  destinationUid: number;
}

export interface CopyResult {
  uidValidity: number;
  mappings: UidMapping[];
  modseq: number;
}

export interface FlagUpdate {
  /** 'add' (+FLAGS), 'remove' (-FLAGS) or 'set' (FLAGS). */
  action: 'add' | 'remove' | 'set';
  flags: Flag[];
  /** CONDSTORE: only change messages whose modseq <= this; others are reported as `modified`. */
  unchangedSince?: number;
}

export interface FlagResult {
  /** Messages whose flags changed, with their new flags and modseq. */
  changed: Array<{ uid: number; flags: Flag[]; modseq: number }>;
  /** UIDs skipped because of unchangedSince. */
  modified: number[];
}

/** Compact per-message row for building a session's sequence-number map and answering FLAGS/UID fetches. */
export interface MessageIndexEntry {
  uid: number;
  modseq: number;
  flags: Flag[];
  size: number;
  internalDate: number;
}

/**
 * A mailbox's index as columns in UID order, for the shared mailbox index (storage/mailbox-index): one call, no
 * object per message. `flags[i]` is an index into `flagSets`, the distinct flag lists of this answer.
 */
export interface IndexColumns {
  count: number;
  uids: Uint32Array;
  modseqs: Float64Array;
  sizes: Float64Array;
  internalDates: Float64Array;
  flags: Uint32Array;
  flagSets: Flag[][];
}

/** A mailbox index saved as bytes (storage/mailbox-index/snapshot.ts), taken when the change log was at `cursor`. */
export interface IndexSnapshot {
  uidValidity: number;
  cursor: number;
  bytes: Uint8Array;
}

/**
 * A saved index snapshot opened for reading in parts (`messages.indexSnapshot`): the index reads the head it needs
 * to answer at once and the rest of the columns when first used, so opening a large mailbox does not wait for all
 * of its bytes. The embedded backend keeps its file open until `close`.
 */
export interface IndexSnapshotSource {
  uidValidity: number;
  cursor: number;
  /** Length of the snapshot's bytes. */
  length: number;
  /** `length` bytes from `offset` of the snapshot, a fresh copy (the caller's); throws when they are not all there. */
  read(offset: number, length: number): Uint8Array;
  /** Done reading (idempotent); `read` throws after it. */
  close(): void;
}

export interface MessagePageOptions {
  order: 'asc' | 'desc';
  limit: number;
  /** The page starts after this UID (in `order`). */
  after?: number;
  /** The page ends before this UID (in `order`): the previous page. */
  before?: number;
  /** Only messages without \Seen. */
  unseen?: boolean;
  /** Only messages with \Flagged. */
  flagged?: boolean;
}

export interface MessagePage {
  entries: MessageIndexEntry[];
  /** Messages the filters admit in the whole mailbox. */
  total: number;
  /** Whether the filters admit messages before the first entry / after the last (in `order`); false when empty. */
  earlier: boolean;
  later: boolean;
}

/** What MessagesPort.sortData reads besides the always-present fields (SORT and THREAD, RFC 5256 / 5957). */
export interface SortDataWanted {
  /** The decoded subject (SORT SUBJECT, THREAD). */
  subject?: boolean;
  /** The parsed Date (SORT DATE, THREAD). */
  date?: boolean;
  /** The first From / To / Cc address (SORT FROM, DISPLAYFROM / TO, DISPLAYTO / CC). */
  from?: boolean;
  to?: boolean;
  cc?: boolean;
  /** Message-ID, In-Reply-To and References (THREAD=REFERENCES, THREAD=REFS). */
  threading?: boolean;
}

/**
 * One message as SORT and THREAD see it, read from stored columns (the envelope, the decoded subject, the parsed
 * Date, the search header text): never the message bytes. UID, internal date and size always; the rest when wanted
 * (a SORT by ARRIVAL or SIZE reads the mailbox's covering index only).
 */
export interface MessageSortData {
  uid: number;
  internalDate: number;
  size: number;
  /** With `date`: MessageRecord.headerDate, the Date header in ms, or the internal date when absent or unreadable. */
  headerDate?: number;
  /** With `subject`: the RFC 2047-decoded Subject ('' when absent). */
  subject?: string;
  /**
   * With `from` / `to` / `cc`: the first address of that ENVELOPE field (raw, as in the ENVELOPE: a group's start
   * marker names the group), or null when the field is absent or empty.
   */
  from?: EnvelopeAddress | null;
  to?: EnvelopeAddress | null;
  cc?: EnvelopeAddress | null;
  /** With `threading`: the raw Message-ID and In-Reply-To values and the References field's text (null when absent). */
  messageId?: string | null;
  inReplyTo?: string | null;
  references?: string | null;
}

/** What MessagesPort.parts reads of each message: only these are read and decoded (a FETCH asks for what its items need). */
export interface MessagePartsWanted {
  /** MessageRecord.envelope (FETCH ENVELOPE). */
  envelope?: boolean;
  /** MessageRecord.mime, the MIME tree with byte offsets (BODY, BODYSTRUCTURE, any section but BODY[]). */
  mime?: boolean;
  /** The segments and inline bytes (any body section), as MessagesPort.content returns them. */
  content?: boolean;
  /** MessageParts.emailId and threadId (OBJECTID, RFC 8474). */
  ids?: boolean;
  /** MessageParts.savedDate (SAVEDATE, RFC 8514). */
  savedDate?: boolean;
  /** MessageParts.preview (PREVIEW, RFC 8970). */
  preview?: boolean;
}

/** One message as MessagesPort.parts read it: the parts asked for are set, the others absent. */
export interface MessageParts {
  uid: number;
  envelope?: Envelope;
  mime?: MimeNode;
  content?: MessageContent;
  /**
   * The message's email id: the id of the message as first stored (append or delivery), kept by COPY and MOVE, so
   * every copy of a message shares it (RFC 8474 EMAILID, like a JMAP Email id).
   */
  emailId?: Id;
  threadId?: Id;
  /** When the message was saved into this mailbox (append, delivery, COPY, MOVE), ms since epoch (RFC 8514). */
  savedDate?: number;
  /**
   * IngestedMessage.preview. A message stored before previews were gets one made from its stored search text (which
   * lists attachment names before the text), never from its body.
   */
  preview?: string;
}

export interface MessagesPort {
  /** Atomically: allocate UID and modseq, store the message, take blob references, log `exists`. */
  append(input: AppendInput): Promise<AppendResult>;
  get(mailboxId: Id, uid: number): Promise<MessageRecord | null>;
  /**
   * The wanted parts of several messages of a mailbox in one call (a FETCH reads its messages in chunks through it):
   * one entry per UID found, ascending by UID; UIDs not in the mailbox (expunged, unknown) are left out, and an
   * unknown mailbox gives an empty list. Reads nothing beyond the wanted parts (no body bytes for an ENVELOPE).
   */
  parts(mailboxId: Id, uids: readonly number[], wanted: MessagePartsWanted): Promise<MessageParts[]>;
  getById(id: Id): Promise<MessageRecord | null>;
  /** Index of the mailbox in UID order; `changedSince` limits to messages with modseq > it. */
  index(mailboxId: Id, options?: { changedSince?: number }): Promise<MessageIndexEntry[]>;
  /**
   * The same index as columns (IndexColumns); `afterUid` limits it to messages with a higher UID. `throughChange`, a
   * change-log id the caller has read through: only messages whose `exists` entry is at or before it (a backend whose
   * writers commit in change-log order, like the embedded one, may ignore it; one with concurrent writers must not
   * return a message the caller will read an `exists` entry for later, storage/mongodb/changes.ts).
   */
  indexColumns(mailboxId: Id, options?: { afterUid?: number; throughChange?: number }): Promise<IndexColumns>;
  /**
   * The index snapshot saved for the mailbox, opened for reading, or null when there is none or the change log no
   * longer holds every entry after its cursor (pruned since). The caller closes it. Optional: without it the index
   * is always read in full.
   */
  indexSnapshot?(mailboxId: Id): Promise<IndexSnapshotSource | null>;
  /** Keeps a snapshot unless the stored one was taken at a later cursor. Optional, with indexSnapshot. */
  saveIndexSnapshot?(mailboxId: Id, snapshot: IndexSnapshot): Promise<void>;
  /**
   * One page of the index (HTTP listings): a page costs its own size, not the mailbox's. Messages in `order` of UID,
   * starting after the UID `after` (exclusive, in that order), or the page that ends before the UID `before`; at most
   * `limit`; only unseen and/or flagged ones when asked. Unknown mailbox: an empty page.
   */
  page(mailboxId: Id, options: MessagePageOptions): Promise<MessagePage>;
  /** Segment list and inline bytes, for reassembly (storage/mime/reassemble.ts). */
  content(id: Id): Promise<MessageContent | null>;
  /** The stored body search text (IngestedMessage.searchText). */
  searchText(id: Id): Promise<string | null>;
  setFlags(mailboxId: Id, uids: number[], update: FlagUpdate): Promise<FlagResult>;
  /** Copies in UID order; new UIDs allocated atomically in the destination; blob references taken. */
  copy(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult>;
  /** Like copy, then expunge from the source, in one atomic step. */
  move(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult>;
  /** Removes exactly these UIDs; logs `expunge`, releases blob references, updates usage. Returns removed UIDs. */
  expunge(mailboxId: Id, uids: number[]): Promise<number[]>;
  /** Finds a message by Message-ID in a mailbox (duplicate suppression, Sent autosave). */
  findByMessageId(mailboxId: Id, messageId: string): Promise<MessageRecord | null>;
  /**
   * SORT / THREAD data of these UIDs of a mailbox (MessageSortData), in UID order; UIDs not in the mailbox are left
   * out. Reads stored columns only: the envelope's first addresses, the decoded subject, the parsed Date and (for
   * threading) the stored References text.
   */
  sortData(mailboxId: Id, uids: readonly number[], wanted?: SortDataWanted): Promise<MessageSortData[]>;
  /** How many of the user's messages (in any mailbox) belong to each of these threads; unknown threads count 0. */
  threadCounts(userId: Id, threadIds: Id[]): Promise<Map<Id, number>>;
}

// ---------------------------------------------------------------------------------------------------------
// Search (answered from the backend's indexes; storage/search/evaluate.ts combines it with the mailbox index)
// ---------------------------------------------------------------------------------------------------------

/**
 * The text a search term looks in:
 * - `subject`: the decoded Subject;
 * - `from` / `to` / `cc` / `bcc`: the parsed addresses of that field (SearchHeaders: display names and addresses,
 *   comments removed), so `user@example.org` matches `<user (comment)@ example.org>`;
 * - `body`: the decoded body text (IngestedMessage.searchText: text parts and attachment names), no header;
 * - `text`: every header field (`name: decoded value`) and the body text.
 */
export type SearchField = 'subject' | 'from' | 'to' | 'cc' | 'bcc' | 'body' | 'text';

export interface SearchTerm {
  field: SearchField;
  /** Needle: matched as a case-insensitive substring (Unicode case folding, NFC), any length from 0 up. */
  value: string;
}

export interface SearchPort {
  /**
   * For each term, the UIDs (ascending) of the mailbox's messages whose field contains the term's value. An empty
   * value matches every message that has the field (`body` and `text`: every message). Unknown mailbox: empty
   * lists. Answered from indexes, never by loading messages one by one; the result reflects every committed
   * append, copy, move and expunge (no stale hits).
   */
  match(mailboxId: Id, terms: readonly SearchTerm[]): Promise<number[][]>;
  /**
   * For each term, the UIDs (ascending) of the mailbox's messages whose sent date is before / on / since the term's
   * day (00:00 UTC). The sent date is the calendar date written in the first Date header, ignoring time and zone
   * (storage/search/sent-date.ts sentDayOfHeaders); a message without a readable one uses its internal date's UTC
   * day. Answered from indexes, like `match`.
   */
  matchSent(mailboxId: Id, terms: readonly SentDateTerm[]): Promise<number[][]>;
  /**
   * For each term, the UIDs (ascending) of the mailbox's messages whose save date, email id or thread id matches it
   * (MetaTerm). One query per term over the mailbox's rows; no message is loaded. Unknown mailbox: empty lists.
   */
  matchMeta(mailboxId: Id, terms: readonly MetaTerm[]): Promise<number[][]>;
}

/**
 * Terms answered from message metadata (SearchPort.matchMeta): the save date's UTC day before / on / since `day`
 * (SAVEDBEFORE / SAVEDON / SAVEDSINCE, RFC 8514), or the email id / thread id equal to `id` (EMAILID / THREADID,
 * RFC 8474).
 */
export type MetaTerm = { field: 'savedate'; op: 'before' | 'on' | 'since'; day: number } | { field: 'emailid' | 'threadid'; id: Id };

/** SENTBEFORE / SENTON / SENTSINCE: `day` is 00:00 UTC of the date. */
export interface SentDateTerm {
  op: 'before' | 'on' | 'since';
  day: number;
}

// ---------------------------------------------------------------------------------------------------------
// Change log (CONDSTORE, QRESYNC, IDLE and the HTTP event stream are built on it)
// ---------------------------------------------------------------------------------------------------------

export type ChangeType =
  | 'exists'
  | 'expunge'
  | 'flags'
  | 'mailbox.create'
  | 'mailbox.rename'
  | 'mailbox.delete'
  | 'mailbox.subscribe';

export interface ChangeEntry {
  /** Monotonic per user; resumable cursor (HTTP Last-Event-ID). */
  id: number;
  userId: Id;
  mailboxId: Id;
  type: ChangeType;
  modseq: number;
  uid: number | null;
  flags: Flag[] | null;
  /** For mailbox.* changes: the path after the change. */
  path: string | null;
  created: number;
}

export interface ChangesPort {
  /** Entries for a user after `afterId` (exclusive), oldest first, at most `limit`. */
  since(userId: Id, afterId: number, options?: { mailboxId?: Id; limit?: number }): Promise<ChangeEntry[]>;
  /** Latest change id for a user (0 when none). */
  latest(userId: Id): Promise<number>;
  /**
   * Called after a commit with the user whose data changed. Listeners then read `since()`. Delivered through the
   * ephemeral pub/sub so that other server instances hear it too.
   */
  subscribe(userId: Id, listener: (latestId: number) => void): () => void;
  /**
   * QRESYNC (RFC 7162 §3.2.5): UIDs expunged from the mailbox by changes with a modseq above `modseq`, ascending, or
   * null when the log no longer reaches back that far for this mailbox (entries of its expunges pruned): the caller
   * then answers with a larger set. Served by an index of expunge entries by mailbox and modseq; `prune` records,
   * per mailbox, the highest modseq of an expunge it dropped, so this knows when its answer is incomplete.
   */
  vanished(mailboxId: Id, modseq: number): Promise<number[] | null>;
  /** Drops entries older than `before` (ms since epoch). */
  prune(before: number): Promise<number>;
}

// ---------------------------------------------------------------------------------------------------------
// Ephemeral state: counters, locks, pub/sub (in-process for embedded, Redis for clusters)
// ---------------------------------------------------------------------------------------------------------

export interface EphemeralPort {
  /** Adds `by` to a counter; the counter expires `ttlMs` after its first increment. Returns the new value. */
  incr(key: string, by: number, ttlMs: number): Promise<number>;
  get(key: string): Promise<number>;
  /**
   * Raises a counter to `to` when it is below (creating it, expiring `ttlMs` later, when absent) and returns its value
   * before: one atomic step for a high-water mark (IMAP \Recent). Atomic (Redis: one Lua script).
   */
  raise(key: string, to: number, ttlMs: number): Promise<number>;
  /**
   * Takes one unit from several counters at once, all or nothing: when every counter is below its limit, adds 1
   * to each (a counter created here expires `ttlMs` after this first increment) and returns -1; otherwise changes
   * nothing and returns the index of the first counter already at its limit. Atomic (Redis: one Lua script over
   * KEYS, so in a Redis Cluster the keys need one hash tag). Failed-login limits reserve an attempt with it.
   */
  reserve(counters: ReadonlyArray<{ readonly key: string; readonly limit: number }>, ttlMs: number): Promise<number>;
  /**
   * Gives `by` back to a live counter: never below zero, never creating an absent or expired key, expiry kept.
   * Returns the new value (0 when absent). Atomic (Redis: Lua GET + DECRBY).
   */
  release(key: string, by: number): Promise<number>;
  del(key: string): Promise<void>;
  /** Remembers a key for ttlMs; returns false when it was already set (rate limits, dedup windows). */
  setIfAbsent(key: string, ttlMs: number): Promise<boolean>;
  /** Exclusive lock with expiry. Returns a token to release it, or null when held by someone else. */
  lock(key: string, ttlMs: number): Promise<string | null>;
  unlock(key: string, token: string): Promise<boolean>;
  /**
   * Sets a held lock's expiry to `ttlMs` from now, only while `token` still holds it (it has not expired, been
   * unlocked or taken by someone else): true then, false otherwise. Keeps a long session's lock without the
   * unlock-and-relock window in which another session could take it. Atomic (Redis: one Lua script).
   */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, listener: (message: string) => void): () => void;
}

// ---------------------------------------------------------------------------------------------------------
// Per-user documents: filters, autoreply, application passwords, access tokens, settings
// ---------------------------------------------------------------------------------------------------------

/** A JSON document owned by a user, of a named kind ('filter', 'autoreply', 'asp', 'token', ...). */
export interface UserDocument<T = unknown> {
  id: Id;
  userId: Id;
  kind: string;
  /** Optional lookup key, unique per kind across all users (e.g. a token hash). */
  key: string | null;
  data: T;
  created: number;
  updated: number;
}

export interface UserDocumentsPort {
  /** Documents of one kind for a user, oldest first. */
  list<T = unknown>(userId: Id, kind: string): Promise<UserDocument<T>[]>;
  get<T = unknown>(userId: Id, kind: string, id: Id): Promise<UserDocument<T> | null>;
  /**
   * Inserts (no `id`, or an id not yet used for this user and kind) or replaces (existing id) a document.
   * Explicit ids let singletons use a fixed name (`put(user, 'autoreply', data, { id: 'default' })`).
   * ALREADYEXISTS when `key` is taken by another document of the kind; NONEXISTENT when the user is gone.
   */
  put<T = unknown>(userId: Id, kind: string, data: T, options?: { id?: Id; key?: string | null }): Promise<UserDocument<T>>;
  delete(userId: Id, kind: string, id: Id): Promise<boolean>;
  /** The document of a kind holding `key`, whichever user owns it. */
  findByKey<T = unknown>(kind: string, key: string): Promise<UserDocument<T> | null>;
  /** Every document of the user, of every kind, ordered by kind and then oldest first (`wildduck storage copy`). */
  listAll(userId: Id): Promise<UserDocument[]>;
}

// ---------------------------------------------------------------------------------------------------------
// Restore: writing a copy of another store (storage/copy.ts)
// ---------------------------------------------------------------------------------------------------------

/**
 * Writing a copy of another store (wildduck storage copy). Each method is idempotent: a copy stopped at any point
 * is resumed by running it again. UIDs, modseqs and UIDVALIDITY are kept; ids are kept where the backend can.
 */
export interface RestorePort {
  /**
   * Finds the user by username or creates it from the record (password hash, quota, tags, disabled, created); a user
   * found gets the record's name, password hash, quota, tags and disabled.
   */
  user(record: UserRecord): Promise<Id>;
  /** Finds the address (the user's, else ALREADYEXISTS) or adds it with the record's display form, main mark and created. */
  address(userId: Id, record: AddressRecord): Promise<Id>;
  /** Inserts or replaces the document with the record's id, key, data and times. */
  document(userId: Id, doc: UserDocument): Promise<void>;
  /**
   * Finds the mailbox by path or creates it with the record's UIDVALIDITY, special use, subscription; then raises
   * its uidNext and highestModseq to at least the record's (and sets its special use and subscription to the record's).
   * A mailbox found with another UIDVALIDITY (deleted and made again in the source since an earlier copy) loses its
   * messages and takes the record's UIDVALIDITY, uidNext and highestModseq.
   */
  mailbox(userId: Id, record: MailboxRecord): Promise<Id>;
  /**
   * Stores the message with this UID and modseq unless the UID is already there (then nothing). Counters, quota
   * usage and blob references as an append; no change-log entry is needed.
   */
  message(input: AppendInput & { uid: number; modseq: number }): Promise<void>;
  /**
   * Sets a stored message's flags and modseq (a change made in the source since an earlier copy); the mailbox's unseen
   * counter follows, its highestModseq is raised to at least `modseq`. False when the UID is not there.
   */
  flags(mailboxId: Id, uid: number, flags: Flag[], modseq: number): Promise<boolean>;
  /**
   * Removes these UIDs (expunged in the source since an earlier copy) like an expunge, releasing blob references and
   * usage, but without a new modseq or change-log entry. Returns the UIDs removed.
   */
  expunge(mailboxId: Id, uids: number[]): Promise<number[]>;
}

// ---------------------------------------------------------------------------------------------------------
// The whole backend
// ---------------------------------------------------------------------------------------------------------

export interface StoragePorts {
  readonly name: string;
  users: UsersPort;
  /** Per-user documents; deleted with their user. */
  documents: UserDocumentsPort;
  mailboxes: MailboxesPort;
  messages: MessagesPort;
  /** Text search over the messages' indexed header fields and body text. */
  search: SearchPort;
  blobs: BlobsPort;
  changes: ChangesPort;
  ephemeral: EphemeralPort;
  /** Writing a copy of another store into this one (`wildduck storage copy --to`); absent: this backend cannot be a target. */
  restore?: RestorePort;
  /** Reachability check for /health. */
  ping(): Promise<void>;
  /**
   * Optional, once per process at start: runs the reads a first IMAP SELECT makes (mailbox by path, index snapshot,
   * change log) for ids that match nothing, so their statements are prepared and their code compiled before a
   * client waits for them (protocols/imap/warm-up.ts). Reads nothing that exists and writes nothing.
   */
  warmUp?(): Promise<void>;
  close(): Promise<void>;
}
