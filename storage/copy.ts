/**
 * `wildduck storage copy`: copies a whole store into another one through the ports only (any backend to any backend
 * whose StoragePorts has `restore`), then verifies the copy.
 *
 * Per user: the user (found by username or created), its addresses, its mailboxes (UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ, special use, subscription), its documents of every kind (a filter's target mailbox id rewritten to
 * the target's id) and then, per mailbox, the messages: each one's bytes reassembled from the source
 * (storage/mime/reassemble.ts) and streamed into the shared ingest (storage/mime/ingest.ts, the path APPEND takes, so
 * the target builds its own search text, MIME tree and blobs, de-duplicated by hash), stored at its UID with its
 * modseq, flags and internal date.
 *
 * Every step is idempotent, so a copy stopped anywhere (Ctrl-C, a crash) is resumed by running it again: per mailbox
 * the UIDs already in the target are read in one call and only the missing ones are copied. A run after an earlier one
 * also brings over what changed in the source since: flags (with their modseq) and expunges. The source is only read:
 * a server may keep running on it, and the mail it takes in meanwhile is copied by running the command again.
 */
import { createHash } from 'node:crypto';
import { FILTER_KIND } from './delivery-settings.ts';
import { ingestMessage } from './mime/ingest.ts';
import type { IngestOptions } from './mime/ingest.ts';
import { readMessage } from './mime/reassemble.ts';
import { StorageError } from './ports.ts';
import type { Flag, Id, IndexColumns, MailboxRecord, RestorePort, StoragePorts, UserDocument, UserRecord } from './ports.ts';

export interface CopyProgress {
  phase: 'plan' | 'copy' | 'verify';
  /** Messages of the source handled (copied, or found in the target already) / in all. */
  messagesDone: number;
  messagesTotal: number;
  /** Their bytes. */
  bytesDone: number;
  bytesTotal: number;
  /** Of those, copied by this run (the rest were in the target already). */
  messagesCopied: number;
  bytesCopied: number;
}

export interface CopyOptions {
  /** How the target ingests each message (the target's limits.blobThreshold, searchTextLimit, ...); no size limit applies. */
  ingest?: Omit<IngestOptions, 'maxSize'>;
  /** Messages copied at once (read, ingested and stored concurrently; default 8). */
  parallel?: number;
  /** Told after every batch of messages and at every phase change. */
  progress?: (progress: CopyProgress) => void;
  /** Asked between batches: true stops the copy cleanly after the messages in flight (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface CopySummary extends CopyProgress {
  users: number;
  mailboxes: number;
  documents: number;
  /** Flag changes and expunges of the source brought over by this run (a run after an earlier one). */
  flagsUpdated: number;
  expunged: number;
  /** Target mailboxes whose path the source no longer has, deleted by this run. */
  mailboxesRemoved: number;
  /** Stopped by `shouldStop` before the end. */
  stopped: boolean;
}

export interface VerifyOptions {
  progress?: (progress: CopyProgress) => void;
  shouldStop?: () => boolean;
  /** Differences listed at most (all are counted; default 100). */
  maxListed?: number;
}

export interface VerifySummary {
  users: number;
  mailboxes: number;
  messages: number;
  bytes: number;
  /** Number of differences found. */
  mismatchCount: number;
  /** The first `maxListed` of them, one line each. */
  mismatches: string[];
  stopped: boolean;
}

const DEFAULT_PARALLEL = 8;

/** Every user of a store, in the store's order. */
async function* allUsers(storage: StoragePorts): AsyncIterable<UserRecord> {
  let cursor: string | null = null;
  do {
    const page = await storage.users.list({ limit: 250, cursor });
    yield* page.items;
    cursor = page.next;
  } while (cursor);
}

/** How much there is to copy (or verify): every source mailbox's counters. */
async function sourceTotals(source: StoragePorts): Promise<{ messages: number; bytes: number }> {
  let messages = 0;
  let bytes = 0;
  for await (const user of allUsers(source)) {
    for (const mailbox of await source.mailboxes.list(user.id)) {
      const c = await source.mailboxes.counters(mailbox.id);
      messages += c.messages;
      bytes += c.size;
    }
  }
  return { messages, bytes };
}

