/**
 * The selected mailbox as this session's client knows it, as a view over the process's shared index of the
 * mailbox (storage/mailbox-index): the session keeps no copy of the messages, only its difference from the index.
 *
 * - `#announced`: the highest UID told with EXISTS. The client's messages are the index's UIDs up to it, plus
 * - `#expunged`: messages gone from the index (another session's EXPUNGE, MOVE) not yet reported, with their last
 *   state, so sequence numbers stay where the client has them until EXPUNGE may be sent;
 * - `#flagStamp`: the index's flag-change stamp up to which changes were reported, and `#own`, the stamps of the
 *   session's own changes (reported by its command, not again);
 * - `#recent`: the UID ranges this session claimed as \Recent (recent.ts).
 *
 * Changes reach the index through the change log (one subscription per open mailbox); the index tells its views.
 * `flush()` turns the difference into untagged responses at the points RFC 3501 allows:
 *
 *   * n EXPUNGE   only when `expunge` is allowed (never during FETCH, STORE, SEARCH, COPY by sequence
 *                 number); until then the expunged message keeps its sequence number
 *   * VANISHED u  instead of EXPUNGE once QRESYNC is enabled (RFC 7162 §3.2.10), at the same points
 *   * n EXISTS    only when messages were added (never for a decrease: no `* 0 EXISTS` loop)
 *   * n RECENT    with EXISTS, when this session claimed new recent messages
 *   * n FETCH (FLAGS (...) UID u [MODSEQ (m)])   flags changed elsewhere
 */
import type { MailboxRecord, MessageIndexEntry, StoragePorts } from '../../storage/ports.ts';
import type { IndexLease, MailboxIndexes } from '../../storage/mailbox-index/registry.ts';
import type { IndexView, MailboxIndex } from '../../storage/mailbox-index/mailbox-index.ts';
import { claimRecent, recentMark, RecentUids } from './recent.ts';
import { renderFlags } from './render.ts';
import { formatSequenceSet, resolveSequenceSet } from './sequence.ts';
import type { NumberRange, SequenceSet } from './sequence.ts';

export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

export interface FlushOptions {
  /** EXPUNGE responses may be sent now. */
  expunge: boolean;
  /** CONDSTORE is on: untagged FETCH carries MODSEQ. */
  condstore: boolean;
  /** QRESYNC is on: expunges are reported as one `* VANISHED uid-set` (RFC 7162 §3.2.10). */
  vanished?: boolean;
}

/** Told when the selected mailbox's index applied changes: an object, not a callback (no closure per session). */
export interface ChangeWatcher {
  indexChanged(): void;
  /**
   * EXPUNGE responses for these messages (sequence numbers as the client has them now) are about to be written:
   * CONTEXT=SEARCH sends its REMOVEFROM first (RFC 5267 §4.4).
   */
  expungesTold?(messages: ReadonlyArray<{ uid: number; seq: number }>): void;
}

export class SelectedMailbox implements IndexView {
  readonly mailbox: MailboxRecord;
  readonly readOnly: boolean;
  readonly #ephemeral: StoragePorts['ephemeral'];
  readonly #lease: IndexLease;
  readonly #index: MailboxIndex;
  readonly #watcher: ChangeWatcher;
  #announced = 0;
  /** Expunged elsewhere, not reported yet, ascending by UID, with their last state. */
  #expunged: MessageIndexEntry[] = [];
  #flagStamp: number;
  /** Stamps of this session's own flag changes since the last flush, by UID. */
  #own: Map<number, number> | null = null;
  #keywordVersion: number;
  #dirty = false;
  #closed = false;
  /**
   * This session takes part in \Recent: claims new messages and reports `* n RECENT` with EXISTS. False for an
   * IMAP4rev2 session, which has no \Recent (ENABLE IMAP4rev2 comes before SELECT, so it holds for the whole view).
   */
  readonly #claims: boolean;
  readonly recent = new RecentUids(this);

