/**
 * Messages. Every mutation is one transaction that allocates UIDs and the modseq from the mailbox row
 * (`UPDATE … RETURNING`), writes the message rows, adjusts blob references, per-user usage and per-mailbox
 * counters, and writes the change-log entries; listeners hear about it after the commit. One operation gets one
 * modseq for all the messages it touches. Appends, flag changes, copies, moves and expunges are group-committed
 * (group-commit.ts): each in its own savepoint of a transaction shared with the writes arriving together, resolved
 * once that transaction is durable (one fsync off the event loop for the group, the write lock held only while the
 * rows are written, so another worker process never waits for our fsync).
 */
import { createHash } from 'node:crypto';
import { deflateIfSmaller, inflate } from '../blob-codec.ts';
import { StorageError } from '../ports.ts';
import type {
  AppendInput,
  AppendResult,
  CopyResult,
  Envelope,
  EnvelopeAddress,
  Flag,
  FlagResult,
  FlagUpdate,
  Id,
  IndexColumns,
  IndexSnapshot,
  IndexSnapshotSource,
  IngestedMessage,
  MessageContent,
  MessageIndexEntry,
  MessagePage,
  MessagePageOptions,
  MessageParts,
  MessagePartsWanted,
  MessageRecord,
  MessageSortData,
  MessagesPort,
  MimeNode,
  Segment,
  SortDataWanted,
} from '../ports.ts';
import type { Db } from './driver.ts';
import { messagePage } from './message-pages.ts';
import { SEARCH_COLUMNS, searchColumnValues } from './search-schema.ts';

import { collectIndexColumns, packedIndexColumns } from '../mailbox-index/columns.ts';
import type { IndexRowReader, PackedIndexPage } from '../mailbox-index/columns.ts';
import { referencesField } from '../sort/references.ts';
import type { SqliteBlobs } from './blobs.ts';
import type { ChangeLog } from './changes.ts';
import { GroupCommit } from './group-commit.ts';
import { makePreview } from '../mime/preview.ts';
import type { SearchIndexer } from './search-indexer.ts';
import type { IndexSnapshotFiles } from './index-snapshots.ts';
import type { InflatedCache } from './inflated-cache.ts';
import type { MailboxRow } from './mailboxes.ts';
import { applyFlagAction, bool, hasFlag, jsonList, normalizeFlags, num, requireRowId, rowId, sameFlags, toId } from './common.ts';

const INSERT_SEARCH_ROW = `INSERT INTO message_search (message_id, ${SEARCH_COLUMNS.join(', ')}) VALUES (?${', ?'.repeat(SEARCH_COLUMNS.length)})`;

/** The row id AUTOINCREMENT gives the next message: one above the highest ever used (sqlite_sequence). */
const NEXT_MESSAGE_ID =
  "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), coalesce((SELECT max(id) FROM messages), 0)) + 1 AS id";

/** Columns for MessageRecord (no content, no search text). */
const RECORD_COLUMNS =
  'id, user_id, mailbox_id, uid, modseq, flags, internal_date, size, message_id, thread_id, header_date, subject, envelope, mime, has_attachments';

/** Columns copied verbatim by COPY (the preview too; the email id is set apart: see copy). */
const COPY_COLUMNS =
  'user_id, flags, seen, internal_date, size, message_id, thread_id, header_date, subject, envelope, mime, has_attachments, sha256, segments, inline, inline_codec, preview';

interface RecordRow {
  id: number;
  user_id: number;
  mailbox_id: number;
  uid: number;
  modseq: number;
  flags: string;
  internal_date: number;
  size: number;
  message_id: string | null;
  thread_id: number;
  header_date: number;
  subject: string;
  envelope: string;
  mime: string;
  has_attachments: number;
}

interface BriefRow {
  id: number;
  uid: number;
  modseq: number;
  flags: string;
  seen: number;
  size: number;
}

function toRecord(r: RecordRow): MessageRecord {
  return {
    id: toId(r.id),
    userId: toId(r.user_id),
    mailboxId: toId(r.mailbox_id),
    uid: num(r.uid),
    modseq: num(r.modseq),
    flags: JSON.parse(r.flags) as Flag[],
    internalDate: num(r.internal_date),
    size: num(r.size),
    messageId: r.message_id,
    threadId: toId(r.thread_id),
    headerDate: num(r.header_date),
    subject: r.subject,
    envelope: JSON.parse(r.envelope) as Envelope,
    mime: JSON.parse(r.mime) as MimeNode,
    hasAttachments: bool(r.has_attachments),
  };
}