function flagsAt(columns: IndexColumns, i: number): Flag[] {
  return columns.flagSets[columns.flags[i]!]!;
}

/** Same flags, ignoring order and case. */
function sameFlags(a: readonly Flag[], b: readonly Flag[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => set.has(f.toLowerCase()));
}

/** Position of each UID of the columns. */
function uidPositions(columns: IndexColumns): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < columns.count; i++) out.set(columns.uids[i]!, i);
  return out;
}

/** A document as the target stores it: a filter's target mailbox given by a source mailbox id names the target's. */
function mappedDocument(doc: UserDocument, mailboxIds: ReadonlyMap<Id, Id>): UserDocument {
  if (doc.kind !== FILTER_KIND) return doc;
  const data = doc.data as { action?: { mailbox?: unknown } } | null;
  const target = data?.action?.mailbox;
  if (typeof target !== 'string' || !mailboxIds.has(target)) return doc;
  return { ...doc, data: { ...data, action: { ...data!.action, mailbox: mailboxIds.get(target) } } };
}

function requireRestore(target: StoragePorts): RestorePort {
  if (!target.restore) throw new StorageError('CANNOT', `the ${target.name} backend cannot be the target of a copy`);
  return target.restore;
}

/** Copies everything `source` holds into `target` (see the top of this file). */
export async function copyStore(source: StoragePorts, target: StoragePorts, options: CopyOptions = {}): Promise<CopySummary> {
  const restore = requireRestore(target);
  const parallel = Math.max(1, Math.floor(options.parallel ?? DEFAULT_PARALLEL));
  const stop = options.shouldStop ?? (() => false);
  const summary: CopySummary = {
    phase: 'plan',
    messagesDone: 0,
    messagesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    messagesCopied: 0,
    bytesCopied: 0,
    users: 0,
    mailboxes: 0,
    documents: 0,
    flagsUpdated: 0,
    expunged: 0,
    mailboxesRemoved: 0,
    stopped: false,
  };
  const report = () => options.progress?.({ ...summary });
  report();
  const totals = await sourceTotals(source);
  summary.messagesTotal = totals.messages;
  summary.bytesTotal = totals.bytes;
  summary.phase = 'copy';
  report();

  const copyMailbox = async (userId: Id, from: MailboxRecord, to: Id): Promise<void> => {
    const [have, want] = await Promise.all([target.messages.indexColumns(to), source.messages.indexColumns(from.id)]);
    const wantAt = uidPositions(want);
    // gone from the source since an earlier run
    const gone: number[] = [];
    for (let i = 0; i < have.count; i++) if (!wantAt.has(have.uids[i]!)) gone.push(have.uids[i]!);
    if (gone.length > 0) summary.expunged += (await restore.expunge(to, gone)).length;
    const haveAt = uidPositions(have);
    const missing: number[] = [];
    for (let i = 0; i < want.count; i++) {
      const uid = want.uids[i]!;
      const j = haveAt.get(uid);
      if (j === undefined) {
        missing.push(i);
        continue;
      }
      // there already: its flags as the source has them now
      if (have.modseqs[j] !== want.modseqs[i] || !sameFlags(flagsAt(have, j), flagsAt(want, i))) {
        if (await restore.flags(to, uid, flagsAt(want, i), want.modseqs[i]!)) summary.flagsUpdated++;
      }
      summary.messagesDone++;
      summary.bytesDone += want.sizes[i]!;
    }
    report();
    for (let start = 0; start < missing.length; start += parallel) {
      if (stop()) {
        summary.stopped = true;
        return;
      }
      const batch = missing.slice(start, start + parallel);
      const parts = await source.messages.parts(from.id, batch.map((i) => want.uids[i]!), { content: true, savedDate: true });
      const contentOf = new Map(parts.map((p) => [p.uid, p.content!]));
      const savedDateOf = new Map(parts.map((p) => [p.uid, p.savedDate]));
      await Promise.all(
        batch.map(async (i) => {
          const uid = want.uids[i]!;
          const content = contentOf.get(uid);
          if (!content) return; // expunged from the source meanwhile
          const message = await ingestMessage(readMessage(content, source.blobs), target.blobs, options.ingest);
          try {
            const savedDate = savedDateOf.get(uid);
            await restore.message({ userId, mailboxId: to, flags: flagsAt(want, i), internalDate: want.internalDates[i]!, message, uid, modseq: want.modseqs[i]!, ...(savedDate === undefined ? {} : { savedDate }) });
          } catch (err) {
            await target.blobs.discard(message.blobs).catch(() => {});
            throw err;
          }
          summary.messagesCopied++;
          summary.bytesCopied += message.size;
        }),
      );
      for (const i of batch) {
        summary.messagesDone++;
        summary.bytesDone += want.sizes[i]!;
      }
      report();
    }
  };

  for await (const user of allUsers(source)) {
    if (stop()) {
      summary.stopped = true;
      break;
    }
    const userId = await restore.user(user);
    summary.users++;
    for (const address of await source.users.listAddresses(user.id)) await restore.address(userId, address);
    const mailboxes = await source.mailboxes.list(user.id);
    const mailboxIds = new Map<Id, Id>();
    for (const mailbox of mailboxes) mailboxIds.set(mailbox.id, await restore.mailbox(userId, mailbox));
    // gone from the source since an earlier run (deleted, or renamed: copied under the new name)
    const paths = new Set(mailboxes.map((m) => m.path));
    for (const stale of await target.mailboxes.list(userId)) {
      if (paths.has(stale.path)) continue;
      try {
        await target.mailboxes.delete(stale.id);
        summary.mailboxesRemoved++;
      } catch (err) {
        if (!(err instanceof StorageError && err.code === 'CANNOT')) throw err; // the target's INBOX stays (listed by the verification)
      }
    }
    for (const doc of await source.documents.listAll(user.id)) {
      await restore.document(userId, mappedDocument(doc, mailboxIds));
      summary.documents++;
    }
    for (const mailbox of mailboxes) {
      await copyMailbox(userId, mailbox, mailboxIds.get(mailbox.id)!);
      if (summary.stopped) break;
      summary.mailboxes++;
    }
    if (summary.stopped) break;
  }
  report();
  return summary;
}

