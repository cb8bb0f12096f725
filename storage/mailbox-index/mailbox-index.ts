/**
 * The shared index of one open mailbox: UID, modseq, flags, size and internal date of every message, kept once
 * per process however many sessions have the mailbox open (registry.ts hands it out, reference-counted), and kept
 * current from the change log. Storage-neutral: it works from the ports only (`messages.indexColumns`,
 * `changes.since`), so every backend gets it.
 *
 * Loading reads the change-log cursor first and the columns second, so nothing committed in between is lost:
 * replayed entries the columns already reflect are recognised (an `exists` for a held or older UID, a `flags` with
 * a modseq not above the held one, an `expunge` of an absent UID) and skipped.
 *
 * Sessions are views over it (protocols/imap/selected.ts) and hold only their difference from it:
 * - messages leave the index at once, but every attached view is told first (`expunging`, with the messages' last
 *   state), so a session can keep their sequence numbers until it may report EXPUNGE;
 * - new messages are the UIDs above the highest one a session announced (UIDs only grow);
 * - each flag change gets a stamp from a counter of this index, so a session finds the changes it has not reported
 *   as the stamps above the last one it saw.
 * A session's own changes (STORE, EXPUNGE) are applied here directly when they commit (`applyFlags`, `expunge`),
 * and the other views are told then; their change-log entries are then recognised as already applied.
 */
import type { ChangeEntry, Flag, Id, IndexColumns, IndexSnapshot, MailboxRecord, MessageIndexEntry, StoragePorts } from '../ports.ts';
import { Columns } from './columns.ts';
import { FlagSets } from './flag-sets.ts';
import { encodeIndexSnapshot, openIndexSnapshot } from './snapshot.ts';
import type { SnapshotHead } from './snapshot.ts';

/** Change-log entries read per storage call while catching up (an entry may carry hundreds of keywords). */
const PAGE = 200;
/** Catching up yields to the event loop once it has run this long (as storage/time-slice.ts does for commands). */
const SLICE_MS = 8;
/** A snapshot's modseqs, sizes and dates are read this long after its head unless a command needs them first. */
const REST_AFTER_MS = 50;

/** A session's view of the index. */
export interface IndexView {
  /** Messages are about to leave the index (expunged by someone else), with their last state. */
  expunging(entries: readonly MessageIndexEntry[]): void;
  /** The index applied changes from the change log (new messages, flags, expunges, the mailbox deleted). */
  changed(): void;
}

export type IndexStorage = Pick<StoragePorts, 'messages' | 'changes'>;

const yieldToLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class MailboxIndex {
  readonly mailboxId: Id;
  readonly userId: Id;
  readonly uidValidity: number;
  readonly #storage: IndexStorage;
  readonly #columns = new Columns();
  readonly flagSets = new FlagSets();
  readonly #views = new Set<IndexView>();
  /** Change-log position applied so far. */
  #cursor = 0;
  /** Change-log position of the last snapshot saved or loaded (snapshot.ts). */
  #savedCursor = 0;
  /** Highest UID ever loaded: later loads read only above it (never decreases, unlike the highest held UID). */
  #loadedThrough = 0;
  /** UIDs a session expunged itself whose change-log entry has not been read yet: never loaded again. */
  readonly #tombstones = new Set<number>();
  #stamp = 0;
  #highestModseq: number;
  #deleted = false;
  /** Index of the first message without \Seen (-1: none), or undefined when it must be found again. */
  #firstUnseen: number | undefined = undefined;
  /** Messages flagged \Deleted (STATUS DELETED), or undefined when they must be counted again. */
  #deletedCount: number | undefined = undefined;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  /** What the queued refresh is for: a caller that must see every commit (refresh), and the latest id notified. */
  #queuedForced = false;
  #queuedLatest = 0;

  private constructor(storage: IndexStorage, mailbox: MailboxRecord) {
    this.#storage = storage;
    this.mailboxId = mailbox.id;
    this.userId = mailbox.userId;
    this.uidValidity = mailbox.uidValidity;
    this.#highestModseq = mailbox.highestModseq;
  }

  /**
   * Reads the index: from its saved snapshot when there is a usable one (the caller's refresh then catches up on the
   * change log from the snapshot's cursor), else in full: the change-log cursor, then the columns in one call. From a
   * snapshot only its header and flag lists are read now; its columns when first used (Columns), or `restAfterMs`
   * later (a session that only waits in IDLE does not keep the snapshot open).
   */
  static async load(storage: IndexStorage, mailbox: MailboxRecord, restAfterMs = REST_AFTER_MS): Promise<MailboxIndex> {
    const index = new MailboxIndex(storage, mailbox);
    const source = await storage.messages.indexSnapshot?.(mailbox.id);
    let snapshot: SnapshotHead | null = null;
    if (source && source.uidValidity === mailbox.uidValidity) snapshot = openIndexSnapshot(source);
    else source?.close();
    if (source && snapshot) {
      index.#cursor = index.#savedCursor = source.cursor;
      const ids = snapshot.flagSets.map((flags) => index.flagSets.intern(flags));
      // a fresh table numbers the lists as the snapshot did: the column is taken as it is
      const renumber = ids.some((id, k) => id !== k);
      const { count, firstUid, lastUid } = snapshot;
      index.#columns.adoptDeferred({
        count,
        firstUid,
        lastUid,
        head() {
          const head = snapshot.head();
          if (renumber) for (let i = 0; i < count; i++) head.flags[i] = ids[head.flags[i]!]!;
          return head;
        },
        rest: () => snapshot.rest(),
      });
      index.#loadedThrough = Math.max(lastUid, snapshot.loadedThrough);
      index.#firstUnseen = snapshot.firstUnseen;
      index.noteModseq(snapshot.highestModseq);
      const timer = setTimeout(() => index.#readLater(), restAfterMs);
      (timer as { unref?: () => void }).unref?.();
      return index;
    }
    index.#cursor = await storage.changes.latest(mailbox.userId);
    index.#append(await storage.messages.indexColumns(mailbox.id, { throughChange: index.#cursor }));
    return index;
  }

  /** Reads the columns the snapshot left for later, unless a command already did: UIDs and flags, the rest next turn. */
  #readLater(): void {
    try {
      if (!this.#columns.readNext()) return;
      const timer = setTimeout(() => this.#readLater(), 0);
      (timer as { unref?: () => void }).unref?.();
    } catch {
      // the first command that needs them tries again and reports the failure
    }
  }

  /**
   * The index as a snapshot to save, or null when there is nothing new since the last one or a catch-up is
   * running (its cursor may then be ahead of rows still to be loaded).
   */
  snapshot(): IndexSnapshot | null {
    if (this.#running || this.#cursor <= this.#savedCursor || this.#deleted) return null;
    const c = this.#columns;
    const n = c.count;
    const flagIds = c.flags.subarray(0, n);
    // only the flag lists in use, renumbered
    const used = new Map<number, number>();
    const flags = new Uint32Array(n);
    const flagSets: Flag[][] = [];
    for (let i = 0; i < n; i++) {
      let id = used.get(flagIds[i]!);
      if (id === undefined) used.set(flagIds[i]!, (id = flagSets.push([...this.flagSets.flags(flagIds[i]!)]) - 1));
      flags[i] = id;
    }
    const bytes = encodeIndexSnapshot({
      columns: { count: n, uids: c.uids, modseqs: c.modseqs, sizes: c.sizes, internalDates: c.dates, flags, flagSets },
      loadedThrough: this.#loadedThrough,
      highestModseq: this.#highestModseq,
      firstUnseen: this.firstUnseen(),
    });
    return { uidValidity: this.uidValidity, cursor: this.#cursor, bytes };
  }

  /** Read in full and not saved as a snapshot since (its next load would read every message again). */
  get unsaved(): boolean {
    return this.#savedCursor === 0;
  }

  /** A snapshot taken at this cursor was saved. */
  saved(cursor: number): void {
    if (cursor > this.#savedCursor) this.#savedCursor = cursor;
  }

  // --- reading ----------------------------------------------------------------------------------------------

  /** Messages held. */
  get count(): number {
    return this.#columns.count;
  }

  /** Highest UID held (0 when empty). */
  get maxUid(): number {
    return this.#columns.maxUid;
  }

  get highestModseq(): number {
    return this.#highestModseq;
  }

  /** The stamp of the latest flag change applied. */
  get stamp(): number {
    return this.#stamp;
  }

  /** True once the change log said the mailbox was deleted. */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** Views attached (sessions with the mailbox open). */
  get views(): number {
    return this.#views.size;
  }

  lowerBound(uid: number): number {
    return this.#columns.lowerBound(uid);
  }

  indexOf(uid: number): number {
    return this.#columns.indexOf(uid);
  }

  uidAt(i: number): number {
    return this.#columns.uidAt(i);
  }

  modseqAt(i: number): number {
    return this.#columns.modseqs[i]!;
  }

  stampAt(i: number): number {
    return this.#columns.stamps[i]!;
  }

  flagsAt(i: number): readonly Flag[] {
    return this.flagSets.flags(this.#columns.flags[i]!);
  }

  seenAt(i: number): boolean {
    return this.flagSets.seen(this.#columns.flags[i]!);
  }

  deletedAt(i: number): boolean {
    return this.flagSets.deleted(this.#columns.flags[i]!);
  }

  /** The message at index i as an entry (a new object; its flags list is shared and frozen). */
  entryAt(i: number): MessageIndexEntry {
    const c = this.#columns;
    return { uid: c.uids[i]!, modseq: c.modseqs[i]!, flags: this.flagSets.flags(c.flags[i]!) as Flag[], size: c.sizes[i]!, internalDate: c.dates[i]! };
  }

  /** Index of the first message without \Seen, -1 when every message is seen (remembered until something changes). */
  firstUnseen(): number {
    if (this.#firstUnseen === undefined) {
      const c = this.#columns;
      let i = 0;
      while (i < c.count && this.flagSets.seen(c.flags[i]!)) i++;
      this.#firstUnseen = i < c.count ? i : -1;
    }
    return this.#firstUnseen;
  }

  /** Messages flagged \Deleted (STATUS DELETED, RFC 9051), remembered until something changes. */
  deletedCount(): number {
    if (this.#deletedCount === undefined) {
      const c = this.#columns;
      let n = 0;
      for (let i = 0; i < c.count; i++) if (this.flagSets.deleted(c.flags[i]!)) n++;
      this.#deletedCount = n;
    }
    return this.#deletedCount;
  }

  // --- views ------------------------------------------------------------------------------------------------

  attach(view: IndexView): void {
    this.#views.add(view);
  }

  detach(view: IndexView): void {
    this.#views.delete(view);
  }

  // --- keeping current --------------------------------------------------------------------------------------

  /**
   * Reads the change log from the cursor and applies it. Calls are serialized: one that arrives while a refresh
   * runs gets a refresh started after it (so it sees every commit made before the call).
   */
  refresh(): Promise<void> {
    this.#queuedForced = true;
    return this.#refresh();
  }

  /**
   * A change notification said the log reaches `latest`: reads it unless the cursor is already there (a session's own
   * APPEND or EXPUNGE read its entries before their notification came back), or a refresh queued meanwhile gets there.
   */
  notified(latest: number): Promise<void> {
    if (latest <= this.#cursor) return Promise.resolve();
    if (latest > this.#queuedLatest) this.#queuedLatest = latest;
    return this.#refresh();
  }

  #refresh(): Promise<void> {
    if (!this.#running) return this.#start();
    this.#queued ??= this.#running.then(
      () => this.#startQueued(),
      () => this.#startQueued(),
    );
    return this.#queued;
  }

  /** The queued refresh: skipped when only notifications asked for it and the cursor already reaches them. */
  #startQueued(): Promise<void> {
    if (!this.#queuedForced && this.#queuedLatest <= this.#cursor) {
      this.#queued = null;
      return Promise.resolve();
    }
    return this.#start();
  }

  #start(): Promise<void> {
    this.#queued = null;
    this.#queuedForced = false;
    this.#queuedLatest = 0;
    const run: Promise<void> = this.#catchUp().finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #catchUp(): Promise<void> {
    let changed = false;
    let load = false;
    let since = performance.now();
    // The cursor moves only once the messages its entries announce are loaded: a load that fails (the database went
    // away between the two reads) leaves it where it was, so the next catch-up reads those entries again (applying
    // flag and expunge entries twice is harmless) instead of passing messages it never loaded.
    let cursor = this.#cursor;
    try {
      for (;;) {
        const entries = await this.#storage.changes.since(this.userId, cursor, { mailboxId: this.mailboxId, limit: PAGE });
        const applied = this.#applyLog(entries);
        changed ||= applied.changed;
        load ||= applied.load;
        if (entries.length > 0) cursor = entries[entries.length - 1]!.id;
        if (entries.length < PAGE) break;
        if (performance.now() - since >= SLICE_MS) {
          await yieldToLoop();
          since = performance.now();
        }
      }
      if (load) {
        const rows = await this.#storage.messages.indexColumns(this.mailboxId, { afterUid: this.#loadedThrough, throughChange: cursor });
        changed = this.#append(rows) || changed;
      }
      this.#cursor = cursor;
    } finally {
      if (changed) for (const view of [...this.#views]) view.changed();
    }
  }

  #applyLog(entries: readonly ChangeEntry[]): { changed: boolean; load: boolean } {
    const c = this.#columns;
    let changed = false;
    let load = false;
    const gone: number[] = [];
    for (const change of entries) {
      if (change.modseq > this.#highestModseq) this.#highestModseq = change.modseq;
      const uid = change.uid;
      switch (change.type) {
        case 'exists':
          if (uid !== null && uid > this.#loadedThrough && !this.#tombstones.has(uid)) load = true;
          break;
        case 'expunge': {
          if (uid === null) break;
          this.#tombstones.delete(uid);
          const i = c.indexOf(uid);
          if (i >= 0) gone.push(i);
          break;
        }
        case 'flags': {
          const i = uid === null ? -1 : c.indexOf(uid);
          if (i < 0 || change.modseq <= c.modseqs[i]!) break;
          this.#setFlags(i, change.flags ?? [], change.modseq);
          changed = true;
          break;
        }
        case 'mailbox.delete':
          this.#deleted = true;
          changed = true;
          break;
        default:
          break;
      }
    }
    if (gone.length > 0) {
      this.#remove([...new Set(gone)].sort((a, b) => a - b), null);
      changed = true;
    }
    return { changed, load };
  }

  #setFlags(i: number, flags: readonly Flag[], modseq: number): number {
    const c = this.#columns;
    c.flags[i] = this.flagSets.intern(flags);
    c.modseqs[i] = modseq;
    c.stamps[i] = ++this.#stamp;
    this.#firstUnseen = undefined;
    this.#deletedCount = undefined;
    if (modseq > this.#highestModseq) this.#highestModseq = modseq;
    return this.#stamp;
  }

  /** Appends loaded rows above every held UID; false when there were none. */
  #append(rows: IndexColumns): boolean {
    const ids = rows.flagSets.map((flags) => this.flagSets.intern(flags));
    const flagIds = new Uint32Array(rows.count);
    let keep = 0;
    for (let k = 0; k < rows.count; k++) {
      const uid = rows.uids[k]!;
      if (uid <= this.#loadedThrough || this.#tombstones.has(uid)) continue;
      // compact in place: rows skipped above are overwritten by the ones after them
      rows.uids[keep] = uid;
      rows.modseqs[keep] = rows.modseqs[k]!;
      rows.sizes[keep] = rows.sizes[k]!;
      rows.internalDates[keep] = rows.internalDates[k]!;
      flagIds[keep] = ids[rows.flags[k]!]!;
      if (rows.modseqs[k]! > this.#highestModseq) this.#highestModseq = rows.modseqs[k]!;
      keep++;
    }
    if (keep === 0) return false;
    this.#columns.append({ ...rows, count: keep }, flagIds);
    this.#loadedThrough = this.#columns.maxUid;
    if (this.#firstUnseen === -1) this.#firstUnseen = undefined;
    this.#deletedCount = undefined;
    return true;
  }

  /** Removes the messages at these indexes (ascending), telling every view but `except` first. */
  #remove(indexes: readonly number[], except: IndexView | null): void {
    if (indexes.length === 0) return;
    const entries = indexes.map((i) => this.entryAt(i));
    for (const view of [...this.#views]) if (view !== except) view.expunging(entries);
    this.#columns.remove(indexes);
    this.#firstUnseen = undefined;
    this.#deletedCount = undefined;
  }

  // --- a session's own changes ------------------------------------------------------------------------------

  /**
   * Flag changes a session committed: applied unless the index already holds a newer state. Returns the stamp each
   * change got (0 when not applied), so the session can tell its own changes from others'.
   */
  applyFlags(changed: ReadonlyArray<{ uid: number; flags: readonly Flag[]; modseq: number }>, by: IndexView | null): number[] {
    let applied = false;
    const stamps = changed.map((change) => {
      const i = this.#columns.indexOf(change.uid);
      if (i < 0 || change.modseq < this.#columns.modseqs[i]!) return 0;
      // the change log got here first: the same change (one modseq per commit), already stamped
      if (change.modseq === this.#columns.modseqs[i]!) return this.#columns.stamps[i]!;
      applied = true;
      return this.#setFlags(i, change.flags, change.modseq);
    });
    // the change-log entries will be recognised as applied: the other views (an IDLE session) hear of it now
    if (applied) this.#tellOthers(by);
    return stamps;
  }

  /** Messages a session expunged (and reports itself): removed now, the other views told. */
  expunge(uids: readonly number[], by: IndexView | null): void {
    const indexes: number[] = [];
    for (const uid of uids) {
      const i = this.#columns.indexOf(uid);
      if (i >= 0) indexes.push(i);
      // its change-log entry is still to come (or a load that read it before the commit is): skip it then
      if (i >= 0 || uid > this.#loadedThrough) this.#tombstones.add(uid);
    }
    this.#remove([...new Set(indexes)].sort((a, b) => a - b), by);
    if (indexes.length > 0) this.#tellOthers(by);
  }

  /** Every view but `by` is told the index changed (a session's own change, applied before its log entry is read). */
  #tellOthers(by: IndexView | null): void {
    for (const view of [...this.#views]) if (view !== by) view.changed();
  }

  /** Raises the highest modseq to what a fresher mailbox record says. */
  noteModseq(modseq: number): void {
    if (modseq > this.#highestModseq) this.#highestModseq = modseq;
  }
}
