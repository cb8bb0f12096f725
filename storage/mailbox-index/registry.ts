/**
 * The shared mailbox indexes of one process (mailbox-index.ts): one per open mailbox, handed out reference-counted.
 * While sessions hold an index it listens to the user's change notifications and catches up on each, once for all
 * its sessions. When the last one lets go the index stops listening and lingers for `lingerMs` (at most
 * `maxLingering` of them, oldest dropped first), so a client that reconnects or re-selects finds it warm: acquiring
 * it again first catches up on the change log, then it is current.
 */
import type { Id, MailboxRecord } from '../ports.ts';
import { MailboxIndex } from './mailbox-index.ts';
import type { IndexStorage } from './mailbox-index.ts';

export interface MailboxIndexOptions {
  /** How long an index nobody holds is kept (ms); 0 drops it with its last holder. */
  lingerMs: number;
  /** Most indexes kept with nobody holding them. */
  maxLingering: number;
  /** An index of at least this many messages is saved as a snapshot when it leaves memory (and at close); 0: never. */
  snapshotMinMessages?: number;
}

export interface IndexLease {
  readonly index: MailboxIndex;
  /** Lets go of the index (idempotent). */
  release(): void;
}

interface Slot {
  loading: Promise<MailboxIndex>;
  index: MailboxIndex | null;
  holders: number;
  unsubscribe: (() => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
}

export class MailboxIndexes {
  readonly #storage: IndexStorage;
  readonly #options: MailboxIndexOptions;
  /** By mailbox id and UIDVALIDITY; Map order is the order slots became idle (oldest first) for lingering ones. */
  readonly #slots = new Map<string, Slot>();
  #closed = false;

  constructor(storage: IndexStorage, options: MailboxIndexOptions) {
    this.#storage = storage;
    this.#options = options;
  }

  /** Indexes in memory (held or lingering). */
  get size(): number {
    return this.#slots.size;
  }

  /** The index of a mailbox if one is in memory (held or lingering), without taking it; it may lag the log. */
  peek(mailboxId: Id): MailboxIndex | null {
    for (const slot of this.#slots.values()) if (slot.index?.mailboxId === mailboxId) return slot.index;
    return null;
  }

  /** The mailbox's index, loaded or caught up: current as of this call. */
  async acquire(mailbox: MailboxRecord): Promise<IndexLease> {
    if (this.#closed) throw new Error('mailbox indexes are closed');
    const key = `${mailbox.id}:${mailbox.uidValidity}`;
    let slot = this.#slots.get(key);
    const first = !slot;
    if (!slot) {
      slot = { loading: MailboxIndex.load(this.#storage, mailbox), index: null, holders: 0, unsubscribe: null, timer: null };
      this.#slots.set(key, slot);
    }
    this.#hold(slot);
    let index: MailboxIndex;
    try {
      index = await slot.loading;
      slot.index = index;
      if (!slot.unsubscribe) {
        slot.unsubscribe = this.#storage.changes.subscribe(mailbox.userId, (latest) => {
          index.notified(latest).catch(() => {
            // the next refresh (a notification, a command that forces it) catches up
          });
        });
      }
      // whatever committed before the subscription (while loading, or while it lingered) is read now
      await index.refresh();
      index.noteModseq(mailbox.highestModseq);
      // an index read in full (no snapshot yet, or one too old) is saved at once, after this command's reply, not
      // only when it leaves memory: a server that stops without that (a crash) then still finds a snapshot
      if (first) this.#saveSoon(index);
    } catch (err) {
      this.#letGo(key, slot);
      throw err;
    }
    return new Lease(index, this, key, slot);
  }

  /** A lease ends (Lease.release, once). */
  letGo(key: string, slot: Slot): void {
    this.#letGo(key, slot);
  }

  #hold(slot: Slot): void {
    slot.holders++;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
  }

  #letGo(key: string, slot: Slot): void {
    if (--slot.holders > 0) return;
    slot.unsubscribe?.();
    slot.unsubscribe = null;
    if (this.#options.lingerMs <= 0 || !slot.index || this.#closed) {
      this.#drop(key, slot);
      return;
    }
    // re-insert: idle slots sit at the end of the map in the order they became idle
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    const timer = setTimeout(() => this.#drop(key, slot), this.#options.lingerMs);
    (timer as { unref?: () => void }).unref?.();
    slot.timer = timer;
    let lingering = 0;
    for (const s of this.#slots.values()) if (s.holders === 0) lingering++;
    for (const [k, s] of this.#slots) {
      if (lingering <= this.#options.maxLingering) break;
      if (s.holders > 0) continue;
      this.#drop(k, s);
      lingering--;
    }
  }

  #drop(key: string, slot: Slot): void {
    if (slot.holders > 0 || this.#slots.get(key) !== slot) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    this.#slots.delete(key);
    if (slot.index && !this.#closed) void this.#save(slot.index);
  }

  #saveSoon(index: MailboxIndex): void {
    if (!index.unsaved) return; // #save itself skips small indexes
    const timer = setTimeout(() => {
      if (!this.#closed) void this.#save(index);
    }, 0);
    (timer as { unref?: () => void }).unref?.();
  }

  /** Saves a large index as a snapshot (storage/mailbox-index/snapshot.ts), so its next load reads it, not every row. */
  async #save(index: MailboxIndex): Promise<void> {
    const min = this.#options.snapshotMinMessages ?? 0;
    const save = this.#storage.messages.saveIndexSnapshot;
    if (min <= 0 || index.count < min || !save) return;
    const snapshot = index.snapshot();
    if (!snapshot) return;
    try {
      await save.call(this.#storage.messages, index.mailboxId, snapshot);
      index.saved(snapshot.cursor);
    } catch {
      // a snapshot is a shortcut: without it the next load reads the index in full
    }
  }

  /** Saves what is worth saving, drops every index nobody holds and refuses new ones (server shutdown). */
  async close(): Promise<void> {
    this.#closed = true;
    const indexes = [...this.#slots.values()].flatMap((slot) => (slot.index ? [slot.index] : []));
    for (const [key, slot] of [...this.#slots]) this.#drop(key, slot);
    for (const index of indexes) await this.#save(index);
  }
}

/** One holder's lease: a class, not an object with a closure, so a session holding an index costs one small object. */
class Lease implements IndexLease {
  readonly index: MailboxIndex;
  #indexes: MailboxIndexes | null;
  readonly #key: string;
  readonly #slot: Slot;

  constructor(index: MailboxIndex, indexes: MailboxIndexes, key: string, slot: Slot) {
    this.index = index;
    this.#indexes = indexes;
    this.#key = key;
    this.#slot = slot;
  }

  release(): void {
    const indexes = this.#indexes;
    this.#indexes = null;
    indexes?.letGo(this.#key, this.#slot);
  }
}
