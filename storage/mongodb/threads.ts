/**
 * Threading on MongoDB, as the embedded backend threads (storage/sqlite/messages.ts #thread): a message joins the
 * thread of any earlier message of the same user it names (References, In-Reply-To) or that names it (its
 * Message-ID), else starts a thread of its own, a fresh ObjectId. `threadrefs` maps each Message-ID seen in the
 * user's mail to its thread: one upsert per reference, `$setOnInsert`, so a reference keeps the thread it got first
 * even when two messages naming it are stored at once (the unique index on user + ref decides on real MongoDB).
 */
import { createHash } from 'node:crypto';
import { ObjectId } from 'mongodb';
import type { IngestedMessage } from '../ports.ts';
import type { MongoCollections } from './collections.ts';
import { isDuplicateKey } from './errors.ts';

/** Message-ID as used for threading: surrounding whitespace and angle brackets removed, hashed to a short key. */
export function threadRef(id: string): string | null {
  const t = id.trim().replace(/^<+/, '').replace(/>+$/, '').trim();
  return t ? createHash('sha256').update(t).digest('hex').slice(0, 32) : null;
}

/** The references of a message that thread it: its References / In-Reply-To and its own Message-ID, distinct. */
export function threadRefs(message: Pick<IngestedMessage, 'references' | 'messageId'>): string[] {
  const all = [...message.references, ...(message.messageId ? [message.messageId] : [])].map(threadRef);
  return [...new Set(all.filter((r): r is string => r !== null))];
}

function oldest(ids: readonly ObjectId[]): ObjectId | null {
  let best: ObjectId | null = null;
  for (const id of ids) if (!best || id.toHexString() < best.toHexString()) best = id;
  return best;
}

/** The thread a message of `user` joins; records its references for the messages that come after it. */
export async function threadFor(c: MongoCollections, user: ObjectId, message: Pick<IngestedMessage, 'references' | 'messageId'>): Promise<ObjectId> {
  const refs = threadRefs(message);
  if (refs.length === 0) return new ObjectId();
  const known = await c.threadRefs.find({ user, ref: { $in: refs } }, { projection: { ref: 1, thread: 1 } }).toArray();
  const thread = oldest(known.map((k) => k.thread)) ?? new ObjectId();
  const have = new Set(known.map((k) => k.ref));
  const missing = refs.filter((r) => !have.has(r));
  if (missing.length > 0) {
    try {
      await c.threadRefs.bulkWrite(
        missing.map((ref) => ({ updateOne: { filter: { user, ref }, update: { $setOnInsert: { thread } }, upsert: true } })),
        { ordered: false },
      );
    } catch (err) {
      if (!isDuplicateKey(err)) throw err; // another message recorded the reference first: it keeps that thread
    }
  }
  return thread;
}
