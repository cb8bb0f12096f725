/**
 * Messages on MongoDB, without multi-document transactions (storage/mongodb/README.md "Consistency without
 * transactions" has the model). Every write that allocates UIDs or a modseq is ordered by the change log
 * (changes.ts `mailboxWrite`), and its steps come in an order where a crash leaves only what `quota recalc` repairs:
 *
 * - append: blob references and the thread references; then the UID and modseq (`mailboxWrite`), the search
 *   document, the inline bytes (`messagecontent`, written once), the message document (now the message is visible),
 *   its `exists` entry and the counters. A failure before the message document undoes what came before it; what a
 *   crash leaves, `quota recalc` finds by the search document (users.ts).
 * - copy: the same, with the bytes, search text and blob references of the source messages, a chunk at a time.
 * - move: a copy, then an expunge of the source (a crash between leaves the message in both mailboxes).
 * - expunge: each message document deleted (the deleter learns what it removed), then the modseq, the `expunge`
 *   entries, the counters, and the content, search documents and blob references.
 * - setFlags: the modseq first, then each message updated only if unchanged since it was read (its modseq); one
 *   changed meanwhile is read again and changed under a later modseq.
 *
 * A message's `seq` is the change-log sequence number of its `exists` entry, so `indexColumns({ throughChange })`
 * returns exactly the messages whose entries a reader's cursor covers.
 */
import { Binary, ObjectId } from 'mongodb';
import type { Filter } from 'mongodb';
import { deflateIfSmaller, inflate } from '../blob-codec.ts';
import { concatBytes } from '../bytes.ts';
import { StorageError } from '../ports.ts';
import type {
  AppendInput,
  AppendResult,
  CopyResult,
  Flag,
  FlagResult,
  FlagUpdate,
  Id,
  IndexColumns,
  MessageContent,
  MessageIndexEntry,
  MessagePage,
  MessagePageOptions,
  MessageParts,
  MessagePartsWanted,
  MessageRecord,
  MessageSortData,
  MessagesPort,
  SortDataWanted,
} from '../ports.ts';
import { referencesField } from '../sort/references.ts';
import { collectIndexColumns } from '../mailbox-index/columns.ts';
import type { IndexRowReader } from '../mailbox-index/columns.ts';
import { applyFlagAction, hasFlag, normalizeFlags, sameFlags } from '../sqlite/common.ts';
import { countRefs } from './blobs.ts';
import type { MongoBlobs } from './blobs.ts';
import { bytesOf } from './bytes.ts';
import type { MailboxAllocation, MongoChangeLog, NewChange } from './changes.ts';
import type { ContentDoc, MailboxDoc, MessageDoc, MongoCollections, SearchDoc } from './collections.ts';
import { isDuplicateKey, mongoCall } from './errors.ts';
import { idOf, objectId, requireObjectId } from './ids.ts';
import { searchDoc } from './search.ts';
import { threadFor } from './threads.ts';
import { makePreview } from '../mime/preview.ts';

/** Bytes of (possibly deflated) inline message bytes per `messagecontent` document: far below the 16 MiB limit. */
export const CONTENT_PIECE_SIZE = 1024 * 1024;

/** Messages per step of a copy, move or expunge: each step is one `mailboxWrite`, written well within `gapWaitMs`. */
export const WRITE_CHUNK = 256;

/** Rounds of a flag change that keeps meeting concurrent changes of the same messages before it gives up. */
const FLAG_ROUNDS = 16;

const SEEN = '\\Seen';
const FLAGGED = '\\Flagged';

/** Fields of a MessageRecord (no segments, no blob list, no content layout). */
const RECORD_PROJECTION = {
  user: 1,
  mailbox: 1,
  uid: 1,
  modseq: 1,
  flags: 1,
  internalDate: 1,
  size: 1,
  messageId: 1,
  thread: 1,
  headerDate: 1,
  subject: 1,
  envelope: 1,
  mime: 1,
  hasAttachments: 1,
} as const;

const ENTRY_PROJECTION = { _id: 0, uid: 1, modseq: 1, flags: 1, size: 1, internalDate: 1 } as const;

type RecordDoc = Pick<MessageDoc, '_id' | keyof typeof RECORD_PROJECTION>;
type EntryDoc = Pick<MessageDoc, 'uid' | 'modseq' | 'flags' | 'size' | 'internalDate'>;
type ContentRef = Pick<MessageDoc, '_id' | 'segments' | 'inline'>;

function toRecord(d: RecordDoc): MessageRecord {
  return {
    id: idOf(d._id),
    userId: idOf(d.user),
    mailboxId: idOf(d.mailbox),
    uid: d.uid,
    modseq: d.modseq,
    flags: d.flags,
    internalDate: d.internalDate,
    size: d.size,
    messageId: d.messageId,
    threadId: idOf(d.thread),
    headerDate: d.headerDate,
    subject: d.subject,
    envelope: d.envelope,
    mime: d.mime,
    hasAttachments: d.hasAttachments,
  };
}

function toEntry(d: EntryDoc): MessageIndexEntry {
  return { uid: d.uid, modseq: d.modseq, flags: d.flags, size: d.size, internalDate: d.internalDate };
}