  private constructor(ephemeral: StoragePorts['ephemeral'], lease: IndexLease, mailbox: MailboxRecord, readOnly: boolean, watcher: ChangeWatcher, claims: boolean) {
    this.#ephemeral = ephemeral;
    this.#claims = claims;
    this.#lease = lease;
    this.#index = lease.index;
    this.mailbox = mailbox;
    this.readOnly = readOnly;
    this.#watcher = watcher;
    this.#flagStamp = this.#index.stamp;
    this.#keywordVersion = this.#index.flagSets.keywordVersion;
    this.#announced = this.#index.maxUid;
  }

  /**
   * Takes the mailbox's shared index (loaded, or caught up with the change log when another session has it), and
   * claims \Recent. `watcher` is told whenever the index applied changes (the session wakes IDLE with it).
   * `recent: false` (an IMAP4rev2 session) neither claims nor reads \Recent: its messages stay recent for an
   * IMAP4rev1 session that selects the mailbox later.
   */
  static async open(
    indexes: MailboxIndexes,
    storage: Pick<StoragePorts, 'ephemeral'>,
    mailbox: MailboxRecord,
    readOnly: boolean,
    watcher: ChangeWatcher,
    recent = true,
  ): Promise<SelectedMailbox> {
    // \Recent is claimed (or read) while the index loads, one round trip to the ephemeral store overlapping the
    // other: up to the highest UID given out when the mailbox record was read (below its UIDNEXT); UIDs the index
    // holds above that (committed since) are claimed once it is loaded, as a later EXISTS claims its new UIDs
    const upTo = Math.max(0, mailbox.uidNext - 1);
    const claiming = !recent
      ? Promise.resolve(0)
      : readOnly
        ? recentMark(storage.ephemeral, mailbox.id, mailbox.uidValidity)
        : claimRecent(storage.ephemeral, mailbox.id, mailbox.uidValidity, upTo);
    let lease: IndexLease;
    try {
      lease = await indexes.acquire(mailbox);
    } catch (err) {
      claiming.catch(() => {}); // the load's failure is the one reported
      throw err;
    }
    const view = new SelectedMailbox(storage.ephemeral, lease, mailbox, readOnly, watcher, recent);
    lease.index.attach(view);
    try {
      const max = view.#announced;
      const mark = await claiming;
      // an IMAP4rev2 session (recent false) holds nothing as recent
      if (recent && readOnly) view.recent.add(mark, max);
      else if (recent) {
        view.recent.add(mark, upTo);
        if (max > upTo) view.recent.add(Math.max(await claimRecent(storage.ephemeral, mailbox.id, mailbox.uidValidity, max), upTo), max);
      }
    } catch (err) {
      view.close();
      throw err;
    }
    return view;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#index.detach(this);
    this.#lease.release();
  }

