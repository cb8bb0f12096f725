/**
 * The SORT and THREAD data of stored messages, kept once per process for every session of every user (next to the
 * shared mailbox indexes of registry.ts): what MessagesPort.sortData returned for a message (subject, dates, first
 * addresses, Message-ID / In-Reply-To / References) never changes for a stored UID, so it is read from storage once
 * and the keys derived from it (storage/sort/derived-keys.ts: base subjects, address keys, reference lists) are
 * computed once, as long as the entry stays here. A SORT or THREAD reads storage only for the UIDs not held yet (or
 * held without the fields it needs).
 *
 * Bounded by a number of messages; when over it, whole mailboxes go, least recently used first (a mailbox larger
 * than the bound keeps as many entries as fit, the rest are read each time). Entries of expunged UIDs are never asked
 * for again (searches return only present UIDs) and leave with their mailbox; a deleted mailbox's entries are dropped
 * (`dropMailbox`, from the mailbox.afterDelete hook). Mailbox ids are never reused by either backend.
 *
 *   const cache = new SortDataCache(storage.messages, { maxMessages: 200_000 });
 *   const data = await cache.sortData(mailboxId, uids, { subject: true });   // as MessagesPort.sortData answers
 */
import type { Id, MessageSortData, MessagesPort, SortDataWanted } from '../ports.ts';

export interface SortDataCacheOptions {
  /** Most messages held, over all mailboxes; 0 holds none (every call goes to storage). */
  maxMessages: number;
}

/** Which of SortDataWanted's field groups an entry holds. */
const SUBJECT = 1;
const DATE = 2;
const FROM = 4;
const TO = 8;
const CC = 16;
const THREADING = 32;

function maskOf(wanted: SortDataWanted): number {
  let mask = 0;
  // sortData returns the subject and the header date with threading too (both backends)
  if (wanted.subject || wanted.threading) mask |= SUBJECT;
  if (wanted.date || wanted.threading) mask |= DATE;
  if (wanted.from) mask |= FROM;
  if (wanted.to) mask |= TO;
  if (wanted.cc) mask |= CC;
  if (wanted.threading) mask |= THREADING;
  return mask;
}

function wantedOf(mask: number): SortDataWanted {
  return { subject: (mask & SUBJECT) !== 0, date: (mask & DATE) !== 0, from: (mask & FROM) !== 0, to: (mask & TO) !== 0, cc: (mask & CC) !== 0, threading: (mask & THREADING) !== 0 };
}

interface Entry {
  data: MessageSortData;
  mask: number;
}

export class SortDataCache {
  readonly #messages: Pick<MessagesPort, 'sortData'>;
  readonly #max: number;
  /** By mailbox id, least recently used first (Map order: a mailbox is moved to the end when used). */
  readonly #mailboxes = new Map<Id, Map<number, Entry>>();
  #size = 0;

  constructor(messages: Pick<MessagesPort, 'sortData'>, options: SortDataCacheOptions) {
    this.#messages = messages;
    this.#max = Math.max(0, Math.floor(options.maxMessages));
  }

  /** Messages held, over all mailboxes. */
  get size(): number {
    return this.#size;
  }

  /** Messages held for one mailbox (0 when none). */
  held(mailboxId: Id): number {
    return this.#mailboxes.get(mailboxId)?.size ?? 0;
  }

  /** The mailboxes held, least recently used first. */
  mailboxes(): Id[] {
    return [...this.#mailboxes.keys()];
  }

  /** Forgets a mailbox's entries (it was deleted). */
  dropMailbox(mailboxId: Id): void {
    const entries = this.#mailboxes.get(mailboxId);
    if (!entries) return;
    this.#size -= entries.size;
    this.#mailboxes.delete(mailboxId);
  }

  /** Forgets everything. */
  clear(): void {
    this.#mailboxes.clear();
    this.#size = 0;
  }

  /**
   * MessagesPort.sortData through the cache: the same answer (ascending UID, absent UIDs left out, the wanted fields
   * present), with the objects held here (shared between calls: callers must not change them).
   */
  async sortData(mailboxId: Id, uids: readonly number[], wanted: SortDataWanted = {}): Promise<MessageSortData[]> {
    if (this.#max === 0) return this.#messages.sortData(mailboxId, uids, wanted);
    if (uids.length === 0) return [];
    const mask = maskOf(wanted);
    let entries = this.#mailboxes.get(mailboxId);
    if (entries) {
      // most recently used: to the end of the order
      this.#mailboxes.delete(mailboxId);
      this.#mailboxes.set(mailboxId, entries);
    }
    const sorted = [...new Set(uids)].sort((a, b) => a - b);
    const missing: number[] = [];
    let missingMask = mask;
    for (const uid of sorted) {
      const entry = entries?.get(uid);
      if (!entry || (entry.mask & mask) !== mask) {
        missing.push(uid);
        // read what it lacks and what it held already, so an entry keeps one object with every group it had
        if (entry) missingMask |= entry.mask;
      }
    }
    const read = new Map<number, MessageSortData>();
    if (missing.length > 0) {
      for (const data of await this.#messages.sortData(mailboxId, missing, wantedOf(missingMask))) read.set(data.uid, data);
      entries = this.#mailboxes.get(mailboxId); // another call may have added or dropped it meanwhile
      if (!entries) {
        entries = new Map();
        this.#mailboxes.set(mailboxId, entries);
      }
      this.#store(mailboxId, entries, read, missingMask);
    }
    const out: MessageSortData[] = [];
    for (const uid of sorted) {
      const data = read.get(uid) ?? entries?.get(uid)?.data;
      if (data) out.push(data);
    }
    return out;
  }

  #store(mailboxId: Id, entries: Map<number, Entry>, read: Map<number, MessageSortData>, mask: number): void {
    for (const [uid, data] of read) {
      const entry = entries.get(uid);
      if (entry) {
        // fields added in place: the object a caller may hold (and derived keys memoised for it) stays valid
        Object.assign(entry.data, data);
        entry.mask |= mask;
        read.set(uid, entry.data);
        continue;
      }
      if (this.#size >= this.#max && !this.#evictFor(mailboxId)) continue;
      entries.set(uid, { data, mask });
      this.#size++;
    }
    if (entries.size === 0) this.#mailboxes.delete(mailboxId);
  }

  /** Drops the least recently used mailbox other than `keep`; false when there is none (keep alone fills the bound). */
  #evictFor(keep: Id): boolean {
    for (const [id, entries] of this.#mailboxes) {
      if (id === keep) continue;
      this.#size -= entries.size;
      this.#mailboxes.delete(id);
      return true;
    }
    return false;
  }
}
