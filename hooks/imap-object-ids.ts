/**
 * OBJECTID (RFC 8474): the wire form of the storage ids, for the IMAP module and for plugins (hooks/imap.ts
 * `imapObjectId`, so a plugin reports an id the way the server does). An objectid is 1-255 of A-Z a-z 0-9 _ -; ours
 * is a letter naming the kind and the stored id (24 hex digits): `F…` a mailbox (MAILBOXID), `M…` an email (EMAILID:
 * the id of the message as first stored, shared by its copies and kept by MOVE), `T…` a thread (THREADID).
 */
import type { Id } from '../storage/ports.ts';

export type ObjectKind = 'mailbox' | 'email' | 'thread';

const PREFIX: Record<ObjectKind, string> = { mailbox: 'F', email: 'M', thread: 'T' };

/** The objectid of a stored id. */
export function objectId(kind: ObjectKind, id: Id): string {
  return PREFIX[kind] + id;
}

/** RFC 8474 objectid syntax. */
export function isObjectId(text: string): boolean {
  return /^[A-Za-z0-9_-]{1,255}$/.test(text);
}

/** The stored id an objectid of this kind names, or null when it names none (another kind, not one of ours). */
export function storedId(kind: ObjectKind, text: string): Id | null {
  const prefix = PREFIX[kind];
  if (!text.startsWith(prefix)) return null;
  const id = text.slice(prefix.length);
  return /^[0-9a-f]{24}$/.test(id) ? id : null;
}