const INDEX_ROW: IndexRowReader<EntryDoc> = {
  uid: (d) => d.uid,
  modseq: (d) => d.modseq,
  size: (d) => d.size,
  internalDate: (d) => d.internalDate,
  flagsKey: (d) => d.flags.join('\n'),
  flags: (d) => d.flags,
};

function uniqueUids(uids: readonly number[]): number[] {
  return [...new Set(uids.filter((u) => Number.isSafeInteger(u) && u > 0))].sort((a, b) => a - b);
}

/** A filter on UIDs: a range of the { mailbox, uid } index for a run (FETCH 1:64), else a list. */
function uidFilter(sorted: readonly number[]): number | { $gte: number; $lte: number } | { $in: number[] } {
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (first === last) return first;
  return last - first + 1 === sorted.length ? { $gte: first, $lte: last } : { $in: [...sorted] };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Message count, unseen count and size of some messages (counter deltas). */
function totals(docs: ReadonlyArray<Pick<MessageDoc, 'flags' | 'size'>>): { messages: number; unseen: number; size: number } {
  let unseen = 0;
  let size = 0;
  for (const d of docs) {
    size += d.size;
    if (!d.flags.includes(SEEN)) unseen++;
  }
  return { messages: docs.length, unseen, size };
}

/** Runs a clean-up that must not hide the error being reported. */
async function quietly(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch {
    // left for `quota recalc`
  }
}

export class MongoMessages implements MessagesPort {
  readonly #c: MongoCollections;
  readonly #log: MongoChangeLog;
  readonly #blobs: MongoBlobs;

  constructor(c: MongoCollections, log: MongoChangeLog, blobs: MongoBlobs) {
    this.#c = c;
    this.#log = log;
    this.#blobs = blobs;
  }

  async #mailbox(id: Id): Promise<MailboxDoc> {
    const oid = requireObjectId(id, 'mailbox');
    const doc = await this.#c.mailboxes.findOne({ _id: oid });
    if (!doc) throw new StorageError('NONEXISTENT', `mailbox ${id} does not exist`);
    return doc;
  }

  /** Counters by `$inc`: the mailbox's message, unseen and size counters and the user's usage. */
  async #count(user: ObjectId, mailbox: ObjectId, d: { messages: number; unseen: number; size: number }): Promise<void> {
    if (d.messages === 0 && d.unseen === 0 && d.size === 0) return;
    await Promise.all([
      this.#c.mailboxes.updateOne({ _id: mailbox }, { $inc: { messages: d.messages, unseen: d.unseen, size: d.size } }),
      this.#c.users.updateOne({ _id: user }, { $inc: { storageUsed: d.size, messagesUsed: d.messages } }),
    ]);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Content
  // -------------------------------------------------------------------------------------------------------------

  /** Writes a message's inline bytes (`stored`: deflateIfSmaller of `size` bytes) as pieces; returns MessageDoc.inline. */
  async #writeContent(message: ObjectId, size: number, stored: { data: Uint8Array; deflated: boolean }): Promise<MessageDoc['inline']> {
    const docs: ContentDoc[] = [];
    for (let at = 0, n = 0; at < stored.data.byteLength; at += CONTENT_PIECE_SIZE, n++) {
      docs.push({ _id: new ObjectId(), message, n, data: new Binary(stored.data.subarray(at, at + CONTENT_PIECE_SIZE)) });
    }
    if (docs.length > 0) await this.#c.messageContent.insertMany(docs);
    return { size, pieces: docs.length, deflated: stored.deflated };
  }

  /** The content of these messages, by message id (one query for all their pieces). */
  async #contents(docs: readonly ContentRef[]): Promise<Map<string, MessageContent>> {
    const out = new Map<string, MessageContent>();
    if (docs.length === 0) return out;
    const pieces = new Map<string, Uint8Array[]>();
    const withPieces = docs.filter((d) => d.inline.pieces > 0).map((d) => d._id);
    if (withPieces.length > 0) {
      const found = await this.#c.messageContent.find({ message: { $in: withPieces } }, { projection: { _id: 0, message: 1, n: 1, data: 1 } }).sort({ message: 1, n: 1 }).toArray();
      for (const p of found) {
        const key = p.message.toHexString();
        const list = pieces.get(key) ?? [];
        list[p.n] = bytesOf(p.data);
        pieces.set(key, list);
      }
    }
    for (const d of docs) {
      const key = d._id.toHexString();
      const list = pieces.get(key) ?? [];
      if (list.length !== d.inline.pieces || list.some((p) => p === undefined)) throw new Error(`message ${key}: content pieces missing`);
      const stored = concatBytes(list);
      out.set(key, { inline: d.inline.deflated ? await inflate(stored) : stored, segments: d.segments });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------------------------------------------

  append(input: AppendInput): Promise<AppendResult> {
    return mongoCall(async () => {
      let alloc: Awaited<ReturnType<MongoChangeLog['mailboxWrite']>> | null = null;
      const { doc } = (await this.#write(input, {
        place: async (user, mailbox) => {
          alloc = await this.#log.mailboxWrite(user, mailbox, { uids: 1, entries: 1 });
          return { uid: alloc.uid, modseq: alloc.modseq, seq: alloc.seq };
        },
        giveUp: (user) => this.#log.giveUp(user, alloc!.seq, 1),
        uncertain: (d) => this.#log.writeLater(d.user, alloc!.seq, [{ mailbox: d.mailbox, type: 'exists', modseq: d.modseq, uid: d.uid, flags: d.flags }]),
      }))!;
      let a: MailboxAllocation = alloc!;
      if (this.#log.late(a.reservedAt)) {
        a = await this.#renumber([doc], a);
        await this.#count(doc.user, doc.mailbox, totals([doc]));
      } else {
        await Promise.all([
          this.#log.write(doc.user, a.seq, [{ mailbox: doc.mailbox, type: 'exists', modseq: a.modseq, uid: a.uid, flags: doc.flags }]),
          this.#count(doc.user, doc.mailbox, totals([doc])),
        ]);
      }
      return { id: idOf(doc._id), uid: a.uid, modseq: a.modseq, uidValidity: a.mailbox.uidValidity, threadId: idOf(doc.thread) };
    });
  }

  /**
   * New messages of one mailbox (`docs`, UIDs from `a.uid`) whose documents became visible later than readers may
   * pass their sequence numbers (`MongoChangeLog.late`: the database stalled under the write). A reader that passed
   * them loaded the later UIDs already and never loads a lower one, so the messages take new UIDs at the end of the
   * mailbox: their old numbers are given up, and the new write's entries expunge the old UIDs (for a reader that
   * loaded them meanwhile) and announce the new ones. Returns the new allocation; `docs` are updated in place.
   */
  async #renumber(docs: MessageDoc[], a: MailboxAllocation): Promise<MailboxAllocation> {
    const c = this.#c;
    const { user, mailbox } = docs[0]!;
    await quietly(() => this.#log.giveUp(user, a.seq, docs.length));
    let at = a;
    for (let attempt = 0; ; attempt++) {
      const b = await this.#log.mailboxWrite(user, mailbox, { uids: docs.length, entries: 2 * docs.length });
      const entries: NewChange[] = docs.map((d) => ({ mailbox, type: 'expunge', modseq: b.modseq, uid: d.uid }));
      for (const [i, d] of docs.entries()) {
        const uid = b.uid + i;
        const seq = b.seq + docs.length + i;
        await c.messageSearch.updateOne({ _id: d._id }, { $set: { uid } });
        await c.messages.updateOne({ _id: d._id }, { $set: { uid, modseq: b.modseq, seq } });
        Object.assign(d, { uid, modseq: b.modseq, seq });
        entries.push({ mailbox, type: 'exists', modseq: b.modseq, uid, flags: d.flags });
      }
      const late = this.#log.late(b.reservedAt);
      await this.#log.write(user, b.seq, entries);
      at = b;
      // a database that stalls again moves them again; a few times at most (then the next SELECT shows them)
      if (!late || attempt >= 2) return at;
    }
  }

  /**
   * A new message's writes (append and restore): blob and thread references, then `place` gives its UID, modseq and
   * change-log sequence number, then the search document, the content and the message document (now it is visible).
   * A failure before the message document undoes what came before it (`giveUp` the numbers `place` took). With
   * `skipDuplicate`, a message document the unique index refuses (the UID is taken) is undone too and null returned.
   */
  async #write(
    input: AppendInput,
    how: { place(user: ObjectId, mailbox: ObjectId): Promise<{ uid: number; modseq: number; seq: number }>; giveUp?(user: ObjectId): Promise<void>; uncertain?(doc: MessageDoc): void; skipDuplicate?: boolean },
  ): Promise<{ doc: MessageDoc } | null> {
    const c = this.#c;
    const user = requireObjectId(input.userId, 'user');
    const mailbox = requireObjectId(input.mailboxId, 'mailbox');
    const { message } = input;
    const flags = normalizeFlags(input.flags);
    const id = new ObjectId();
    const stored = await deflateIfSmaller(message.content.inline);
    const blobs = await this.#blobs.commitRefs(message.content, message.blobs);
    // nothing names the message yet: what was written for it goes (what a crash leaves, recalc removes)
    const undo = async (): Promise<void> => {
      await quietly(() => this.#blobs.releaseRefs(countRefs([blobs])));
      await quietly(() => c.messageContent.deleteMany({ message: id }));
      await quietly(() => c.messageSearch.deleteOne({ _id: id }));
    };
    let placed = false;
    let doc: MessageDoc;
    try {
      const thread = await threadFor(c, user, message);
      const at = await how.place(user, mailbox);
      placed = true;
      // the search document before the content: `quota recalc` finds a message that never came by its search document
      await c.messageSearch.insertOne(searchDoc(id, mailbox, at.uid, message, input.internalDate));
      const inline = await this.#writeContent(id, message.content.inline.byteLength, stored);
      doc = {
        _id: id,
        user,
        mailbox,
        uid: at.uid,
        modseq: at.modseq,
        seq: at.seq,
        flags,
        internalDate: input.internalDate,
        size: message.size,
        messageId: message.messageId,
        thread,
        headerDate: message.headerDate ?? input.internalDate,
        subject: message.subject,
        envelope: message.envelope,
        mime: message.mime,
        hasAttachments: message.hasAttachments,
        sha256: message.sha256,
        segments: message.content.segments.map((s) => (s.blob === undefined ? { length: s.length } : { length: s.length, blob: s.blob })),
        blobs,
        inline,
        emailId: id,
        savedDate: input.savedDate ?? Date.now(),
        preview: message.preview,
      };
    } catch (err) {
      await undo();
      if (placed && how.giveUp) await quietly(() => how.giveUp!(user));
      throw err;
    }
    // from here on the message may exist even when a call fails: nothing is undone
    try {
      await c.messages.insertOne(doc);
    } catch (err) {
      // the database may have taken the document and lost the answer: its entry is written if it is there
      if (!isDuplicateKey(err)) how.uncertain?.(doc);
      if (!(how.skipDuplicate && isDuplicateKey(err))) throw err;
      await undo();
      return null;
    }
    return { doc };
  }

  /**
   * Storage copy (restore.ts, RestorePort.message): stores the message at its given UID and modseq, with counters, usage
   * and blob references as an append, and no change-log entry: its `seq` is 0, so every reader's cursor covers it. The
   * mailbox's uidNext and modseq are raised to cover it before it is visible. False (nothing written) when the UID is
   * there already. Re-runnable: what an earlier attempt at this UID left before its message document is removed first.
   */
  restore(input: AppendInput & { uid: number; modseq: number }): Promise<boolean> {
    return mongoCall(async () => {
      const c = this.#c;
      const box = await this.#mailbox(input.mailboxId);
      if (!box.user.equals(requireObjectId(input.userId, 'user'))) throw new StorageError('NONEXISTENT', `mailbox ${input.mailboxId} does not belong to user ${input.userId}`);
      if (await c.messages.findOne({ mailbox: box._id, uid: input.uid }, { projection: { _id: 1 } })) return false;
      const left = (await c.messageSearch.find({ mailbox: box._id, uid: input.uid }, { projection: { _id: 1 } }).toArray()).map((s) => s._id);
      if (left.length > 0) {
        await c.messageContent.deleteMany({ message: { $in: left } });
        await c.messageSearch.deleteMany({ _id: { $in: left } });
      }
      const written = await this.#write(input, {
        place: async () => {
          await c.mailboxes.updateOne({ _id: box._id }, { $max: { uidNext: input.uid + 1, modseq: input.modseq } });
          return { uid: input.uid, modseq: input.modseq, seq: 0 };
        },
        skipDuplicate: true,
      });
      if (!written) return false;
      await this.#count(box.user, box._id, totals([written.doc]));
      return true;
    });
  }

  /**
   * Storage copy (RestorePort.flags): a message's flags and modseq as given, no change-log entry; the mailbox's modseq
   * is raised first, its unseen counter follows. False when the UID is not there.
   */
  restoreFlags(mailboxId: Id, uid: number, flags: Flag[], modseq: number): Promise<boolean> {
    return mongoCall(async () => {
      const c = this.#c;
      const box = await this.#mailbox(mailboxId);
      const next = normalizeFlags(flags);
      await c.mailboxes.updateOne({ _id: box._id }, { $max: { modseq } });
      for (let round = 0; round < FLAG_ROUNDS; round++) {
        const doc = await c.messages.findOne({ mailbox: box._id, uid }, { projection: { _id: 1, modseq: 1, flags: 1 } });
        if (!doc) return false;
        // only if nobody changed it since it was read
        const r = await c.messages.updateOne({ _id: doc._id, modseq: doc.modseq }, { $set: { flags: next, modseq } });
        if (r.matchedCount === 0) continue;
        const was = hasFlag(doc.flags, SEEN);
        const is = hasFlag(next, SEEN);
        if (was !== is) await c.mailboxes.updateOne({ _id: box._id }, { $inc: { unseen: is ? -1 : 1 } });
        return true;
      }
      throw new StorageError('UNAVAILABLE', `mailbox ${idOf(box._id)}: too many concurrent flag changes`);
    });
  }

  /** Storage copy (RestorePort.expunge): removes these UIDs like an expunge, without a new modseq or change-log entry. */
  restoreExpunge(mailboxId: Id, uids: number[]): Promise<number[]> {
    return mongoCall(async () => this.#expunge(await this.#mailbox(mailboxId), uniqueUids(uids), { logged: false }));
  }

  setFlags(mailboxId: Id, uids: number[], update: FlagUpdate): Promise<FlagResult> {
    return mongoCall(async () => {
      const box = await this.#mailbox(mailboxId);
      const result: FlagResult = { changed: [], modified: [] };
      for (const part of chunks(uniqueUids(uids), WRITE_CHUNK)) await this.#setFlags(box, part, update, result);
      result.changed.sort((a, b) => a.uid - b.uid);
      result.modified.sort((a, b) => a - b);
      return result;
    });
  }

  /** One chunk of a flag change: one modseq, unless messages changed meanwhile have to go again under a later one. */
  async #setFlags(box: MailboxDoc, uids: readonly number[], update: FlagUpdate, result: FlagResult): Promise<void> {
    const c = this.#c;
    let wanted = uids;
    for (let round = 0; wanted.length > 0; round++) {
      if (round === FLAG_ROUNDS) throw new StorageError('UNAVAILABLE', `mailbox ${idOf(box._id)}: too many concurrent flag changes`);
      const docs = await c.messages.find({ mailbox: box._id, uid: uidFilter(wanted) }, { projection: { _id: 1, uid: 1, modseq: 1, flags: 1 } }).sort({ uid: 1 }).toArray();
      const pending: Array<{ doc: (typeof docs)[number]; flags: Flag[] }> = [];
      for (const doc of docs) {
        if (update.unchangedSince !== undefined && doc.modseq > update.unchangedSince) {
          result.modified.push(doc.uid);
          continue;
        }
        const next = applyFlagAction(doc.flags, update.action, update.flags);
        if (!sameFlags(doc.flags, next)) pending.push({ doc, flags: next });
      }
      if (pending.length === 0) return;
      const alloc = await this.#log.mailboxWrite(box.user, box._id, { entries: pending.length });
      // each message only if nobody changed it since it was read (any change gives it a new modseq)
      const done = await Promise.all(
        pending.map(async (p) => (await c.messages.updateOne({ _id: p.doc._id, modseq: p.doc.modseq }, { $set: { flags: p.flags, modseq: alloc.modseq } })).modifiedCount > 0),
      );
      const changed = pending.filter((_, i) => done[i]);
      let unseen = 0;
      for (const p of changed) {
        const was = hasFlag(p.doc.flags, SEEN);
        const is = hasFlag(p.flags, SEEN);
        if (was !== is) unseen += is ? -1 : 1;
        result.changed.push({ uid: p.doc.uid, flags: p.flags, modseq: alloc.modseq });
      }
      const entries: NewChange[] = changed.map((p) => ({ mailbox: box._id, type: 'flags', modseq: alloc.modseq, uid: p.doc.uid, flags: p.flags }));
      await Promise.all([
        this.#log.write(box.user, alloc.seq, entries),
        // the numbers reserved for messages not changed are given up
        changed.length < pending.length ? this.#log.giveUp(box.user, alloc.seq + changed.length, pending.length - changed.length) : null,
        unseen !== 0 ? c.mailboxes.updateOne({ _id: box._id }, { $inc: { unseen } }) : null,
      ]);
      // changed by someone else between our read and our write: read again, changed under a later modseq
      wanted = pending.filter((_, i) => !done[i]).map((p) => p.doc.uid);
    }
  }

  /** The source and destination of a copy or move: both exist and belong to one user. */
  async #pair(fromMailboxId: Id, toMailboxId: Id): Promise<[MailboxDoc, MailboxDoc]> {
    const [src, dst] = await Promise.all([this.#mailbox(fromMailboxId), this.#mailbox(toMailboxId)]);
    if (!src.user.equals(dst.user)) throw new StorageError('CANNOT', 'messages cannot be copied between users');
    return [src, dst];
  }

  copy(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult> {
    return mongoCall(async () => {
      const [src, dst] = await this.#pair(fromMailboxId, toMailboxId);
      return this.#copy(src, uniqueUids(uids), dst);
    });
  }

  async #copy(src: MailboxDoc, wanted: readonly number[], dst: MailboxDoc): Promise<CopyResult> {
    const result: CopyResult = { uidValidity: dst.uidValidity, mappings: [], modseq: dst.modseq };
    for (const part of chunks(wanted, WRITE_CHUNK)) {
      const docs = await this.#c.messages.find({ mailbox: src._id, uid: uidFilter(part) }).sort({ uid: 1 }).toArray();
      if (docs.length === 0) continue;
      const step = await this.#copyDocs(dst, docs);
      result.uidValidity = step.uidValidity;
      result.modseq = step.modseq;
      result.mappings.push(...step.mappings);
    }
    return result;
  }

  /** Appends copies of these messages (ascending UIDs) to `dst` under one modseq. */
  async #copyDocs(dst: MailboxDoc, docs: readonly MessageDoc[]): Promise<CopyResult> {
    const c = this.#c;
    const user = dst.user;
    const ids = new Map(docs.map((d) => [d._id.toHexString(), new ObjectId()]));
    const newId = (source: ObjectId): ObjectId => ids.get(source.toHexString())!;
    const copies = [...ids.values()];
    const refs = countRefs(docs.map((d) => d.blobs));
    await this.#blobs.addRefs(refs);
    let alloc: Awaited<ReturnType<MongoChangeLog['mailboxWrite']>> | null = null;
    try {
      const sources = docs.map((d) => d._id);
      const [pieces, search] = await Promise.all([
        c.messageContent.find({ message: { $in: sources } }).toArray(),
        c.messageSearch.find({ _id: { $in: sources } }).toArray(),
      ]);
      alloc = await this.#log.mailboxWrite(user, dst._id, { uids: docs.length, entries: docs.length });
      const uidOf = new Map(docs.map((d, i) => [d._id.toHexString(), alloc!.uid + i]));
      const searchCopies: SearchDoc[] = search.map((s) => ({ ...s, _id: newId(s._id), mailbox: dst._id, uid: uidOf.get(s._id.toHexString())! }));
      // search documents before content, as in append
      if (searchCopies.length > 0) await c.messageSearch.insertMany(searchCopies);
      if (pieces.length > 0) await c.messageContent.insertMany(pieces.map((p) => ({ ...p, _id: new ObjectId(), message: newId(p.message) })));
    } catch (err) {
      await quietly(() => this.#blobs.releaseRefs(refs));
      await quietly(() => c.messageContent.deleteMany({ message: { $in: copies } }));
      await quietly(() => c.messageSearch.deleteMany({ _id: { $in: copies } }));
      if (alloc) await quietly(() => this.#log.giveUp(user, alloc!.seq, docs.length));
      throw err;
    }
    let a: MailboxAllocation = alloc;
    // a copy keeps the email id (every copy of a message shares it, RFC 8474) and is saved now (RFC 8514); MOVE is this too
    const savedDate = Date.now();
    const copied: MessageDoc[] = docs.map((d, i) => ({
      ...d,
      _id: newId(d._id),
      mailbox: dst._id,
      uid: a.uid + i,
      modseq: a.modseq,
      seq: a.seq + i,
      emailId: d.emailId ?? d._id,
      savedDate,
    }));
    try {
      await c.messages.insertMany(copied);
    } catch (err) {
      // as in append: what the database took gets its entries
      if (!isDuplicateKey(err)) this.#log.writeLater(user, a.seq, copied.map((d) => ({ mailbox: dst._id, type: 'exists', modseq: a.modseq, uid: d.uid, flags: d.flags })));
      throw err;
    }
    if (this.#log.late(a.reservedAt)) {
      a = await this.#renumber(copied, a);
      await this.#count(user, dst._id, totals(copied));
    } else {
      const at = a;
      await Promise.all([
        this.#log.write(user, at.seq, copied.map((d) => ({ mailbox: dst._id, type: 'exists', modseq: at.modseq, uid: d.uid, flags: d.flags }))),
        this.#count(user, dst._id, totals(copied)),
      ]);
    }
    return {
      uidValidity: a.mailbox.uidValidity,
      mappings: docs.map((d, i) => ({ sourceUid: d.uid, destinationUid: a.uid + i })),
      modseq: a.modseq,
    };
  }

  move(fromMailboxId: Id, uids: number[], toMailboxId: Id): Promise<CopyResult> {
    return mongoCall(async () => {
      const [src, dst] = await this.#pair(fromMailboxId, toMailboxId);
      const result = await this.#copy(src, uniqueUids(uids), dst);
      await this.#expunge(src, result.mappings.map((m) => m.sourceUid));
      return result;
    });
  }

  expunge(mailboxId: Id, uids: number[]): Promise<number[]> {
    return mongoCall(async () => this.#expunge(await this.#mailbox(mailboxId), uniqueUids(uids)));
  }

  /** `logged: false` (storage copy): no modseq, no change-log entries, only the counters. */
  async #expunge(box: MailboxDoc, wanted: readonly number[], options: { logged?: boolean } = {}): Promise<number[]> {
    const c = this.#c;
    const removed: number[] = [];
    for (const part of chunks(wanted, WRITE_CHUNK)) {
      const found = await c.messages.find({ mailbox: box._id, uid: uidFilter(part) }, { projection: { _id: 1 } }).toArray();
      if (found.length === 0) continue;
      // each deleter learns whether it removed the message: concurrent expunges count each message once
      const deleted = (
        await Promise.all(found.map((d) => c.messages.findOneAndDelete({ _id: d._id }, { projection: { _id: 1, uid: 1, flags: 1, size: 1, blobs: 1 } })))
      ).filter((d): d is NonNullable<typeof d> => d !== null);
      if (deleted.length === 0) continue;
      deleted.sort((a, b) => a.uid - b.uid);
      const ids = deleted.map((d) => d._id);
      try {
        const counted = negate(totals(deleted as MessageDoc[]));
        if (options.logged === false) await this.#count(box.user, box._id, counted);
        else {
          const alloc = await this.#log.mailboxWrite(box.user, box._id, { entries: deleted.length });
          await Promise.all([
            this.#log.write(box.user, alloc.seq, deleted.map((d) => ({ mailbox: box._id, type: 'expunge', modseq: alloc.modseq, uid: d.uid }))),
            this.#count(box.user, box._id, counted),
          ]);
        }
      } finally {
        // the messages are gone either way: their content, then search documents (by which `quota recalc` finds
        // content left behind) and blob references follow
        await c.messageContent.deleteMany({ message: { $in: ids } });
        await Promise.all([c.messageSearch.deleteMany({ _id: { $in: ids } }), this.#blobs.releaseRefs(countRefs(deleted.map((d) => d.blobs)))]);
      }
      removed.push(...deleted.map((d) => d.uid));
    }
    return removed;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------------------------

  get(mailboxId: Id, uid: number): Promise<MessageRecord | null> {
    const mailbox = objectId(mailboxId);
    if (!mailbox || !Number.isSafeInteger(uid)) return Promise.resolve(null);
    return mongoCall(async () => {
      const d = await this.#c.messages.findOne({ mailbox, uid }, { projection: RECORD_PROJECTION });
      return d ? toRecord(d) : null;
    });
  }

  getById(id: Id): Promise<MessageRecord | null> {
    const oid = objectId(id);
    if (!oid) return Promise.resolve(null);
    return mongoCall(async () => {
      const d = await this.#c.messages.findOne({ _id: oid }, { projection: RECORD_PROJECTION });
      return d ? toRecord(d) : null;
    });
  }

  parts(mailboxId: Id, uids: readonly number[], wanted: MessagePartsWanted): Promise<MessageParts[]> {
    const mailbox = objectId(mailboxId);
    const sorted = uniqueUids(uids);
    if (!mailbox || sorted.length === 0) return Promise.resolve([]);
    return mongoCall(async () => {
      const projection: Record<string, 1> = { uid: 1 };
      if (wanted.envelope) projection.envelope = 1;
      if (wanted.mime) projection.mime = 1;
      if (wanted.content) Object.assign(projection, { segments: 1, inline: 1 });
      if (wanted.ids) Object.assign(projection, { emailId: 1, thread: 1 });
      if (wanted.savedDate) Object.assign(projection, { savedDate: 1, internalDate: 1 });
      if (wanted.preview) projection.preview = 1;
      const docs = await this.#c.messages.find({ mailbox, uid: uidFilter(sorted) }, { projection }).sort({ uid: 1 }).toArray();
      const contents = wanted.content ? await this.#contents(docs) : null;
      // documents stored before previews were get one from their stored search text
      const legacy = wanted.preview ? docs.filter((d) => d.preview === undefined).map((d) => d._id) : [];
      const texts = new Map<string, string>();
      if (legacy.length > 0) {
        for (const s of await this.#c.messageSearch.find({ _id: { $in: legacy } }, { projection: { text: 1 } }).toArray()) texts.set(s._id.toHexString(), s.text);
      }
      return docs.map((d) => {
        const parts: MessageParts = { uid: d.uid };
        if (wanted.envelope) parts.envelope = d.envelope;
        if (wanted.mime) parts.mime = d.mime;
        if (contents) parts.content = contents.get(d._id.toHexString())!;
        if (wanted.ids) {
          parts.emailId = idOf(d.emailId ?? d._id);
          parts.threadId = idOf(d.thread);
        }
        if (wanted.savedDate) parts.savedDate = d.savedDate ?? d.internalDate;
        if (wanted.preview) parts.preview = d.preview ?? makePreview([texts.get(d._id.toHexString()) ?? '']);
        return parts;
      });
    });
  }

  sortData(mailboxId: Id, uids: readonly number[], wanted: SortDataWanted = {}): Promise<MessageSortData[]> {
    const mailbox = objectId(mailboxId);
    const sorted = uniqueUids(uids);
    if (!mailbox || sorted.length === 0) return Promise.resolve([]);
    return mongoCall(async () => {
      const first = sorted[0]!;
      const last = sorted[sorted.length - 1]!;
      // a dense set (SORT ALL) as a range of the { mailbox, uid } index, filtered here; a sparse one as a list
      const dense = last - first + 1 <= sorted.length * 4;
      const filter = dense ? { $gte: first, $lte: last } : { $in: sorted };
      const keep = dense && last - first + 1 !== sorted.length ? new Set(sorted) : null;
      const projection: Record<string, 1> = { uid: 1, internalDate: 1, size: 1 };
      if (wanted.date || wanted.threading) projection.headerDate = 1;
      if (wanted.subject || wanted.threading) projection.subject = 1;
      const fields = (['from', 'to', 'cc'] as const).filter((field) => wanted[field]);
      for (const field of fields) projection[`envelope.${field}`] = 1;
      if (wanted.threading) Object.assign(projection, { 'envelope.messageId': 1, 'envelope.inReplyTo': 1 });
      const docs = await this.#c.messages.find({ mailbox, uid: filter }, { projection }).sort({ uid: 1 }).toArray();
      // References live in the search document's header text (folded there; threading compares ids folded too)
      const references = new Map<number, string | null>();
      if (wanted.threading) {
        const rows = await this.#c.messageSearch.find({ mailbox, uid: filter }, { projection: { uid: 1, headers: 1 } }).toArray();
        for (const row of rows) references.set(row.uid, referencesField(row.headers));
      }
      const out: MessageSortData[] = [];
      for (const d of docs) {
        if (keep && !keep.has(d.uid)) continue;
        const data: MessageSortData = { uid: d.uid, internalDate: d.internalDate, size: d.size };
        if (wanted.date || wanted.threading) data.headerDate = d.headerDate;
        if (wanted.subject || wanted.threading) data.subject = d.subject ?? '';
        for (const field of fields) {
          const first = d.envelope?.[field]?.[0];
          data[field] = first ? { name: first.name ?? null, adl: null, mailbox: first.mailbox ?? null, host: first.host ?? null } : null;
        }
        if (wanted.threading) {
          data.messageId = d.envelope?.messageId ?? null;
          data.inReplyTo = d.envelope?.inReplyTo ?? null;
          data.references = references.get(d.uid) ?? null;
        }
        out.push(data);
      }
      return out;
    });
  }

  content(id: Id): Promise<MessageContent | null> {
    const oid = objectId(id);
    if (!oid) return Promise.resolve(null);
    return mongoCall(async () => {
      const d = await this.#c.messages.findOne({ _id: oid }, { projection: { segments: 1, inline: 1 } });
      return d ? (await this.#contents([d])).get(d._id.toHexString())! : null;
    });
  }

  searchText(id: Id): Promise<string | null> {
    const oid = objectId(id);
    if (!oid) return Promise.resolve(null);
    return mongoCall(async () => (await this.#c.messageSearch.findOne({ _id: oid }, { projection: { text: 1 } }))?.text ?? null);
  }

  index(mailboxId: Id, options: { changedSince?: number } = {}): Promise<MessageIndexEntry[]> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve([]);
    return mongoCall(async () => {
      const filter: Filter<MessageDoc> = options.changedSince !== undefined ? { mailbox, modseq: { $gt: options.changedSince } } : { mailbox };
      const docs = await this.#c.messages.find(filter, { projection: ENTRY_PROJECTION }).sort({ uid: 1 }).toArray();
      return docs.map(toEntry);
    });
  }

  indexColumns(mailboxId: Id, options: { afterUid?: number; throughChange?: number } = {}): Promise<IndexColumns> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve(collectIndexColumns([], INDEX_ROW));
    return mongoCall(async () => {
      // only messages whose `exists` entry the caller's cursor covers (changes.ts): a later one comes with its entry
      const filter: Filter<MessageDoc> = { mailbox, uid: { $gt: options.afterUid ?? 0 } };
      if (options.throughChange !== undefined) filter.seq = { $lte: options.throughChange };
      const docs = await this.#c.messages.find(filter, { projection: ENTRY_PROJECTION }).sort({ uid: 1 }).toArray();
      return collectIndexColumns(docs, INDEX_ROW);
    });
  }

  page(mailboxId: Id, options: MessagePageOptions): Promise<MessagePage> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve({ entries: [], total: 0, earlier: false, later: false });
    return mongoCall(async () => {
      const c = this.#c;
      const filter: Filter<MessageDoc> = { mailbox };
      if (options.unseen && options.flagged) filter.$and = [{ flags: { $ne: SEEN } }, { flags: FLAGGED }];
      else if (options.unseen) filter.flags = { $ne: SEEN };
      else if (options.flagged) filter.flags = FLAGGED;
      const asc = options.order === 'asc';
      // the previous page is read walking backwards from `before`, then turned around
      const backwards = options.before !== undefined;
      const walkAsc = asc !== backwards;
      const cursor = options.before ?? options.after;
      const from: Filter<MessageDoc> = cursor === undefined ? filter : { ...filter, uid: walkAsc ? { $gt: cursor } : { $lt: cursor } };
      const limit = Math.max(0, options.limit);
      const docs = limit === 0 ? [] : await c.messages.find(from, { projection: ENTRY_PROJECTION }).sort({ uid: walkAsc ? 1 : -1 }).limit(limit).toArray();
      if (backwards) docs.reverse();
      const entries = docs.map(toEntry);
      const exists = async (op: '$lt' | '$gt', uid: number): Promise<boolean> => (await c.messages.findOne({ ...filter, uid: { [op]: uid } }, { projection: { _id: 1 } })) !== null;
      const first = entries[0]?.uid;
      const last = entries[entries.length - 1]?.uid;
      const [total, earlier, later] = await Promise.all([
        c.messages.countDocuments(filter),
        first === undefined ? false : exists(asc ? '$lt' : '$gt', first),
        last === undefined ? false : exists(asc ? '$gt' : '$lt', last),
      ]);
      return { entries, total, earlier, later };
    });
  }

  findByMessageId(mailboxId: Id, messageId: string): Promise<MessageRecord | null> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return Promise.resolve(null);
    return mongoCall(async () => {
      const [d] = await this.#c.messages.find({ mailbox, messageId }, { projection: RECORD_PROJECTION }).sort({ uid: 1 }).limit(1).toArray();
      return d ? toRecord(d) : null;
    });
  }

  threadCounts(userId: Id, threadIds: Id[]): Promise<Map<Id, number>> {
    const out = new Map<Id, number>(threadIds.map((id) => [id, 0]));
    const user = objectId(userId);
    const threads = [...new Set(threadIds)].map(objectId).filter((t): t is ObjectId => t !== null);
    if (!user || threads.length === 0) return Promise.resolve(out);
    return mongoCall(async () => {
      const rows = await this.#c.messages
        .aggregate<{ _id: ObjectId; n: number }>([{ $match: { user, thread: { $in: threads } } }, { $group: { _id: '$thread', n: { $sum: 1 } } }])
        .toArray();
      for (const r of rows) if (out.has(idOf(r._id))) out.set(idOf(r._id), r.n);
      return out;
    });
  }
}

function negate(d: { messages: number; unseen: number; size: number }): { messages: number; unseen: number; size: number } {
  return { messages: -d.messages, unseen: -d.unseen, size: -d.size };
}