interface ContentRow {
  segments: string;
  inline: Uint8Array;
  inline_codec: number;
}

/** A row of MessagesPort.parts: the UID and whichever wanted columns were selected. */
interface PartsRow extends Partial<ContentRow> {
  uid: number;
  id?: number;
  envelope?: string;
  mime?: string;
  email_id?: number | null;
  thread_id?: number;
  saved_date?: number | null;
  preview?: string | null;
  legacy_text?: string | null;
}

/** The content of a row; deflated inline bytes inflated once per message while `cache` keeps them (row id `id`). */
async function contentOf(r: ContentRow, id: number, cache: InflatedCache | null): Promise<MessageContent> {
  const segments = JSON.parse(r.segments) as Segment[];
  if (num(r.inline_codec) !== 1) return { inline: r.inline, segments };
  let inline = cache?.get(id);
  if (!inline) {
    inline = await inflate(r.inline);
    cache?.set(id, inline);
  }
  return { inline, segments };
}

/** A row of MessagesPort.sortData: the always-read columns and whichever wanted ones were selected. */
interface SortRow {
  uid: number;
  internal_date: number;
  size: number;
  header_date?: number;
  subject?: string | null;
  mid?: string | null;
  irt?: string | null;
  headers?: string | null;
}

interface IndexRow {
  uid: number;
  modseq: number;
  flags: string;
  size: number;
  internal_date: number;
}

/** Messages per packed page of the index (bounds the aggregated text to a few MB). */
const PACKED_PAGE_ROWS = 65_536;
/** One packed page (columns.ts PackedIndexPage) of a mailbox's index above a UID, read from the covering index. */
const PACKED_INDEX_PAGE = `
  SELECT count(*) AS count, max(uid) AS last, group_concat(uid) AS uids, group_concat(modseq) AS modseqs, group_concat(size) AS sizes,
    group_concat(internal_date) AS dates, group_concat(flags, char(10)) AS flags
  FROM (SELECT uid, modseq, size, internal_date, flags FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?)`;

const INDEX_ROW: IndexRowReader<IndexRow> = {
  uid: (r) => num(r.uid),
  modseq: (r) => num(r.modseq),
  size: (r) => num(r.size),
  internalDate: (r) => num(r.internal_date),
  flagsKey: (r) => r.flags,
  flags: (r) => JSON.parse(r.flags) as Flag[],
};

/** Message-ID as used for threading: surrounding whitespace and angle brackets removed. */
function threadRef(id: string): string | null {
  const t = id.trim().replace(/^<+/, '').replace(/>+$/, '').trim();
  return t ? createHash('sha256').update(t).digest('hex').slice(0, 32) : null;
}

function uniqueUids(uids: readonly number[]): number[] {
  return [...new Set(uids.filter((u) => Number.isSafeInteger(u) && u > 0))].sort((a, b) => a - b);
}

/** What an append computes before its transaction: canonical flags, the inline bytes deflated when that is smaller. */
interface PreparedMessage {
  flags: Flag[];
  seen: boolean;
  inline: { data: Uint8Array; deflated: boolean };
  segments: Segment[];
}

async function prepareMessage(input: AppendInput): Promise<PreparedMessage> {
  const flags = normalizeFlags(input.flags);
  return {
    flags,
    seen: hasFlag(flags, '\\Seen'),
    inline: await deflateIfSmaller(input.message.content.inline),
    segments: input.message.content.segments.map((s) => (s.blob === undefined ? { length: s.length } : { length: s.length, blob: s.blob })),
  };
}

export class SqliteMessages implements MessagesPort {
  #db: Db;
  #blobs: SqliteBlobs;
  #log: ChangeLog;
  #now: () => number;

  #group: GroupCommit;
  /** Writes the new search rows into the FTS indexes after the commit (search-indexer.ts). */
  #indexer: SearchIndexer | null;
  /** Saved mailbox index snapshots (index-snapshots.ts); none without a data directory. */
  #snapshots: IndexSnapshotFiles | null;
  /** Inflated inline bytes of messages read lately (inflated-cache.ts); none: inflate on every read. */
  #inflated: InflatedCache | null;

  constructor(
    db: Db,
    blobs: SqliteBlobs,
    log: ChangeLog,
    now: () => number,
    group: GroupCommit = new GroupCommit(db, { durable: false }),
    indexer: SearchIndexer | null = null,
    snapshots: IndexSnapshotFiles | null = null,
    inflated: InflatedCache | null = null,
  ) {
    this.#snapshots = snapshots;
    this.#inflated = inflated;
    this.#group = group;
    this.#indexer = indexer;
    this.#db = db;
    this.#blobs = blobs;
    this.#log = log;
    this.#now = now;
  }

