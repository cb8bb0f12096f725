/**
 * Removing many messages at once, when their mailbox or their user is deleted (or `quota recalc` finds messages
 * whose mailbox is gone), in the order that leaves a crash only what `quota recalc` repairs:
 *
 * 1. the caller has already made the messages unreachable (their mailbox document is gone);
 * 2. per batch: the search documents and content pieces, then the message documents (a crash between leaves
 *    messages of a mailbox that is gone: recalc removes them, taking this path again);
 * 3. then the blob references of the messages actually deleted (a crash before leaves references too high, never
 *    too low: a blob is never freed while a message names it), and usage counters when asked.
 */
import type { Filter, ObjectId } from 'mongodb';
import type { MessageDoc, MongoCollections } from './collections.ts';
import { countRefs, incBlobRefs } from './blobs.ts';

/** Messages read and removed per round. */
const BATCH = 256;

type Removed = Pick<MessageDoc, '_id' | 'user' | 'size' | 'blobs'>;

/**
 * Removes every message matching `filter` with its content and search documents, releasing its blob references;
 * with `usage`, takes the removed messages off their users' storageUsed and messagesUsed. Returns how many went.
 */
export async function removeMessages(c: MongoCollections, filter: Filter<MessageDoc>, options: { usage?: boolean } = {}): Promise<number> {
  let removed = 0;
  for (;;) {
    const batch = (await c.messages
      .find(filter, { projection: { _id: 1, user: 1, size: 1, blobs: 1 } })
      .limit(BATCH)
      .toArray()) as Removed[];
    if (batch.length === 0) return removed;
    const ids = batch.map((m) => m._id);
    await c.messageSearch.deleteMany({ _id: { $in: ids } });
    await c.messageContent.deleteMany({ message: { $in: ids } });
    // one by one: a message someone else removed meanwhile (an expunge in flight) is not counted twice
    const gone = await Promise.all(batch.map(async (m) => ((await c.messages.deleteOne({ _id: m._id })).deletedCount === 1 ? m : null)));
    const usage = new Map<string, { user: ObjectId; size: number; count: number }>();
    for (const m of gone) {
      if (!m) continue;
      removed++;
      const u = usage.get(m.user.toHexString()) ?? { user: m.user, size: 0, count: 0 };
      u.size += m.size ?? 0;
      u.count++;
      usage.set(m.user.toHexString(), u);
    }
    await incBlobRefs(c, countRefs(gone.map((m) => m?.blobs)), -1);
    if (options.usage && usage.size > 0) {
      await c.users.bulkWrite(
        [...usage.values()].map((u) => ({ updateOne: { filter: { _id: u.user }, update: { $inc: { storageUsed: -u.size, messagesUsed: -u.count } } } })),
        { ordered: false },
      );
    }
  }
}