  /** What this session holds besides the shared index (tests, metrics): counts, never per-message copies. */
  footprint(): { expunged: number; ownChanges: number; recentRanges: number; index: MailboxIndex } {
    return { expunged: this.#expunged.length, ownChanges: this.#own?.size ?? 0, recentRanges: this.recent.ranges, index: this.#index };
  }

  // --- IndexView ----------------------------------------------------------------------------------------------

  expunging(entries: readonly MessageIndexEntry[]): void {
    const known = entries.filter((entry) => entry.uid <= this.#announced);
    if (known.length === 0) return;
    this.#expunged = [...this.#expunged, ...known].sort((a, b) => a.uid - b.uid);
  }

  changed(): void {
    this.#dirty = true;
    this.#watcher.indexChanged();
  }

  // --- the client's view ------------------------------------------------------------------------------------

  /** Messages the client knows: announced ones still in the index plus the expunged ones not reported. */
  get exists(): number {
    return this.#index.lowerBound(this.#announced + 1) + this.#expunged.length;
  }

  /** Highest UID the client knows (0 when none). */
  get lastUid(): number {
    const held = this.#index.lowerBound(this.#announced + 1);
    const last = held > 0 ? this.#index.uidAt(held - 1) : 0;
    const gone = this.#expunged.length > 0 ? this.#expunged[this.#expunged.length - 1]!.uid : 0;
    return Math.max(last, gone);
  }

  get highestModseq(): number {
    return this.#index.highestModseq;
  }

  /** True once the mailbox was deleted by someone else (the session then says BYE). */
  get deleted(): boolean {
    return this.#index.deleted;
  }

  /** Has the index applied changes since the last sync? */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Pending untagged responses exist (or may). */
  get pending(): boolean {
    return this.#dirty || this.#expunged.length > 0 || this.#index.maxUid > this.#announced || this.#index.stamp > this.#flagStamp;
  }

  /** Index into #expunged of the first entry with UID >= uid. */
  #expungedBelow(uid: number): number {
    let low = 0;
    let high = this.#expunged.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#expunged[mid]!.uid < uid) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The client's messages with from < UID <= to. */
  countBetween(from: number, to: number): number {
    const upTo = Math.min(to, this.#announced);
    if (upTo <= from) return 0;
    const index = this.#index;
    return index.lowerBound(upTo + 1) - index.lowerBound(from + 1) + this.#expungedBelow(upTo + 1) - this.#expungedBelow(from + 1);
  }

  /** Sequence number (1-based) of `uid` in the client's view, or 0. */
  seqOf(uid: number): number {
    if (uid > this.#announced || uid < 1) return 0;
    const before = this.#expungedBelow(uid);
    const i = this.#index.indexOf(uid);
    if (i >= 0) return i + before + 1;
    if (this.#expunged[before]?.uid === uid) return this.#index.lowerBound(uid) + before + 1;
    return 0;
  }

  /**
   * The index entry of a message the client knows: a live one, or the last known state of one expunged elsewhere
   * and not reported yet (RFC 2180 §4.1.1: its metadata may still be fetched); undefined otherwise.
   */
  entry(uid: number): MessageIndexEntry | undefined {
    if (uid > this.#announced) return undefined;
    const i = this.#index.indexOf(uid);
    if (i >= 0) return this.#index.entryAt(i);
    const gone = this.#expunged[this.#expungedBelow(uid)];
    return gone?.uid === uid ? gone : undefined;
  }

  /** Sequence number and entry of a message the client knows (one lookup; for FETCH), or undefined. */
  message(uid: number): { seq: number; entry: MessageIndexEntry } | undefined {
    if (uid > this.#announced) return undefined;
    const i = this.#index.indexOf(uid);
    if (i < 0) {
      const entry = this.entry(uid);
      return entry ? { seq: this.seqOf(uid), entry } : undefined;
    }
    const seq = i + 1 + (this.#expunged.length > 0 ? this.#expungedBelow(uid) : 0);
    return { seq, entry: this.#index.entryAt(i) };
  }

  isExpunged(uid: number): boolean {
    return this.#expunged[this.#expungedBelow(uid)]?.uid === uid;
  }

  /** The client's UIDs in sequence order (a new array: for one command, never kept). */
  uids(): number[] {
    const held = this.#index.lowerBound(this.#announced + 1);
    const out = new Array<number>(held + this.#expunged.length);
    let i = 0;
    let k = 0;
    for (let n = 0; n < out.length; n++) {
      const gone = this.#expunged[k];
      if (gone && (i >= held || gone.uid < this.#index.uidAt(i))) {
        out[n] = gone.uid;
        k++;
      } else out[n] = this.#index.uidAt(i++);
    }
    return out;
  }

  /** UIDs a UID set names in the client's view, ascending (`*` is the highest UID the client knows). */
  selectUids(set: SequenceSet): number[] {
    const out: number[] = [];
    const held = this.#index.lowerBound(this.#announced + 1);
    for (const range of resolveSequenceSet(set, this.lastUid)) {
      const to = Math.min(range.to, this.#announced);
      let i = this.#index.lowerBound(range.from);
      let k = this.#expungedBelow(range.from);
      for (;;) {
        const live = i < held && this.#index.uidAt(i) <= to ? this.#index.uidAt(i) : Infinity;
        const gone = k < this.#expunged.length && this.#expunged[k]!.uid <= to ? this.#expunged[k]!.uid : Infinity;
        if (live === Infinity && gone === Infinity) break;
        if (live < gone) (out.push(live), i++);
        else (out.push(gone), k++);
      }
    }
    return out;
  }

  /** The highest UID told to the client with EXISTS. */
  get announced(): number {
    return this.#announced;
  }

  /** The next UID as far as this session knows (the mailbox record's, or above the highest UID the index holds). */
  get uidNext(): number {
    return Math.max(this.mailbox.uidNext, this.#index.maxUid + 1);
  }

  /**
   * QRESYNC: UIDs within `ranges` (ascending, merged) that are not in the mailbox, as ranges: the answer when the
   * change log no longer knows what was expunged (RFC 7162 allows a larger VANISHED (EARLIER) set). Messages expunged
   * but not yet reported to this client are left out (their VANISHED comes at the next sync point). Walks the index
   * from the first UID of each range: O(messages within the ranges).
   */
  absent(ranges: readonly NumberRange[]): NumberRange[] {
    const out: NumberRange[] = [];
    const index = this.#index;
    const push = (from: number, to: number) => {
      for (let uid = from; uid <= to; ) {
        // cut around pending expunges (few) so they are not told twice
        const k = this.#expungedBelow(uid);
        const gone = this.#expunged[k]?.uid;
        if (gone === undefined || gone > to) {
          out.push({ from: uid, to });
          return;
        }
        if (gone > uid) out.push({ from: uid, to: gone - 1 });
        uid = gone + 1;
      }
    };
    for (const range of ranges) {
      let next = range.from;
      for (let i = index.lowerBound(range.from); i < index.count && next <= range.to; i++) {
        const uid = index.uidAt(i);
        if (uid > range.to) break;
        if (uid > next) push(next, uid - 1);
        next = uid + 1;
      }
      if (next <= range.to) push(next, range.to);
    }
    return out;
  }

  /** Is `uid` in the mailbox (live in the index, or expunged but not yet reported to this client)? */
  holds(uid: number): boolean {
    return this.#index.indexOf(uid) >= 0 || this.isExpunged(uid);
  }

  /**
   * QRESYNC on SELECT (RFC 7162 §3.2.5): `* n FETCH (FLAGS ... UID u MODSEQ (m))` for the client's messages changed
   * after `modseq`, limited to `wanted` when given. One pass over the in-memory index.
   */
  changedSince(modseq: number, wanted: ((uid: number) => boolean) | null): string[] {
    const lines: string[] = [];
    const index = this.#index;
    const held = index.lowerBound(this.#announced + 1);
    for (let i = 0; i < held; i++) {
      if (index.modseqAt(i) <= modseq) continue;
      const uid = index.uidAt(i);
      if (wanted && !wanted(uid)) continue;
      lines.push(`* ${this.seqOf(uid)} FETCH (${this.fetchFlags(index.entryAt(i), true)})`);
    }
    return lines;
  }

  /** UIDs at these sequence numbers (ascending, all within `exists`). */
  uidsAt(seqs: readonly number[]): number[] {
    if (this.#expunged.length === 0) return seqs.map((seq) => this.#index.uidAt(seq - 1));
    const uids = this.uids();
    return seqs.map((seq) => uids[seq - 1]!);
  }

  /** Flags for the FLAGS response: system flags plus every keyword seen in the mailbox. */
  flagList(): string[] {
    return [...SYSTEM_FLAGS, ...this.#index.flagSets.keywords()];
  }

  /** Sequence number of the first message without \Seen, 0 when none (for SELECT's UNSEEN). */
  firstUnseen(): number {
    const i = this.#index.firstUnseen();
    // the index's messages the client knows are its first `held` ones; with none expunged unreported, i + 1 is the
    // sequence number (no UID read: a mailbox opened from its snapshot answers SELECT without its columns)
    if (i < 0 || i >= this.#index.lowerBound(this.#announced + 1)) return 0;
    return this.#expunged.length === 0 ? i + 1 : this.seqOf(this.#index.uidAt(i));
  }

  /** UIDs of live messages flagged \Deleted, ascending (EXPUNGE, CLOSE). */
  deletedUids(): number[] {
    const out: number[] = [];
    const held = this.#index.lowerBound(this.#announced + 1);
    for (let i = 0; i < held; i++) if (this.#index.deletedAt(i)) out.push(this.#index.uidAt(i));
    return out;
  }

  /** A new keyword appeared since the client was last sent FLAGS. */
  #newKeywords(): boolean {
    const version = this.#index.flagSets.keywordVersion;
    if (version === this.#keywordVersion) return false;
    this.#keywordVersion = version;
    return true;
  }

  // --- sync points ------------------------------------------------------------------------------------------

  /**
   * Brings the view up to date: with `force` the shared index first reads the change log (a command that must see
   * everything committed before it: NOOP, IDLE, the session's own APPEND); otherwise what the index already applied.
   */
  async sync(force = false): Promise<void> {
    if (force) await this.#index.refresh();
    this.#dirty = false;
  }

  /** Untagged responses for everything pending that may be sent now (see the module comment). */
  async flush(options: FlushOptions): Promise<string[]> {
    const lines: string[] = [];
    if (options.expunge && this.#expunged.length > 0) {
      this.#watcher.expungesTold?.(this.#expunged.map((entry) => ({ uid: entry.uid, seq: this.seqOf(entry.uid) })));
    }
    if (options.expunge && this.#expunged.length > 0 && options.vanished) {
      lines.push(`* VANISHED ${formatSequenceSet(this.#expunged.map((entry) => entry.uid))}`);
      this.#expunged = [];
    } else if (options.expunge && this.#expunged.length > 0) {
      while (this.#expunged.length > 0) {
        const seq = this.seqOf(this.#expunged[0]!.uid);
        this.#expunged = this.#expunged.slice(1);
        if (seq) lines.push(`* ${seq} EXPUNGE`);
      }
    }
    const index = this.#index;
    const before = this.#announced;
    if (index.maxUid > before) {
      this.#announced = index.maxUid;
      if (this.#newKeywords()) lines.push(...this.flagsResponses());
      if (!this.readOnly && this.#claims) {
        const max = this.#announced;
        const mark = await claimRecent(this.#ephemeral, this.mailbox.id, this.mailbox.uidValidity, max);
        this.recent.add(Math.max(mark, before), max);
      }
      lines.push(`* ${this.exists} EXISTS`);
      if (this.#claims) lines.push(`* ${this.recent.size} RECENT`);
    }
    if (index.stamp > this.#flagStamp) {
      if (this.#newKeywords()) lines.push(...this.flagsResponses());
      const since = this.#flagStamp;
      const own = this.#own;
      const held = index.lowerBound(before + 1);
      for (let i = 0; i < held; i++) {
        const stamp = index.stampAt(i);
        if (stamp <= since || own?.get(index.uidAt(i)) === stamp) continue;
        const entry = index.entryAt(i);
        lines.push(`* ${this.seqOf(entry.uid)} FETCH (${this.fetchFlags(entry, options.condstore)})`);
      }
      this.#flagStamp = index.stamp;
      this.#own = null;
    }
    return lines;
  }

  /** `FLAGS (...) UID n [MODSEQ (m)]` for an untagged FETCH. */
  fetchFlags(entry: MessageIndexEntry, condstore: boolean): string {
    const flags = this.recent.has(entry.uid) ? [...entry.flags, '\\Recent'] : entry.flags;
    return `FLAGS ${renderFlags(flags)} UID ${entry.uid}${condstore ? ` MODSEQ (${entry.modseq})` : ''}`;
  }

  /**
   * `* FLAGS` and PERMANENTFLAGS when the index holds a keyword this client was not told of yet, else nothing. A FETCH
   * or STORE sends it before lines it rendered from the index: another session's change may have brought a keyword
   * in while the command waited (storage, yielding to other sessions), and a keyword must be in FLAGS before use.
   */
  keywordResponses(): string[] {
    return this.#newKeywords() ? this.flagsResponses() : [];
  }

  /** `* FLAGS (...)` and the PERMANENTFLAGS that go with it. */
  flagsResponses(): string[] {
    this.#keywordVersion = this.#index.flagSets.keywordVersion;
    const flags = this.flagList();
    const permanent = this.readOnly ? '()' : renderFlags([...flags, '\\*']);
    return [`* FLAGS ${renderFlags(flags)}`, `* OK [PERMANENTFLAGS ${permanent}] ${this.readOnly ? 'No permanent flags permitted' : 'Flags permitted'}`];
  }

  // --- the session's own changes ----------------------------------------------------------------------------

  /** The session's own expunge (EXPUNGE, CLOSE, MOVE): removes the UIDs, returns the EXPUNGE sequence numbers in order. */
  remove(uids: readonly number[]): number[] {
    const sorted = [...new Set(uids)].sort((a, b) => a - b);
    // sequence numbers as each EXPUNGE is reported: every earlier one has moved the later ones down by one
    const out: number[] = [];
    const told: Array<{ uid: number; seq: number }> = [];
    let removed = 0;
    for (const uid of sorted) {
      const seq = this.seqOf(uid);
      if (seq) (out.push(seq - removed++), told.push({ uid, seq }));
    }
    if (told.length > 0) this.#watcher.expungesTold?.(told);
    const gone = new Set(sorted);
    if (this.#expunged.some((entry) => gone.has(entry.uid))) this.#expunged = this.#expunged.filter((entry) => !gone.has(entry.uid));
    this.#index.expunge(sorted, this);
    return out;
  }

  /** The session's own flag change (STORE, FETCH setting \Seen): the shared index takes it now. True when a keyword is new. */
  applyFlags(changed: ReadonlyArray<{ uid: number; flags: string[]; modseq: number }>): boolean {
    const stamps = this.#index.applyFlags(changed, this);
    for (let k = 0; k < changed.length; k++) {
      if (stamps[k]! > 0) (this.#own ??= new Map()).set(changed[k]!.uid, stamps[k]!);
    }
    return this.#newKeywords();
  }

  /** The client was sent this message's FLAGS as of `modseq` (a FETCH): a change it already shows is not reported again. */
  flagsSent(uid: number, modseq: number): void {
    if (this.#index.stamp <= this.#flagStamp) return; // nothing changed since the last report
    const i = this.#index.indexOf(uid);
    if (i < 0 || this.#index.modseqAt(i) !== modseq) return;
    const stamp = this.#index.stampAt(i);
    if (stamp > this.#flagStamp) (this.#own ??= new Map()).set(uid, stamp);
  }

  // --- what changed, for CONTEXT=SEARCH (search-context.ts) --------------------------------------------------

  /** The index's flag-change stamp now and the highest UID the client knows: a point to look for changes from. */
  get changeMark(): { stamp: number; lastUid: number } {
    return { stamp: this.#index.stamp, lastUid: this.lastUid };
  }

  /**
   * UIDs of messages the client knows whose flags changed after `stamp` (the session's own changes included),
   * ascending. One pass over the stamps, as `flush` makes for FETCH FLAGS; nothing when no flag changed.
   */
  flagsChangedSince(stamp: number): number[] {
    const index = this.#index;
    if (index.stamp <= stamp) return [];
    const out: number[] = [];
    const held = index.lowerBound(this.#announced + 1);
    for (let i = 0; i < held; i++) if (index.stampAt(i) > stamp) out.push(index.uidAt(i));
    return out;
  }

  /**
   * One entry per sequence number (index i = sequence number i + 1), expunged-but-unreported messages included
   * with their last known state (SEARCH by sequence number needs the positions as the client knows them). A new
   * array for one command.
   */
  viewEntries(): MessageIndexEntry[] {
    const held = this.#index.lowerBound(this.#announced + 1);
    const out: MessageIndexEntry[] = [];
    let k = 0;
    for (let i = 0; i < held; i++) {
      const uid = this.#index.uidAt(i);
      while (k < this.#expunged.length && this.#expunged[k]!.uid < uid) out.push(this.#expunged[k++]!);
      out.push(this.#index.entryAt(i));
    }
    while (k < this.#expunged.length) out.push(this.#expunged[k++]!);
    return out;
  }
}
