/**
 * The selected mailbox as this session's client knows it: the sequence-number map (UIDs in order), each
 * message's flags and modseq, `\Recent`, and the changes other sessions made that the client has not been
 * told about yet.
 *
 * Changes reach the session through the change log: `changes.subscribe(userId)` only says "something
 * changed" (and wakes IDLE); `sync()` reads `changes.since(cursor)` for this mailbox and folds the entries
 * into pending state; `flush()` turns pending state into untagged responses, at the points RFC 3501 allows:
 *
 *   * n EXPUNGE   only when `expunge` is allowed (never during FETCH, STORE, SEARCH, COPY by sequence
 *                 number); until then the expunged message keeps its sequence number
 *   * n EXISTS    only when messages were added (never for a decrease: no `* 0 EXISTS` loop)
 *   * n RECENT    with EXISTS, when this session claimed new recent messages
 *   * n FETCH (FLAGS (...) UID u [MODSEQ (m)])   flags changed elsewhere
 *
 * The session's own changes are applied directly (`applyFlags`, `remove`) and reported by the command;
 * their change-log entries are recognised later by modseq or by the UID being gone, and not reported twice.
 */
import { TimeSlice } from '../time-slice.ts';
import type { ChangeEntry, MailboxRecord, MessageIndexEntry, StoragePorts } from '../../storage/ports.ts';
import { claimRecent, recentMark } from './recent.ts';
import { renderFlags } from './render.ts';

export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** Change-log entries read per storage call; the loop yields between pages (protocols/time-slice.ts). */
const PAGE = 200;

export interface FlushOptions {
  /** EXPUNGE responses may be sent now. */
  expunge: boolean;
  /** CONDSTORE is on: untagged FETCH carries MODSEQ. */
  condstore: boolean;
}

export class SelectedMailbox {
  readonly mailbox: MailboxRecord;
  readonly readOnly: boolean;
  readonly #storage: StoragePorts;
  /** The client's view: UID of sequence number i + 1 at index i (includes expunged-but-unreported UIDs). */
  readonly uids: number[] = [];
  /** Live messages (not expunged), by UID. */
  readonly #entries = new Map<number, MessageIndexEntry>();
  /** Expunged elsewhere, not yet reported: the entry as last known, so sequence positions stay aligned. */
  readonly #expunged = new Map<number, MessageIndexEntry>();
  /** New UIDs not yet announced with EXISTS, ascending. */
  #added: number[] = [];
  readonly #flagsChanged = new Set<number>();
  readonly recent = new Set<number>();
  #keywords = new Set<string>();
  #cursor = 0;
  #dirty = false;
  #deleted = false;
  highestModseq: number;
  #unsubscribe: (() => void) | null = null;

  private constructor(storage: StoragePorts, mailbox: MailboxRecord, readOnly: boolean) {
    this.#storage = storage;
    this.mailbox = mailbox;
    this.readOnly = readOnly;
    this.highestModseq = mailbox.highestModseq;
  }