/** SHA-256 (hex) of a stored message's bytes, reassembled. */
async function messageHash(storage: StoragePorts, content: Parameters<typeof readMessage>[0]): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readMessage(content, storage.blobs)) hash.update(chunk);
  return hash.digest('hex');
}

/** Hashes of the reassembled bytes of these UIDs of a mailbox. */
async function hashes(storage: StoragePorts, mailboxId: Id, uids: number[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const p of await storage.messages.parts(mailboxId, uids, { content: true })) out.set(p.uid, await messageHash(storage, p.content!));
  return out;
}

/**
 * Compares the target with the source: every user (usage), every mailbox (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the
 * message, unseen and size counters) and every message (UID, flags, modseq, internal date, size and the SHA-256 of its
 * reassembled bytes). Lists what differs.
 */
export async function verifyCopy(source: StoragePorts, target: StoragePorts, options: VerifyOptions = {}): Promise<VerifySummary> {
  const maxListed = options.maxListed ?? 100;
  const stop = options.shouldStop ?? (() => false);
  const out: VerifySummary = { users: 0, mailboxes: 0, messages: 0, bytes: 0, mismatchCount: 0, mismatches: [], stopped: false };
  const progress: CopyProgress = { phase: 'verify', messagesDone: 0, messagesTotal: 0, bytesDone: 0, bytesTotal: 0, messagesCopied: 0, bytesCopied: 0 };
  const report = () => options.progress?.({ ...progress });
  const differ = (what: string) => {
    out.mismatchCount++;
    if (out.mismatches.length < maxListed) out.mismatches.push(what);
  };
  const totals = await sourceTotals(source);
  progress.messagesTotal = totals.messages;
  progress.bytesTotal = totals.bytes;
  report();

  for await (const user of allUsers(source)) {
    const copy = await target.users.getByUsername(user.username);
    if (!copy) {
      differ(`user ${user.username}: missing in the target`);
      continue;
    }
    out.users++;
    if (copy.storageUsed !== user.storageUsed || copy.messagesUsed !== user.messagesUsed) {
      differ(`user ${user.username}: usage ${copy.storageUsed} bytes ${copy.messagesUsed} messages, source ${user.storageUsed} bytes ${user.messagesUsed} messages`);
    }
    const mailboxes = await source.mailboxes.list(user.id);
    const paths = new Set(mailboxes.map((m) => m.path));
    for (const extra of await target.mailboxes.list(copy.id)) if (!paths.has(extra.path)) differ(`mailbox ${user.username} ${extra.path}: in the target only`);
    for (const mailbox of mailboxes) {
      const name = `${user.username} ${mailbox.path}`;
      const other = await target.mailboxes.getByPath(copy.id, mailbox.path);
      if (!other) {
        differ(`mailbox ${name}: missing in the target`);
        continue;
      }
      out.mailboxes++;
      for (const key of ['uidValidity', 'uidNext', 'highestModseq'] as const) {
        if (other[key] !== mailbox[key]) differ(`mailbox ${name}: ${key} ${other[key]}, source ${mailbox[key]}`);
      }
      const [a, b] = await Promise.all([source.mailboxes.counters(mailbox.id), target.mailboxes.counters(other.id)]);
      for (const key of ['messages', 'unseen', 'size'] as const) {
        if (a[key] !== b[key]) differ(`mailbox ${name}: ${key} ${b[key]}, source ${a[key]}`);
      }
      const [want, have] = await Promise.all([source.messages.indexColumns(mailbox.id), target.messages.indexColumns(other.id)]);
      const haveAt = uidPositions(have);
      const wantAt = uidPositions(want);
      for (let j = 0; j < have.count; j++) if (!wantAt.has(have.uids[j]!)) differ(`message ${name} UID ${have.uids[j]}: in the target only`);
      const common: number[] = [];
      for (let i = 0; i < want.count; i++) {
        const uid = want.uids[i]!;
        const j = haveAt.get(uid);
        if (j === undefined) {
          differ(`message ${name} UID ${uid}: missing in the target`);
          continue;
        }
        common.push(uid);
        if (!sameFlags(flagsAt(have, j), flagsAt(want, i))) differ(`message ${name} UID ${uid}: flags ${flagsAt(have, j).join(' ')}, source ${flagsAt(want, i).join(' ')}`);
        for (const [key, column] of [['modseq', 'modseqs'], ['internal date', 'internalDates'], ['size', 'sizes']] as const) {
          if (have[column][j] !== want[column][i]) differ(`message ${name} UID ${uid}: ${key} ${have[column][j]}, source ${want[column][i]}`);
        }
      }
      for (let start = 0; start < common.length; start += 16) {
        if (stop()) {
          out.stopped = true;
          return out;
        }
        const uids = common.slice(start, start + 16);
        const [x, y] = await Promise.all([hashes(source, mailbox.id, uids), hashes(target, other.id, uids)]);
        for (const uid of uids) {
          if (x.get(uid) !== y.get(uid)) differ(`message ${name} UID ${uid}: sha256 ${y.get(uid) ?? 'unreadable'}, source ${x.get(uid) ?? 'unreadable'}`);
          const i = wantAt.get(uid)!;
          out.messages++;
          out.bytes += want.sizes[i]!;
          progress.messagesDone++;
          progress.bytesDone += want.sizes[i]!;
        }
        report();
      }
    }
  }
  report();
  return out;
}
