/**
 * The first SELECT of a process, rehearsed when the process starts, so the first client's SELECT does not pay for
 * what a process does only once: compiling the code of the storage reads, the mailbox index (snapshot head, catch-up)
 * and the session's view and replies (JavaScript engines compile a function when it is first called), preparing the
 * SQL statements, and a first round trip to the ephemeral store (the primary, from a worker). Measured on a 100,000-
 * message mailbox, that was about half of the first SELECT's time after a start (test/bench/select-cold.ts).
 *
 * Nothing it does is seen by a client or stored: the storage reads ask for ids that match nothing
 * (`StoragePorts.warmUp`), and the index and view are a three-message mailbox held in memory, with a registry of its
 * own and an ephemeral store that only reads. A failure is ignored: it costs the first SELECT its compile time.
 * Once per process, before its IMAP listener starts (protocols/imap.ts).
 */
import type { App } from '../app.ts';
import { MailboxIndexes } from '../../storage/mailbox-index/registry.ts';
import type { IndexStorage } from '../../storage/mailbox-index/mailbox-index.ts';
import { encodeIndexSnapshot, snapshotSource } from '../../storage/mailbox-index/snapshot.ts';
import type { ChangeEntry, EphemeralPort, MailboxRecord } from '../../storage/ports.ts';
import { SelectedMailbox } from './selected.ts';

const MAILBOX: MailboxRecord = {
  id: 'warm-up',
  userId: 'warm-up',
  path: 'INBOX',
  specialUse: null,
  subscribed: true,
  uidValidity: 1,
  uidNext: 4,
  highestModseq: 3,
  created: 0,
};

/** A snapshot of three messages, the second one \Seen, taken at change-log cursor 1. */
function snapshot(): Uint8Array {
  const count = 3;
  return encodeIndexSnapshot({
    columns: {
      count,
      uids: Uint32Array.of(1, 2, 3),
      modseqs: Float64Array.of(1, 2, 3),
      sizes: Float64Array.of(100, 200, 300),
      internalDates: Float64Array.of(0, 0, 0),
      flags: Uint32Array.of(0, 1, 0),
      flagSets: [[], ['\\Seen', '$Label']],
    },
    loadedThrough: count,
    highestModseq: count,
    firstUnseen: 0,
  });
}

/** The mailbox's storage: the snapshot, and a change log with one flag change after it. */
function memoryStorage(bytes: Uint8Array): IndexStorage {
  const change: ChangeEntry = { id: 2, userId: MAILBOX.userId, mailboxId: MAILBOX.id, type: 'flags', uid: 3, modseq: 4, flags: ['\\Seen'], path: null, created: 0 };
  return {
    messages: {
      indexSnapshot: async () => snapshotSource({ uidValidity: MAILBOX.uidValidity, cursor: 1, bytes }),
      indexColumns: async () => ({ count: 0, uids: new Uint32Array(0), modseqs: new Float64Array(0), sizes: new Float64Array(0), internalDates: new Float64Array(0), flags: new Uint32Array(0), flagSets: [] }),
    },
    changes: {
      since: async (_userId: string, afterId: number) => (afterId < change.id ? [change] : []),
      latest: async () => change.id,
      subscribe: () => () => {},
    },
  } as unknown as IndexStorage;
}

/**
 * The two operations a view uses (reading and raising the \Recent mark), both reading the real store (its round trip
 * is part of the rehearsal): nothing is written.
 */
function readOnly(ephemeral: EphemeralPort): EphemeralPort {
  return { get: (key: string) => ephemeral.get(key), raise: (key: string) => ephemeral.get(key) } as unknown as EphemeralPort;
}

/** Rehearses a first SELECT; false when something failed (then the first client's SELECT compiles the rest). */
export async function rehearseSelect(app: Pick<App, 'storage'>): Promise<boolean> {
  try {
    await app.storage.warmUp?.();
    const indexes = new MailboxIndexes(memoryStorage(snapshot()), { lingerMs: 0, maxLingering: 0 });
    const ephemeral = readOnly(app.storage.ephemeral);
    const view = await SelectedMailbox.open(indexes, { ephemeral }, { ...MAILBOX }, false, { indexChanged() {} });
    try {
      void [view.flagsResponses(), view.exists, view.recent.size, view.firstUnseen(), view.lastUid, view.highestModseq];
      void view.seqOf(2); // the UIDs and flags, read when first needed
      await view.sync();
      await view.flush({ expunge: true, condstore: false });
      void view.message(2);
    } finally {
      view.close();
    }
    await indexes.close();
    return true;
  } catch {
    return false;
  }
}
