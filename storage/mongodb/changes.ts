/**
 * The change log on MongoDB, and the ordering of every write to a mailbox.
 *
 * Entry ids (`seq`) come from a per-user counter (`users.changeSeq`, one `$inc`). Writers on different server
 * instances run at once, so a writer may insert its entries after a later writer inserted its own: the log has
 * holes that fill a few milliseconds later. Two rules keep every reader exact without transactions:
 *
 * 1. **Mailbox order = log order.** A write to a mailbox first reserves its sequence numbers, then bumps the
 *    mailbox document (UIDs, modseq) only if no later sequence number got there first:
 *    `findOneAndUpdate({ _id, lastChange: { $lt: seq } }, { $inc: { uidNext, modseq }, $set: { lastChange } })`.
 *    A writer that loses gives its numbers up (writes `noop` entries for them) and tries again. So within a
 *    mailbox, UIDs and modseqs grow with the log's sequence numbers.
 * 2. **Readers stop at a young hole.** `since` returns entries in sequence order up to the first missing number
 *    whose writer may still be running: the next entry present was created less than `gapWaitMs` ago. A hole
 *    older than that (a writer that crashed between its two writes) or below the user's `prunedSeq` is skipped.
 *    `latest` answers the highest number with no young hole below it.
 *
 * Together: when a reader sees an `exists` entry, every message of that mailbox with a lower UID has either had
 * its entry read already or was given up, and a message document is written before its entry, so
 * `messages.indexColumns(..., { throughChange })` reads exactly the messages the reader's cursor covers. A message
 * document written `gapWaitMs` after its numbers were reserved (`late`) may be below what a reader has loaded
 * already: messages.ts gives it a new UID and sequence number.
 * After its entries are written a writer announces the user on the ephemeral pub/sub channel `changes:<userId>`
 * (Redis between instances).
 */
import type { ObjectId } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { ChangeEntry, ChangesPort, ChangeType, EphemeralPort, Flag, Id } from '../ports.ts';
import type { ChangeDoc, MailboxDoc, MongoCollections } from './collections.ts';
import { idOf, objectId } from './ids.ts';

/** How long a reader waits for a missing sequence number by default (ms). */
export const DEFAULT_GAP_WAIT_MS = 10_000;
/** How many entries `since` and `latest` read per round trip. */
const PAGE = 256;
/** How often entries a write could not make are tried again (ms). */
const RETRY_MS = 250;
/** Attempts of mailboxWrite before it gives up under contention. */
const MAX_ATTEMPTS = 64;

export function changeChannel(userId: Id): string {
  return `changes:${userId}`;
}

export interface NewChange {
  mailbox: ObjectId | null;
  type: ChangeType;
  modseq: number;
  uid?: number | null;
  flags?: Flag[] | null;
  path?: string | null;
}

/** What a mailbox write got: its first sequence number, its first UID, its modseq, and the mailbox before it. */
export interface MailboxAllocation {
  seq: number;
  /** The first of the UIDs allocated (the mailbox's uidNext before). */
  uid: number;
  /** The write's modseq (the mailbox's modseq after). */
  modseq: number;
  mailbox: MailboxDoc;
  /** When the sequence numbers were asked for (this log's clock): see `late`. */
  reservedAt: number;
}

export interface ChangeLogOptions {
  gapWaitMs?: number;
  now?: () => number;
}

function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

function toEntry(d: ChangeDoc): ChangeEntry {
  return {
    id: d.seq,
    userId: idOf(d.user),
    mailboxId: d.mailbox ? idOf(d.mailbox) : '',
    type: d.type as ChangeType,
    modseq: d.modseq,
    uid: d.uid ?? null,
    flags: d.flags ?? null,
    path: d.path ?? null,
    created: d.created,
  };
}

export class MongoChangeLog implements ChangesPort {
  readonly #c: MongoCollections;
  readonly #ephemeral: EphemeralPort;
  readonly #gapWaitMs: number;
  readonly #now: () => number;
  /** Entries to write again (#later), and the timer that will. */
  readonly #pending: ChangeDoc[][] = [];
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  /** Users announced again once a hole a reader stopped at may be passed (#recheck), by user id. */
  readonly #rechecks = new Map<string, ReturnType<typeof setTimeout>>();
  /** Batches of writeLater: whether each entry is true is checked before it is written. */
  readonly #uncertain = new WeakSet<ChangeDoc[]>();

