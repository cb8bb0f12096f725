/**
 * STATUS data items (RFC 3501 §6.3.10, RFC 9051 §6.3.11): which items a session may ask for, and their values for
 * one mailbox. Shared by the STATUS command and, in IMAP4rev2 sessions, by LIST's `RETURN (STATUS (...))` (LIST-STATUS
 * is part of IMAP4rev2). Values come from the mailbox record and its stored counters; RECENT (IMAP4rev1 only) from
 * the \Recent mark, DELETED from the mailbox's shared index (storage/mailbox-index), whose count is cached there.
 */
import type { MailboxRecord } from '../../storage/ports.ts';
import { recentMark } from './recent.ts';
import type { ImapSession } from './session.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';

/**
 * Items every session may ask for. DELETED (RFC 9051) is answered in IMAP4rev1 sessions too: an unknown item
 * would be BAD, a known one costs nothing there. SIZE is RFC 8438 (also in RFC 9051).
 */
const STATUS_ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'APPENDLIMIT', 'DELETED']);

/** The items of a STATUS item list, once each; BAD for an unknown one, and for RECENT in IMAP4rev2 (not in its grammar). */
export function statusItems(tokens: readonly ImapToken[], session: ImapSession): string[] {
  const items = tokens.map((token) => {
    const item = token.type === 'atom' ? token.value.toUpperCase() : '';
    if (!STATUS_ITEMS.has(item)) throw new ImapSyntaxError('Invalid status item');
    if (item === 'RECENT' && session.rev2) throw new ImapSyntaxError('IMAP4rev2 has no RECENT status item');
    return item;
  });
  if (items.length === 0) throw new ImapSyntaxError('Missing status items');
  return [...new Set(items)];
}

/** `MESSAGES 3 UNSEEN 1 ...` for `mailbox`, in the order asked. */
export async function statusValues(session: ImapSession, mailbox: MailboxRecord, items: readonly string[]): Promise<string> {
  const { storage } = session.app;
  const counters = await storage.mailboxes.counters(mailbox.id);
  const values: string[] = [];
  for (const item of items) {
    let value: number;
    switch (item) {
      case 'MESSAGES':
        value = counters.messages;
        break;
      case 'RECENT': {
        const mark = await recentMark(storage.ephemeral, mailbox.id, mailbox.uidValidity);
        value = mark >= mailbox.uidNext - 1 ? 0 : (await storage.messages.index(mailbox.id)).filter((e) => e.uid > mark).length;
        break;
      }
      case 'UIDNEXT':
        value = mailbox.uidNext;
        break;
      case 'UIDVALIDITY':
        value = mailbox.uidValidity;
        break;
      case 'UNSEEN':
        value = counters.unseen;
        break;
      case 'HIGHESTMODSEQ':
        value = mailbox.highestModseq;
        break;
      case 'SIZE':
        value = counters.size;
        break;
      case 'DELETED':
        value = await deletedCount(session, mailbox);
        break;
      default:
        value = session.app.config.limits.maxMessageSize;
    }
    values.push(`${item} ${value}`);
  }
  return values.join(' ');
}

/** Messages flagged \Deleted: from the shared index (taken for this call when no session holds it; counted once per change). */
async function deletedCount(session: ImapSession, mailbox: MailboxRecord): Promise<number> {
  const lease = await session.app.indexes.acquire(mailbox);
  try {
    return lease.index.deletedCount();
  } finally {
    lease.release();
  }
}