  /**
   * Loads the mailbox: the change-log cursor first, then the index, so nothing committed in between is lost
   * (entries already in the index are recognised when the log replays them). `onChange` runs whenever the
   * user's data changed (the session wakes IDLE with it).
   */
  static async open(storage: StoragePorts, mailbox: MailboxRecord, readOnly: boolean, onChange: () => void): Promise<SelectedMailbox> {
    const view = new SelectedMailbox(storage, mailbox, readOnly);
    view.#unsubscribe = storage.changes.subscribe(mailbox.userId, () => {
      view.#dirty = true;
      onChange();
    });
    try {
      view.#cursor = await storage.changes.latest(mailbox.userId);
      const fresh = (await storage.mailboxes.get(mailbox.id)) ?? mailbox;
      view.highestModseq = fresh.highestModseq;
      for (const entry of await storage.messages.index(mailbox.id)) {
        view.uids.push(entry.uid);
        view.#entries.set(entry.uid, entry);
        view.#noteKeywords(entry.flags);
        if (entry.modseq > view.highestModseq) view.highestModseq = entry.modseq;
      }
      const max = view.uids.length ? view.uids[view.uids.length - 1]! : 0;
      const mark = readOnly
        ? await recentMark(storage.ephemeral, mailbox.id, mailbox.uidValidity)
        : await claimRecent(storage.ephemeral, mailbox.id, mailbox.uidValidity, max);
      for (let i = view.uids.length - 1; i >= 0 && view.uids[i]! > mark; i--) view.recent.add(view.uids[i]!);
    } catch (err) {
      view.close();
      throw err;
    }
    return view;
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  get exists(): number {
    return this.uids.length;
  }

  /** True once the mailbox was deleted by someone else (the session then says BYE). */
  get deleted(): boolean {
    return this.#deleted;
  }

  /** Has a change notification arrived since the last sync? */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Pending untagged responses exist (or may: a notification arrived). */
  get pending(): boolean {
    return this.#dirty || this.#expunged.size > 0 || this.#added.length > 0 || this.#flagsChanged.size > 0;
  }

  /** Sequence number (1-based) of `uid` in the client's view, or 0. */
  seqOf(uid: number): number {
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const value = this.uids[mid]!;
      if (value === uid) return mid + 1;
      if (value < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /** The index entry of a live message; undefined when it was expunged (reported or not). */
  entry(uid: number): MessageIndexEntry | undefined {
    return this.#entries.get(uid);
  }

  isExpunged(uid: number): boolean {
    return this.#expunged.has(uid);
  }

  /** Flags for the FLAGS response: system flags plus every keyword seen in the mailbox. */
  flagList(): string[] {
    return [...SYSTEM_FLAGS, ...[...this.#keywords].sort()];
  }

  #noteKeywords(flags: readonly string[]): boolean {
    let added = false;
    for (const flag of flags) {
      if (!flag.startsWith('\\') && !this.#keywords.has(flag)) {
        this.#keywords.add(flag);
        added = true;
      }
    }
    return added;
  }

  /** Reads the change log (always when `force`, else only after a notification) into pending state. */
  async sync(force = false): Promise<void> {
    if (!force && !this.#dirty) return;
    this.#dirty = false;
    const { userId, id } = this.mailbox;
    for (;;) {
      const entries = await this.#storage.changes.since(userId, this.#cursor, { mailboxId: id, limit: PAGE });
      for (const change of entries) this.#apply(change);
      if (entries.length > 0) this.#cursor = entries[entries.length - 1]!.id;
      if (entries.length < PAGE) break;
      await this.#slice.pause();
    }
  }

  /** A long change log (another session's STORE on a whole mailbox) is read in slices. */
  readonly #slice = new TimeSlice();

  #apply(change: ChangeEntry): void {
    if (change.modseq > this.highestModseq) this.highestModseq = change.modseq;
    const uid = change.uid;
    switch (change.type) {
      case 'exists':
        if (uid === null || this.#entries.has(uid) || this.#expunged.has(uid)) return;
        if (this.uids.length && uid <= this.uids[this.uids.length - 1]!) return;
        this.#entries.set(uid, { uid, modseq: change.modseq, flags: change.flags ?? [], size: 0, internalDate: 0 });
        this.#added.push(uid);
        return;
      case 'expunge': {
        const entry = uid === null ? undefined : this.#entries.get(uid);
        if (!entry) return;
        this.#entries.delete(entry.uid);
        this.#flagsChanged.delete(entry.uid);
        const at = this.#added.indexOf(entry.uid);
        if (at >= 0) this.#added.splice(at, 1);
        else this.#expunged.set(entry.uid, entry);
        return;
      }
      case 'flags': {
        const entry = uid === null ? undefined : this.#entries.get(uid);
        if (!entry || change.modseq <= entry.modseq) return;
        this.#entries.set(entry.uid, { ...entry, flags: change.flags ?? [], modseq: change.modseq });
        if (!this.#added.includes(entry.uid)) this.#flagsChanged.add(entry.uid);
        return;
      }
      case 'mailbox.delete':
        this.#deleted = true;
        return;
      default:
        return;
    }
  }

  /** Untagged responses for everything pending that may be sent now (see the module comment). */
  async flush(options: FlushOptions): Promise<string[]> {
    const lines: string[] = [];
    if (options.expunge && this.#expunged.size > 0) {
      for (const uid of [...this.#expunged.keys()].sort((a, b) => a - b)) lines.push(`* ${this.#removeUid(uid)} EXPUNGE`);
      this.#expunged.clear();
    }
    if (this.#added.length > 0) {
      const added = this.#added;
      this.#added = [];
      const minModseq = Math.min(...added.map((uid) => this.#entries.get(uid)?.modseq ?? 1));
      const rows = new Map((await this.#storage.messages.index(this.mailbox.id, { changedSince: minModseq - 1 })).map((e) => [e.uid, e]));
      let newKeywords = false;
      for (const uid of added) {
        const row = rows.get(uid);
        if (!row) {
          this.#entries.delete(uid); // gone again before it was announced
          continue;
        }
        this.#entries.set(uid, row);
        this.uids.push(uid);
        newKeywords = this.#noteKeywords(row.flags) || newKeywords;
      }
      if (newKeywords) lines.push(...this.flagsResponses());
      const max = this.uids.length ? this.uids[this.uids.length - 1]! : 0;
      let recentChanged = false;
      if (!this.readOnly && max > 0) {
        const mark = await claimRecent(this.#storage.ephemeral, this.mailbox.id, this.mailbox.uidValidity, max);
        for (const uid of added) if (uid > mark && this.#entries.has(uid)) (this.recent.add(uid), (recentChanged = true));
      }
      if (rows.size > 0) {
        lines.push(`* ${this.uids.length} EXISTS`);
        lines.push(`* ${this.recent.size} RECENT`);
      } else if (recentChanged) {
        lines.push(`* ${this.recent.size} RECENT`);
      }
    }
    if (this.#flagsChanged.size > 0) {
      let newKeywords = false;
      for (const uid of this.#flagsChanged) newKeywords = this.#noteKeywords(this.#entries.get(uid)?.flags ?? []) || newKeywords;
      if (newKeywords) lines.push(...this.flagsResponses());
      for (const uid of [...this.#flagsChanged].sort((a, b) => a - b)) {
        const entry = this.#entries.get(uid);
        const seq = this.seqOf(uid);
        if (!entry || !seq) continue;
        lines.push(`* ${seq} FETCH (${this.fetchFlags(entry, options.condstore)})`);
      }
      this.#flagsChanged.clear();
    }
    return lines;
  }

  /** `FLAGS (...) UID n [MODSEQ (m)]` for an untagged FETCH. */
  fetchFlags(entry: MessageIndexEntry, condstore: boolean): string {
    const flags = this.recent.has(entry.uid) ? [...entry.flags, '\\Recent'] : entry.flags;
    return `FLAGS ${renderFlags(flags)} UID ${entry.uid}${condstore ? ` MODSEQ (${entry.modseq})` : ''}`;
  }

  /** `* FLAGS (...)` and the PERMANENTFLAGS that go with it. */
  flagsResponses(): string[] {
    const flags = this.flagList();
    const permanent = this.readOnly ? '()' : renderFlags([...flags, '\\*']);
    return [`* FLAGS ${renderFlags(flags)}`, `* OK [PERMANENTFLAGS ${permanent}] ${this.readOnly ? 'No permanent flags permitted' : 'Flags permitted'}`];
  }

  #removeUid(uid: number): number {
    const seq = this.seqOf(uid);
    if (seq) this.uids.splice(seq - 1, 1);
    this.recent.delete(uid);
    this.#entries.delete(uid);
    this.#expunged.delete(uid);
    this.#flagsChanged.delete(uid);
    return seq;
  }

  /** The session's own expunge (EXPUNGE, CLOSE, MOVE): removes the UIDs, returns the EXPUNGE sequence numbers in order. */
  remove(uids: readonly number[]): number[] {
    const out: number[] = [];
    for (const uid of [...uids].sort((a, b) => a - b)) {
      const seq = this.#removeUid(uid);
      if (seq) out.push(seq);
    }
    return out;
  }

  /** The session's own flag change (STORE, FETCH setting \Seen): the view takes the new flags and modseq. */
  applyFlags(changed: ReadonlyArray<{ uid: number; flags: string[]; modseq: number }>): boolean {
    let newKeywords = false;
    for (const c of changed) {
      const entry = this.#entries.get(c.uid);
      if (!entry) continue;
      if (c.modseq >= entry.modseq) this.#entries.set(c.uid, { ...entry, flags: c.flags, modseq: c.modseq });
      this.#flagsChanged.delete(c.uid);
      if (c.modseq > this.highestModseq) this.highestModseq = c.modseq;
      newKeywords = this.#noteKeywords(c.flags) || newKeywords;
    }
    return newKeywords;
  }

  /**
   * One entry per sequence number (index i = sequence number i + 1), expunged-but-unreported messages included
   * with their last known state (SEARCH by sequence number needs the positions as the client knows them).
   */
  viewEntries(): MessageIndexEntry[] {
    return this.uids.map((uid) => this.#entries.get(uid) ?? this.#expunged.get(uid)!);
  }

  /** Live messages in sequence order (EXPUNGE picks the \Deleted ones). */
  liveEntries(): MessageIndexEntry[] {
    const out: MessageIndexEntry[] = [];
    for (const uid of this.uids) {
      const entry = this.#entries.get(uid);
      if (entry) out.push(entry);
    }
    return out;
  }
}