  constructor(c: MongoCollections, ephemeral: EphemeralPort, options: ChangeLogOptions = {}) {
    this.#c = c;
    this.#ephemeral = ephemeral;
    this.#gapWaitMs = options.gapWaitMs ?? DEFAULT_GAP_WAIT_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Reserves `count` sequence numbers for the user; returns the first. NONEXISTENT when the user is gone. */
  async reserve(user: ObjectId, count: number): Promise<number> {
    const r = await this.#c.users.findOneAndUpdate({ _id: user }, { $inc: { changeSeq: count } }, { returnDocument: 'after', projection: { changeSeq: 1 } });
    if (!r) throw new StorageError('NONEXISTENT', `user ${idOf(user)} does not exist`);
    return r.changeSeq - count + 1;
  }

  /**
   * Orders a write on a mailbox (rule 1): reserves `entries` sequence numbers, allocates `uids` UIDs and one modseq.
   * The caller then writes its documents and `write`s exactly `entries` entries from `seq`. NONEXISTENT when the
   * mailbox (of this user) is gone. `modseq: false`: the write takes no modseq (a rename, a subscription, a delete
   * change no message: their entries carry the mailbox's HIGHESTMODSEQ unchanged, as the embedded backend's do).
   */
  async mailboxWrite(user: ObjectId, mailbox: ObjectId, options: { uids?: number; entries: number; modseq?: boolean }): Promise<MailboxAllocation> {
    const uids = options.uids ?? 0;
    const modseqs = options.modseq === false ? 0 : 1;
    const entries = Math.max(1, options.entries);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const reservedAt = this.#now();
      const seq = await this.reserve(user, entries);
      const before = await this.#c.mailboxes.findOneAndUpdate(
        { _id: mailbox, user, lastChange: { $lt: seq } },
        { $inc: { uidNext: uids, modseq: modseqs }, $set: { lastChange: seq + entries - 1 } },
        { returnDocument: 'before' },
      );
      if (before) return { seq, uid: before.uidNext, modseq: before.modseq + modseqs, mailbox: before, reservedAt };
      await this.giveUp(user, seq, entries);
      const exists = await this.#c.mailboxes.findOne({ _id: mailbox, user }, { projection: { _id: 1 } });
      if (!exists) throw new StorageError('NONEXISTENT', `mailbox ${idOf(mailbox)} does not exist`);
    }
    throw new StorageError('UNAVAILABLE', `mailbox ${idOf(mailbox)}: too many concurrent writes`);
  }

  /**
   * Whether readers may have passed the sequence numbers reserved at `reservedAt` (ms, this log's clock) while they
   * were missing: any entry above them was made after they were reserved, so a reader passes them no sooner than
   * `reservedAt + gapWaitMs`. A document the write made visible later than that may lie below what readers have
   * loaded already (messages.ts renumbers such a message).
   */
  late(reservedAt: number): boolean {
    return this.#now() - reservedAt >= this.#gapWaitMs;
  }

  /** Fills reserved sequence numbers that will not be used with `noop` entries, so readers need not wait for them. */
  async giveUp(user: ObjectId, seq: number, count: number): Promise<void> {
    const created = this.#now();
    const docs = Array.from({ length: count }, (_, i) => ({ user, seq: seq + i, mailbox: null, type: 'noop', modseq: 0, uid: null, flags: null, path: null, created }));
    await this.#insert(docs as ChangeDoc[]);
  }

  /** Writes the entries of a write from its first reserved `seq` (one per reserved number) and announces them. */
  async write(user: ObjectId, seq: number, entries: readonly NewChange[]): Promise<void> {
    if (entries.length === 0) return;
    const created = this.#now();
    const docs = entries.map((e, i) => ({
      user,
      seq: seq + i,
      mailbox: e.mailbox,
      type: e.type,
      modseq: e.modseq,
      uid: e.uid ?? null,
      flags: e.flags ?? null,
      path: e.path ?? null,
      created,
    }));
    await this.#insert(docs as ChangeDoc[]);
    this.announce(user, seq + entries.length - 1);
  }

  /**
   * The entries of a write whose documents may or may not be there (the database went away under the message
   * document's insert: it may have taken it and lost the answer). Nothing is tried now: once the database answers,
   * each entry still true goes in as `#later` writes it (a message that never came: a `noop` in its place), so a
   * message the database took is not left without its entry.
   */
  writeLater(user: ObjectId, seq: number, entries: readonly NewChange[]): void {
    if (entries.length === 0 || this.#closed) return;
    const created = this.#now();
    const docs = entries.map((e, i) => ({ user, seq: seq + i, mailbox: e.mailbox, type: e.type, modseq: e.modseq, uid: e.uid ?? null, flags: e.flags ?? null, path: e.path ?? null, created })) as ChangeDoc[];
    this.#uncertain.add(docs);
    this.#later(docs);
  }

  /** An uncertain batch (writeLater) with each entry that is not true (its message never came) made a `noop`. */
  async #confirm(batch: ChangeDoc[]): Promise<ChangeDoc[]> {
    const out: ChangeDoc[] = [];
    for (const d of batch) {
      if (d.type === 'noop' || (await this.#stillTrue(d.user, d))) out.push(d);
      else out.push({ ...d, mailbox: null, type: 'noop', modseq: 0, uid: null, flags: null, path: null } as ChangeDoc);
    }
    return out;
  }

  /** Tells every instance's listeners that the user's log reaches `latest` (best effort: readers also poll on use). */
  announce(user: ObjectId, latest: number): void {
    this.#ephemeral.publish(changeChannel(idOf(user)), String(latest)).catch(() => {
      // sessions catch up at their next command
    });
  }

  async #insert(docs: ChangeDoc[]): Promise<void> {
    try {
      await this.#c.changes.insertMany(docs as never[], { ordered: false });
    } catch (err) {
      // a retried write whose entries are already there
      if (isDuplicateKey(err)) return;
      this.#later(docs);
      throw err;
    }
  }

  /**
   * Entries that could not be written (the database went away under the write) are tried again in the background
   * until they are there. Within `gapWaitMs` of their making they go in at their own sequence numbers: a hole that no
   * writer fills keeps every reader of the user `gapWaitMs` behind, so the log fills it as soon as the database is
   * back. Later, readers have passed the hole and would never read an entry written into it: the entries that still
   * tell the truth go in again at new numbers at the end of the log (#reissue), so sessions learn of the message,
   * flag change or expunge their write made without waiting for the mailbox's next change.
   */
  #later(docs: ChangeDoc[]): void {
    if (this.#closed) return;
    this.#pending.push(docs);
    if (this.#retryTimer) return;
    const retry = async () => {
      this.#retryTimer = null;
      const batches = this.#pending.splice(0);
      for (let batch of batches) {
        try {
          if (this.#uncertain.has(batch)) batch = await this.#confirm(batch);
          if (this.#now() - batch[0]!.created >= this.#gapWaitMs) await this.#reissue(batch);
          else {
            await this.#c.changes.insertMany(batch as never[], { ordered: false });
            this.announce(batch[0]!.user, batch[batch.length - 1]!.seq);
          }
        } catch (err) {
          if (!isDuplicateKey(err)) this.#pending.push(batch);
        }
      }
      if (this.#pending.length > 0 && !this.#closed && !this.#retryTimer) this.#schedule(retry);
    };
    this.#schedule(retry);
  }

  /**
   * Writes again, at new sequence numbers, the entries of a failed write that never reached the log and are still
   * true: an `exists` or `flags` entry whose message is still there, every `expunge`, a mailbox entry that matches the
   * mailbox as it is now. Readers apply them as they would have the lost ones: a flag change older than one they have
   * is ignored (its modseq), a message is loaded once (its UID). `noop` entries need nothing.
   */
  async #reissue(batch: ChangeDoc[]): Promise<void> {
    const user = batch[0]!.user;
    const present = await this.#c.changes.find({ user, seq: { $in: batch.map((d) => d.seq) } }, { projection: { seq: 1 } }).toArray();
    const written = new Set(present.map((d) => d.seq));
    const again: NewChange[] = [];
    for (const d of batch) {
      if (d.type === 'noop' || written.has(d.seq) || !(await this.#stillTrue(user, d))) continue;
      again.push({ mailbox: d.mailbox, type: d.type as ChangeType, modseq: d.modseq, uid: d.uid, flags: d.flags, path: d.path });
    }
    if (again.length === 0) return;
    const seq = await this.reserve(user, again.length);
    try {
      await this.write(user, seq, again);
    } catch {
      // #insert queued the entries again under their new numbers
    }
  }

  async #stillTrue(user: ObjectId, d: ChangeDoc): Promise<boolean> {
    const { mailboxes, messages } = this.#c;
    if (!d.mailbox) return false;
    switch (d.type) {
      case 'exists':
      case 'flags':
        return (await messages.findOne({ mailbox: d.mailbox, uid: d.uid ?? -1 }, { projection: { _id: 1 } })) !== null;
      case 'expunge':
        return true;
      case 'mailbox.delete':
        return (await mailboxes.findOne({ _id: d.mailbox, user }, { projection: { _id: 1 } })) === null;
      case 'mailbox.rename':
        return (await mailboxes.findOne({ _id: d.mailbox, user, path: d.path ?? '' }, { projection: { _id: 1 } })) !== null;
      default:
        return (await mailboxes.findOne({ _id: d.mailbox, user }, { projection: { _id: 1 } })) !== null;
    }
  }

  #schedule(fn: () => Promise<void>): void {
    const timer = setTimeout(() => void fn().catch(() => {}), RETRY_MS);
    (timer as { unref?: () => void }).unref?.();
    this.#retryTimer = timer;
  }

  /**
   * A reader stopped before a hole below `next`. If the hole is never filled (its writer died, or took its number but
   * lost the answer), nothing would make readers look again once they may pass it: so the user is announced again
   * when `next` is gapWaitMs old, and readers then read past the hole (or up to what filled it meanwhile).
   */
  #recheck(user: ObjectId, next: ChangeDoc): void {
    if (this.#closed) return;
    const key = user.toHexString();
    if (this.#rechecks.has(key)) return;
    const wait = Math.max(0, this.#gapWaitMs - (this.#now() - next.created)) + RETRY_MS;
    const timer = setTimeout(() => {
      this.#rechecks.delete(key);
      if (this.#closed) return;
      this.#c.changes
        .find({ user }, { projection: { seq: 1 } })
        .sort({ seq: -1 })
        .limit(1)
        .next()
        .then((top) => this.announce(user, Math.max(top?.seq ?? 0, next.seq)))
        .catch(() => this.announce(user, next.seq));
    }, wait);
    (timer as { unref?: () => void }).unref?.();
    this.#rechecks.set(key, timer);
  }

  /** Stops retrying (the storage is closing). */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#pending.length = 0;
    for (const timer of this.#rechecks.values()) clearTimeout(timer);
    this.#rechecks.clear();
  }

  /** Whether a missing sequence number just below `next` (the first present entry above it) may still be written. */
  #young(next: ChangeDoc): boolean {
    return this.#now() - next.created < this.#gapWaitMs;
  }

  async #prunedSeq(user: ObjectId): Promise<number> {
    const u = await this.#c.users.findOne({ _id: user }, { projection: { prunedSeq: 1 } });
    return (u as { prunedSeq?: number } | null)?.prunedSeq ?? 0;
  }

  async since(userId: Id, afterId: number, options: { mailboxId?: Id; limit?: number } = {}): Promise<ChangeEntry[]> {
    const user = objectId(userId);
    if (!user) return [];
    let mailbox: ObjectId | null = null;
    if (options.mailboxId !== undefined) {
      mailbox = objectId(options.mailboxId);
      if (!mailbox) return [];
    }
    const limit = Math.max(1, options.limit ?? 1000);
    const out: ChangeEntry[] = [];
    let expected = afterId + 1;
    let pruned: number | null = null;
    for (;;) {
      const docs = await this.#c.changes.find({ user, seq: { $gte: expected } }).sort({ seq: 1 }).limit(PAGE).toArray();
      for (const d of docs) {
        if (d.seq > expected && this.#young(d)) {
          pruned ??= await this.#prunedSeq(user);
          if (pruned < d.seq - 1) {
            // a writer is still at work below d: stop before its hole, and look again once readers may pass it
            this.#recheck(user, d);
            return out;
          }
        }
        expected = d.seq + 1;
        if (d.type === 'noop') continue;
        if (mailbox && !(d.mailbox && d.mailbox.equals(mailbox))) continue;
        out.push(toEntry(d));
        if (out.length >= limit) return out;
      }
      if (docs.length < PAGE) return out;
    }
  }

  async latest(userId: Id): Promise<number> {
    const user = objectId(userId);
    if (!user) return 0;
    let pruned: number | null = null;
    const prunedSeq = async () => (pruned ??= await this.#prunedSeq(user));
    let best = 0;
    let above: ChangeDoc | null = null;
    let before = Number.MAX_SAFE_INTEGER;
    for (;;) {
      const docs = await this.#c.changes.find({ user, seq: { $lt: before } }).sort({ seq: -1 }).limit(PAGE).toArray();
      for (const d of docs) {
        if (above === null) best = d.seq;
        else if (above.seq > d.seq + 1 && this.#young(above) && (await prunedSeq()) < above.seq - 1) {
          best = d.seq; // a young hole above d
          this.#recheck(user, above);
        }
        if (!this.#young(d)) return best; // every hole below an entry that old is given up
        above = d;
      }
      if (docs.length < PAGE) {
        // below the lowest entry: numbers 1 .. above.seq - 1 are not there (pruned, or still being written)
        if (above && above.seq > 1 && this.#young(above)) {
          const p = await prunedSeq();
          if (p < above.seq - 1) {
            best = p;
            this.#recheck(user, above);
          }
        }
        return best;
      }
      before = docs[docs.length - 1]!.seq;
    }
  }

  async vanished(mailboxId: Id, modseq: number): Promise<number[] | null> {
    const mailbox = objectId(mailboxId);
    if (!mailbox) return [];
    const box = await this.#c.mailboxes.findOne({ _id: mailbox }, { projection: { vanishedFloor: 1 } });
    if ((box?.vanishedFloor ?? 0) > modseq) return null;
    const docs = await this.#c.changes
      .find({ mailbox, type: 'expunge', modseq: { $gt: modseq } }, { projection: { uid: 1 } })
      .toArray();
    const uids = docs.map((d) => d.uid).filter((uid): uid is number => typeof uid === 'number');
    return [...new Set(uids)].sort((a, b) => a - b);
  }

  subscribe(userId: Id, listener: (latestId: number) => void): () => void {
    return this.#ephemeral.subscribe(changeChannel(userId), (message) => {
      const id = Number(message);
      if (Number.isFinite(id)) listener(id);
    });
  }

  /**
   * Drops entries created before `before`. Each user's `prunedSeq` is raised to the highest number dropped first, so
   * readers skip the hole at once instead of waiting for it.
   */
  async prune(before: number): Promise<number> {
    const highest = await this.#c.changes
      .aggregate<{ _id: ObjectId; seq: number }>([{ $match: { created: { $lt: before } } }, { $group: { _id: '$user', seq: { $max: '$seq' } } }])
      .toArray();
    if (highest.length === 0) return 0;
    // QRESYNC: expunges at or below these modseqs can no longer be told (vanished() answers null below them)
    const floors = await this.#c.changes
      .aggregate<{ _id: ObjectId; modseq: number }>([
        { $match: { created: { $lt: before }, type: 'expunge' } },
        { $group: { _id: '$mailbox', modseq: { $max: '$modseq' } } },
      ])
      .toArray();
    if (floors.length > 0) {
      await this.#c.mailboxes.bulkWrite(floors.map((f) => ({ updateOne: { filter: { _id: f._id }, update: { $max: { vanishedFloor: f.modseq } as never } } })));
    }
    await this.#c.users.bulkWrite(highest.map((h) => ({ updateOne: { filter: { _id: h._id }, update: { $max: { prunedSeq: h.seq } as never } } })));
    let removed = 0;
    for (const h of highest) removed += (await this.#c.changes.deleteMany({ user: h._id, seq: { $lte: h.seq } })).deletedCount;
    return removed;
  }
}
