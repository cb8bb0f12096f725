/**
 * Subscriptions that outlive their mailbox. RFC 3501 §6.3.6: deleting a mailbox does not unsubscribe it, and a
 * server must not drop a subscription on its own; LIST (SUBSCRIBED) then shows the name as `\Subscribed
 * \NonExistent` (RFC 5258) and LSUB still lists it. A subscribed mailbox carries its subscription on its record
 * (MailboxRecord.subscribed); when it is deleted, the storage plugin keeps the name here, as a per-user document of
 * kind 'subscription' (both backends hold documents; `storage copy` carries them along). A mailbox created again
 * under that name takes the subscription back, and UNSUBSCRIBE of the name removes it.
 */
import { createHash } from 'node:crypto';
import type { Id, StoragePorts } from './ports.ts';

export const SUBSCRIPTION_KIND = 'subscription';

export interface KeptSubscription {
  /** The mailbox path (Unicode, '/' delimiter) as it was when the mailbox was deleted. */
  path: string;
}

/** Document id of a path: a hash, so any name (up to the path limit) makes a short fixed-form id. */
function idOf(path: string): string {
  return createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 32);
}

/** Names the user is subscribed to that have no mailbox, in the order they were kept. */
export async function keptSubscriptions(storage: Pick<StoragePorts, 'documents'>, userId: Id): Promise<string[]> {
  return (await storage.documents.list<KeptSubscription>(userId, SUBSCRIPTION_KIND)).map((doc) => doc.data.path);
}

/** Keeps the subscription of a deleted mailbox's name. */
export async function keepSubscription(storage: Pick<StoragePorts, 'documents'>, userId: Id, path: string): Promise<void> {
  await storage.documents.put<KeptSubscription>(userId, SUBSCRIPTION_KIND, { path }, { id: idOf(path) });
}

/** Removes a kept subscription (UNSUBSCRIBE, or a mailbox made again under the name); true when there was one. */
export function dropSubscription(storage: Pick<StoragePorts, 'documents'>, userId: Id, path: string): Promise<boolean> {
  return storage.documents.delete(userId, SUBSCRIPTION_KIND, idOf(path));
}