  #mailbox(id: Id): MailboxRow {
    const n = requireRowId(id, 'mailbox');
    const r = this.#db.get<MailboxRow>('SELECT * FROM mailboxes WHERE id = ?', n);
    if (!r) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    return r;
  }

  /** Bumps the mailbox modseq (and counters by the given deltas); returns the new modseq. */
  #bump(mailboxId: number, d: { uids?: number; messages?: number; unseen?: number; size?: number } = {}): { modseq: number; uidNext: number; uidValidity: number } {
    const r = this.#db.get<{ highest_modseq: number; uid_next: number; uid_validity: number }>(
      `UPDATE mailboxes SET highest_modseq = highest_modseq + 1, uid_next = uid_next + ?, message_count = message_count + ?,
         unseen_count = unseen_count + ?, total_size = total_size + ?
       WHERE id = ? RETURNING highest_modseq, uid_next, uid_validity`,
      d.uids ?? 0,
      d.messages ?? 0,
      d.unseen ?? 0,
      d.size ?? 0,
      mailboxId,
    );
    if (!r) throw new StorageError('NONEXISTENT', `mailbox ${mailboxId} does not exist`);
    return { modseq: num(r.highest_modseq), uidNext: num(r.uid_next), uidValidity: num(r.uid_validity) };
  }

  #usage(userId: number, size: number, messages: number): void {
    if (size === 0 && messages === 0) return;
    this.#db.run('UPDATE users SET storage_used = storage_used + ?, messages_used = messages_used + ? WHERE id = ?', size, messages, userId);
  }

  /** Inside a transaction: the FTS indexes follow in a batch after it commits (search-indexer.ts), new rows and expunged ones. */
  #indexLater(): void {
    this.#indexer?.schedule();
  }

  /**
   * Inside a transaction: the id of the thread the message joins (found through References/In-Reply-To/Message-ID of
   * earlier messages) and the row id it is inserted with. A message that joins no thread starts one named by its own
   * row id (never reused; migration 12 set the ids above every thread id of the former threads table), taken here:
   * AUTOINCREMENT would give the row the next id after the highest ever used.
   */
  #thread(userId: number, message: IngestedMessage): { threadId: number; rowId: number | null } {
    const db = this.#db;
    const refs = [...new Set([...message.references, ...(message.messageId ? [message.messageId] : [])].map(threadRef).filter((r): r is string => r !== null))];
    let found: number | null = null;
    if (refs.length === 1) {
      found = db.get<{ thread_id: number }>('SELECT thread_id FROM thread_refs WHERE user_id = ? AND ref = ?', userId, refs[0]!)?.thread_id ?? null;
    } else if (refs.length > 1) {
      found =
        db.get<{ thread_id: number | null }>(
          'SELECT min(thread_id) AS thread_id FROM thread_refs WHERE user_id = ? AND ref IN (SELECT value FROM json_each(?))',
          userId,
          jsonList(refs),
        )?.thread_id ?? null;
    }
    const rowId = found === null ? num(db.get<{ id: number }>(NEXT_MESSAGE_ID)!.id) : null;
    const threadId = found === null ? rowId! : num(found);
    for (const ref of refs) {
      db.run('INSERT OR IGNORE INTO thread_refs (user_id, ref, thread_id) VALUES (?, ?, ?)', userId, ref, threadId);
    }
    return { threadId, rowId };
  }

  /** The mailbox of an append (or restore) in the group's transaction, refused when it is another user's. */
  #ownMailbox(input: AppendInput, userId: number): MailboxRow {
    const mbox = this.#mailbox(input.mailboxId);
    if (num(mbox.user_id) !== userId) throw new StorageError('NONEXISTENT', `mailbox ${input.mailboxId} does not belong to user ${input.userId}`);
    return mbox;
  }

  /**
   * Inside a transaction: the rows of a new message at `uid` with `modseq` (message, search text, thread references,
   * blob references) and the user's usage. The mailbox's allocators and counters are the caller's.
   */
  #insert(userId: number, mailboxId: number, input: AppendInput, prepared: PreparedMessage, uid: number, modseq: number): { id: number; threadId: number } {
    const db = this.#db;
    const { message } = input;
    const { threadId, rowId: newId } = this.#thread(userId, message);
    const { lastInsertRowid } = db.run(
      `INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, seen, internal_date, size, message_id, thread_id,
         header_date, subject, envelope, mime, has_attachments, sha256, segments, inline, inline_codec, saved_date, preview)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      newId,
      userId,
      mailboxId,
      uid,
      modseq,
      JSON.stringify(prepared.flags),
      prepared.seen,
      input.internalDate,
      message.size,
      message.messageId,
      threadId,
      message.headerDate ?? input.internalDate,
      message.subject,
      JSON.stringify(message.envelope),
      JSON.stringify(message.mime),
      message.hasAttachments,
      message.sha256,
      JSON.stringify(prepared.segments),
      prepared.inline.data,
      prepared.inline.deflated ? 1 : 0,
      input.savedDate ?? this.#now(),
      message.preview,
    );
    const id = num(lastInsertRowid);
    db.run(INSERT_SEARCH_ROW, id, ...searchColumnValues(message.searchHeaders, message.searchText));
    this.#indexLater();
    this.#blobs.commitRefs(id, message);
    this.#usage(userId, message.size, 1);
    return { id, threadId };
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const userId = requireRowId(input.userId, 'user');
    const prepared = await prepareMessage(input);
    // grouped with the appends arriving together: one transaction, one fsync (group-commit.ts)
    return this.#group.run(() => {
      const mbox = this.#ownMailbox(input, userId);
      const alloc = this.#bump(mbox.id, { uids: 1, messages: 1, unseen: prepared.seen ? 0 : 1, size: input.message.size });
      const uid = alloc.uidNext - 1;
      const { id, threadId } = this.#insert(userId, mbox.id, input, prepared, uid, alloc.modseq);
      this.#log.add({ userId, mailboxId: mbox.id, type: 'exists', modseq: alloc.modseq, uid, flags: prepared.flags }, this.#now());
      return { id: toId(id), uid, modseq: alloc.modseq, uidValidity: alloc.uidValidity, threadId: toId(threadId) };
    });
  }

  /**
   * Storage copy (restore.ts, RestorePort.message): stores the message at its given UID and modseq, raising the
   * mailbox's UIDNEXT and HIGHESTMODSEQ to cover them, with counters, usage and blob references as an append and no
   * change-log entry. False (nothing written) when the mailbox holds the UID already.
   */
  async restore(input: AppendInput & { uid: number; modseq: number }): Promise<boolean> {
    const userId = requireRowId(input.userId, 'user');
    const prepared = await prepareMessage(input);
    return this.#group.run(() => {
      const mbox = this.#ownMailbox(input, userId);
      if (this.#db.get('SELECT 1 AS x FROM messages WHERE mailbox_id = ? AND uid = ?', mbox.id, input.uid)) return false;
      this.#db.run(
        `UPDATE mailboxes SET uid_next = max(uid_next, ?), highest_modseq = max(highest_modseq, ?), message_count = message_count + 1,
           unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?`,
        input.uid + 1,
        input.modseq,
        prepared.seen ? 0 : 1,
        input.message.size,
        mbox.id,
      );
      this.#insert(userId, mbox.id, input, prepared, input.uid, input.modseq);
      return true;
    });
  }

  /** Storage copy (RestorePort.flags): a message's flags and modseq as given, no change-log entry. False: no such UID. */
  async restoreFlags(mailboxId: Id, uid: number, flags: Flag[], modseq: number): Promise<boolean> {
    const canonical = normalizeFlags(flags);
    const seen = hasFlag(canonical, '\\Seen');
    return this.#group.run(() => {
      const mbox = this.#mailbox(mailboxId);
      const row = this.#sourceRows(mbox, [uid])[0];
      if (!row) return false;
      this.#db.run('UPDATE messages SET flags = ?, seen = ?, modseq = ? WHERE id = ?', JSON.stringify(canonical), seen, modseq, row.id);
      const unseen = seen === bool(row.seen) ? 0 : seen ? -1 : 1;
      this.#db.run('UPDATE mailboxes SET highest_modseq = max(highest_modseq, ?), unseen_count = unseen_count + ? WHERE id = ?', modseq, unseen, mbox.id);
      return true;
    });
  }

  async get(mailboxId: Id, uid: number): Promise<MessageRecord | null> {
    const n = rowId(mailboxId);
    if (n === null) return null;
    const r = this.#db.get<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ?`, n, uid);
    return r ? toRecord(r) : null;
  }

  async parts(mailboxId: Id, uids: readonly number[], wanted: MessagePartsWanted): Promise<MessageParts[]> {
    const n = rowId(mailboxId);
    const sorted = uniqueUids(uids);
    if (n === null || sorted.length === 0) return [];
    const columns = ['uid'];
    if (wanted.envelope) columns.push('envelope');
    if (wanted.mime) columns.push('mime');
    if (wanted.content) columns.push('id', 'segments', 'inline', 'inline_codec');
    if (wanted.ids) columns.push('coalesce(email_id, id) AS email_id', 'thread_id');
    if (wanted.savedDate) columns.push('coalesce(saved_date, internal_date) AS saved_date');
    // a row stored before previews were (migration 15) gets one from its stored search text
    if (wanted.preview) columns.push('preview', 'CASE WHEN preview IS NULL THEN (SELECT body FROM message_search WHERE message_id = messages.id) END AS legacy_text');
    const first = sorted[0]!;
    const last = sorted[sorted.length - 1]!;
    // a run of UIDs (FETCH 1:64) as a range of the (mailbox_id, uid) index, any other set through json_each
    const rows =
      last - first + 1 === sorted.length
        ? this.#db.all<PartsRow>(`SELECT ${columns.join(', ')} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`, n, first, last)
        : this.#db.all<PartsRow>(`SELECT ${columns.join(', ')} FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid`, n, jsonList(sorted));
    const out: MessageParts[] = [];
    for (const r of rows) {
      const parts: MessageParts = { uid: num(r.uid) };
      if (wanted.envelope) parts.envelope = JSON.parse(r.envelope!) as Envelope;
      if (wanted.mime) parts.mime = JSON.parse(r.mime!) as MimeNode;
      if (wanted.content) parts.content = await contentOf(r as ContentRow, num(r.id!), this.#inflated);
      if (wanted.ids) {
        parts.emailId = toId(r.email_id!);
        parts.threadId = toId(r.thread_id!);
      }
      if (wanted.savedDate) parts.savedDate = num(r.saved_date!);
      if (wanted.preview) parts.preview = r.preview ?? makePreview([r.legacy_text ?? '']);
      out.push(parts);
    }
    return out;
  }

  async sortData(mailboxId: Id, uids: readonly number[], wanted: SortDataWanted = {}): Promise<MessageSortData[]> {
    const n = rowId(mailboxId);
    const sorted = uniqueUids(uids);
    if (n === null || sorted.length === 0) return [];
    const columns = ['m.uid', 'm.internal_date', 'm.size'];
    if (wanted.date || wanted.threading) columns.push('m.header_date');
    if (wanted.subject || wanted.threading) columns.push('m.subject');
    const fields = (['from', 'to', 'cc'] as const).filter((field) => wanted[field]);
    // the first address as three scalars (SQLite parses the envelope once per row for all of them)
    for (const field of fields) for (const part of ['name', 'mailbox', 'host']) columns.push(`json_extract(m.envelope, '$.${field}[0].${part}') AS ${field}_${part}`);
    for (const field of fields) columns.push(`json_type(m.envelope, '$.${field}[0]') AS ${field}_type`);
    if (wanted.threading) columns.push(`json_extract(m.envelope, '$.messageId') AS mid`, `json_extract(m.envelope, '$.inReplyTo') AS irt`, 's.headers');
    const from = wanted.threading ? 'messages m LEFT JOIN message_search s ON s.message_id = m.id' : 'messages m';
    const first = sorted[0]!;
    const last = sorted[sorted.length - 1]!;
    // a dense set (SORT ALL) as a range of the (mailbox_id, uid) index, a sparse one through json_each
    const dense = last - first + 1 <= sorted.length * 4;
    const rows = dense
      ? this.#db.all<SortRow>(`SELECT ${columns.join(', ')} FROM ${from} WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid`, n, first, last)
      : this.#db.all<SortRow>(`SELECT ${columns.join(', ')} FROM ${from} WHERE m.mailbox_id = ? AND m.uid IN (SELECT value FROM json_each(?)) ORDER BY m.uid`, n, jsonList(sorted));
    const wantedUids = dense && last - first + 1 !== sorted.length ? new Set(sorted) : null;
    const out: MessageSortData[] = [];
    for (const r of rows) {
      const uid = num(r.uid);
      if (wantedUids && !wantedUids.has(uid)) continue;
      const data: MessageSortData = { uid, internalDate: num(r.internal_date), size: num(r.size) };
      if (r.header_date !== undefined) data.headerDate = num(r.header_date);
      if (r.subject !== undefined) data.subject = r.subject ?? '';
      for (const field of fields) {
        const row = r as unknown as Record<string, string | null>;
        data[field] = row[`${field}_type`] === 'object' ? { name: row[`${field}_name`] ?? null, adl: null, mailbox: row[`${field}_mailbox`] ?? null, host: row[`${field}_host`] ?? null } : null;
      }
      if (wanted.threading) {
        data.messageId = r.mid ?? null;
        data.inReplyTo = r.irt ?? null;
        data.references = referencesField(r.headers);
      }
      out.push(data);
    }
    return out;
  }

  async getById(id: Id): Promise<MessageRecord | null> {
    const n = rowId(id);
    if (n === null) return null;
    const r = this.#db.get<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM messages WHERE id = ?`, n);
    return r ? toRecord(r) : null;
  }

  async index(mailboxId: Id, options: { changedSince?: number } = {}): Promise<MessageIndexEntry[]> {
    const n = rowId(mailboxId);
    if (n === null) return [];
    const rows =
      options.changedSince !== undefined
        ? this.#db.all<{ uid: number; modseq: number; flags: string; size: number; internal_date: number }>(
            'SELECT uid, modseq, flags, size, internal_date FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid',
            n,
            options.changedSince,
          )
        : this.#db.all<{ uid: number; modseq: number; flags: string; size: number; internal_date: number }>(
            'SELECT uid, modseq, flags, size, internal_date FROM messages WHERE mailbox_id = ? ORDER BY uid',
            n,
          );
    return rows.map((r) => ({
      uid: num(r.uid),
      modseq: num(r.modseq),
      flags: JSON.parse(r.flags) as Flag[],
      size: num(r.size),
      internalDate: num(r.internal_date),
    }));
  }

  async page(mailboxId: Id, options: MessagePageOptions): Promise<MessagePage> {
    return messagePage(this.#db, rowId(mailboxId), options);
  }

  async indexColumns(mailboxId: Id, options: { afterUid?: number; throughChange?: number } = {}): Promise<IndexColumns> {
    const n = rowId(mailboxId);
    const afterUid = options.afterUid ?? 0;
    if (n === null) return collectIndexColumns([], INDEX_ROW);
    // pages of aggregated text from the covering index (migration 7): no object per message
    const pages: PackedIndexPage[] = [];
    for (let after = afterUid; ; ) {
      const page = this.#db.get<PackedIndexPage & { last: number | null }>(PACKED_INDEX_PAGE, n, after, PACKED_PAGE_ROWS);
      if (!page || num(page.count) === 0) break;
      pages.push({ ...page, count: num(page.count) });
      if (num(page.count) < PACKED_PAGE_ROWS) break;
      after = num(page.last);
    }
    const packed = packedIndexColumns(pages, (key) => JSON.parse(key) as Flag[]);
    if (packed) return packed;
    const rows = this.#db.all<IndexRow>('SELECT uid, modseq, flags, size, internal_date FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid', n, afterUid);
    return collectIndexColumns(rows, INDEX_ROW);
  }

  async indexSnapshot(mailboxId: Id): Promise<IndexSnapshotSource | null> {
    const n = rowId(mailboxId);
    return n === null || !this.#snapshots ? null : this.#snapshots.read(n);
  }

  async saveIndexSnapshot(mailboxId: Id, snapshot: IndexSnapshot): Promise<void> {
    const n = rowId(mailboxId);
    if (n !== null) this.#snapshots?.save(n, snapshot);
  }

  async content(id: Id): Promise<MessageContent | null> {
    const n = rowId(id);
    if (n === null) return null;
    const r = this.#db.get<ContentRow>(
      'SELECT segments, inline, inline_codec FROM messages WHERE id = ?',
      n,
    );
    return r ? contentOf(r, n, this.#inflated) : null;
  }

  async searchText(id: Id): Promise<string | null> {
    const n = rowId(id);
    if (n === null) return null;
    return this.#db.get<{ body: string }>('SELECT body FROM message_search WHERE message_id = ?', n)?.body ?? null;
  }

  async setFlags(mailboxId: Id, uids: number[], update: FlagUpdate): Promise<FlagResult> {
    const db = this.#db;
    const wanted = uniqueUids(uids);
    return this.#group.runOrdered(() => {
      const mbox = this.#mailbox(mailboxId);
      const result: FlagResult = { changed: [], modified: [] };
      if (wanted.length === 0) return result;
      const rows = db.all<BriefRow>(
        'SELECT id, uid, modseq, flags, seen, size FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid',
        mbox.id,
        jsonList(wanted),
      );
      const pending: Array<{ row: BriefRow; flags: Flag[]; seen: boolean }> = [];
      let unseenDelta = 0;
      for (const row of rows) {
        if (update.unchangedSince !== undefined && num(row.modseq) > update.unchangedSince) {
          result.modified.push(num(row.uid));
          continue;
        }
        const current = JSON.parse(row.flags) as Flag[];
        const next = applyFlagAction(current, update.action, update.flags);
        if (sameFlags(current, next)) continue;
        const seen = hasFlag(next, '\\Seen');
        if (seen !== bool(row.seen)) unseenDelta += seen ? -1 : 1;
        pending.push({ row, flags: next, seen });
      }
      if (pending.length === 0) return result;
      const { modseq } = this.#bump(mbox.id, { unseen: unseenDelta });
      const now = this.#now();
      for (const p of pending) {
        db.run('UPDATE messages SET flags = ?, seen = ?, modseq = ? WHERE id = ?', JSON.stringify(p.flags), p.seen, modseq, p.row.id);
        const uid = num(p.row.uid);
        this.#log.add({ userId: mbox.user_id, mailboxId: mbox.id, type: 'flags', modseq, uid, flags: p.flags }, now);
        result.changed.push({ uid, flags: p.flags, modseq });
      }
      return result;
    });
  }

  #sourceRows(mbox: MailboxRow, uids: number[]): BriefRow[] {
    if (uids.length === 0) return [];
    return this.#db.all<BriefRow>(
      'SELECT id, uid, modseq, flags, seen, size FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid',
      mbox.id,
      jsonList(uids),
    );
  }

  #pair(fromMailboxId: Id, toMailboxId: Id): [MailboxRow, MailboxRow] {
    const src = this.#mailbox(fromMailboxId);
    const dst = this.#mailbox(toMailboxId);
    if (num(src.user_id) !== num(dst.user_id)) throw new StorageError('CANNOT', 'messages cannot be copied between users');
    return [src, dst];
  }

  static #totals(rows: BriefRow[]): { size: number; unseen: number } {
    let size = 0;
    let unseen = 0;
    for (const r of rows) {
      size += num(r.size);
      if (!bool(r.seen)) unseen++;
    }
    return { size, unseen };
  }

  async copy(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult> {
    const db = this.#db;
    const wanted = uniqueUids(uids);
    return this.#group.runOrdered(() => {
      const [src, dst] = this.#pair(fromMailboxId, toMailboxId);
      const rows = this.#sourceRows(src, wanted);
      if (rows.length === 0) return { uidValidity: num(dst.uid_validity), mappings: [], modseq: num(dst.highest_modseq) };
      const { size, unseen } = SqliteMessages.#totals(rows);
      const alloc = this.#bump(dst.id, { uids: rows.length, messages: rows.length, unseen, size });
      const first = alloc.uidNext - rows.length;
      const now = this.#now();
      const mappings = rows.map((row, i) => {
        const uid = first + i;
        const { lastInsertRowid: id } = db.run(
          // the copy shares the original's email id (RFC 8474; an original's is its own id, email_id NULL: migration 15)
          `INSERT INTO messages (mailbox_id, uid, modseq, saved_date, email_id, ${COPY_COLUMNS}) SELECT ?, ?, ?, ?, coalesce(email_id, id), ${COPY_COLUMNS} FROM messages WHERE id = ?`,
          dst.id,
          uid,
          alloc.modseq,
          now,
          row.id,
        );
        db.run(`INSERT INTO message_search (message_id, ${SEARCH_COLUMNS.join(', ')}) SELECT ?, ${SEARCH_COLUMNS.join(', ')} FROM message_search WHERE message_id = ?`, id, row.id);
        this.#indexLater();
        this.#blobs.copyRefs(row.id, id);
        this.#log.add({ userId: dst.user_id, mailboxId: dst.id, type: 'exists', modseq: alloc.modseq, uid, flags: JSON.parse(row.flags) as Flag[] }, now);
        return { sourceUid: num(row.uid), destinationUid: uid };
      });
      this.#usage(dst.user_id, size, rows.length);
      return { uidValidity: alloc.uidValidity, mappings, modseq: alloc.modseq };
    });
  }

  async move(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult> {
    const db = this.#db;
    const wanted = uniqueUids(uids);
    return this.#group.runOrdered(() => {
      const [src, dst] = this.#pair(fromMailboxId, toMailboxId);
      const rows = this.#sourceRows(src, wanted);
      if (rows.length === 0) return { uidValidity: num(dst.uid_validity), mappings: [], modseq: num(dst.highest_modseq) };
      const { size, unseen } = SqliteMessages.#totals(rows);
      // Source first: the message rows keep their id (and blob references); only mailbox, UID and modseq change.
      const out = this.#bump(src.id, { messages: -rows.length, unseen: -unseen, size: -size });
      const alloc = this.#bump(dst.id, { uids: rows.length, messages: rows.length, unseen, size });
      const first = alloc.uidNext - rows.length;
      const now = this.#now();
      const mappings = rows.map((row, i) => {
        const uid = first + i;
        db.run('UPDATE messages SET mailbox_id = ?, uid = ?, modseq = ?, saved_date = ? WHERE id = ?', dst.id, uid, alloc.modseq, now, row.id);
        return { sourceUid: num(row.uid), destinationUid: uid, flags: JSON.parse(row.flags) as Flag[] };
      });
      for (const m of mappings) {
        this.#log.add({ userId: src.user_id, mailboxId: src.id, type: 'expunge', modseq: out.modseq, uid: m.sourceUid }, now);
      }
      for (const m of mappings) {
        this.#log.add({ userId: dst.user_id, mailboxId: dst.id, type: 'exists', modseq: alloc.modseq, uid: m.destinationUid, flags: m.flags }, now);
      }
      return {
        uidValidity: alloc.uidValidity,
        mappings: mappings.map(({ sourceUid, destinationUid }) => ({ sourceUid, destinationUid })),
        modseq: alloc.modseq,
      };
    });
  }

  /**
   * Removes these UIDs of the mailbox in an ordered group (blob references, usage, search rows follow), then `counted`
   * updates the mailbox for what was removed. Returns the removed UIDs.
   */
  #remove(mailboxId: Id, uids: number[], counted: (mbox: MailboxRow, removed: number[], totals: { size: number; unseen: number }) => void): Promise<number[]> {
    const wanted = uniqueUids(uids);
    return this.#group.runOrdered(() => {
      const mbox = this.#mailbox(mailboxId);
      const rows = this.#sourceRows(mbox, wanted);
      if (rows.length === 0) return [];
      const totals = SqliteMessages.#totals(rows);
      const ids = jsonList(rows.map((r) => num(r.id)));
      this.#blobs.releaseRefs(this.#blobs.refsOf('m.id IN (SELECT value FROM json_each(?))', ids));
      this.#db.run('DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))', ids);
      this.#indexLater(); // the expunged rows leave the search indexes in a later batch
      this.#usage(mbox.user_id, -totals.size, -rows.length);
      const removed = rows.map((r) => num(r.uid));
      counted(mbox, removed, totals);
      return removed;
    });
  }

  async expunge(mailboxId: Id, uids: number[]): Promise<number[]> {
    return this.#remove(mailboxId, uids, (mbox, removed, { size, unseen }) => {
      const { modseq } = this.#bump(mbox.id, { messages: -removed.length, unseen: -unseen, size: -size });
      const now = this.#now();
      for (const uid of removed) this.#log.add({ userId: mbox.user_id, mailboxId: mbox.id, type: 'expunge', modseq, uid }, now);
    });
  }

  /** Storage copy (RestorePort.expunge): removes these UIDs like an expunge, without a new modseq or change-log entry. */
  async restoreExpunge(mailboxId: Id, uids: number[]): Promise<number[]> {
    return this.#remove(mailboxId, uids, (mbox, removed, { size, unseen }) => {
      this.#db.run(
        'UPDATE mailboxes SET message_count = message_count - ?, unseen_count = unseen_count - ?, total_size = total_size - ? WHERE id = ?',
        removed.length,
        unseen,
        size,
        mbox.id,
      );
    });
  }

  async findByMessageId(mailboxId: Id, messageId: string): Promise<MessageRecord | null> {
    const n = rowId(mailboxId);
    if (n === null) return null;
    const r = this.#db.get<RecordRow>(
      `SELECT ${RECORD_COLUMNS} FROM messages WHERE mailbox_id = ? AND message_id = ? ORDER BY uid LIMIT 1`,
      n,
      messageId,
    );
    return r ? toRecord(r) : null;
  }

  async threadCounts(userId: Id, threadIds: Id[]): Promise<Map<Id, number>> {
    const out = new Map<Id, number>(threadIds.map((id) => [id, 0]));
    const user = rowId(userId);
    const ids = [...new Set(threadIds.map(rowId).filter((n): n is number => n !== null))];
    if (user === null || ids.length === 0) return out;
    const rows = this.#db.all<{ thread_id: number; n: number }>(
      'SELECT thread_id, count(*) AS n FROM messages WHERE user_id = ? AND thread_id IN (SELECT value FROM json_each(?)) GROUP BY thread_id',
      user,
      JSON.stringify(ids),
    );
    for (const r of rows) out.set(toId(r.thread_id), num(r.n));
    return out;
  }
}
