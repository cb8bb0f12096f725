/**
 * The mailbox hierarchy as LIST and LSUB see it (RFC 3501 §6.3.8–9, RFC 5258 LIST-EXTENDED, RFC 3348
 * CHILDREN, RFC 6154 SPECIAL-USE): stored mailboxes plus the missing intermediate levels (`a` when only `a/b`
 * exists), which are listed as `\Noselect`, subscribed names whose mailbox was deleted (`\NonExistent`), and the
 * `%` / `*` pattern matching.
 */
import type { MailboxRecord } from '../../storage/ports.ts';
import { literalOrQuoted } from './render.ts';
import { wildcardMatcher } from './wildcard.ts';

export const DELIMITER = '/';

export interface TreeNode {
  path: string;
  /** The stored mailbox, or null for a level above one (or above a kept subscription) and for a kept subscription. */
  mailbox: MailboxRecord | null;
  /**
   * A stored mailbox or a level above one: what LIST shows without SUBSCRIBED. False for a subscription kept after
   * its mailbox was deleted (storage/subscriptions.ts) and for levels above only such names (`\NonExistent`).
   */
  exists: boolean;
  subscribed: boolean;
  /** Some stored mailbox lies below (RFC 3348 CHILDREN). */
  hasChildren: boolean;
  /** Some descendant is subscribed (LIST-EXTENDED RECURSIVEMATCH, LSUB `%`). */
  hasSubscribedChild: boolean;
}

/**
 * Every stored mailbox, every subscribed name without a mailbox (`kept`), and every missing ancestor of either,
 * sorted with INBOX first.
 */
export function buildTree(mailboxes: readonly MailboxRecord[], kept: readonly string[] = []): TreeNode[] {
  const nodes = new Map<string, TreeNode>();
  for (const mailbox of mailboxes) {
    nodes.set(mailbox.path, { path: mailbox.path, mailbox, exists: true, subscribed: mailbox.subscribed, hasChildren: false, hasSubscribedChild: false });
  }
  for (const path of kept) {
    if (!nodes.has(path)) nodes.set(path, { path, mailbox: null, exists: false, subscribed: true, hasChildren: false, hasSubscribedChild: false });
  }
  for (const source of [...nodes.values()]) {
    const parts = source.path.split(DELIMITER);
    for (let depth = parts.length - 1; depth >= 1; depth--) {
      const parent = parts.slice(0, depth).join(DELIMITER);
      let node = nodes.get(parent);
      if (!node) {
        node = { path: parent, mailbox: null, exists: false, subscribed: false, hasChildren: false, hasSubscribedChild: false };
        nodes.set(parent, node);
      }
      if (source.exists) {
        node.exists = true;
        node.hasChildren = true;
      }
      if (source.subscribed) node.hasSubscribedChild = true;
    }
  }
  return [...nodes.values()].sort((a, b) => {
    const ai = a.path === 'INBOX' || a.path.startsWith('INBOX/');
    const bi = b.path === 'INBOX' || b.path.startsWith('INBOX/');
    if (ai !== bi) return ai ? -1 : 1;
    return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  });
}

/**
 * A matcher for a LIST pattern (reference already joined): `*` matches anything, `%` anything but the
 * delimiter, in time linear in the path (wildcard.ts; no regular expression). INBOX is case-insensitive:
 * `inbox` and `in*` find INBOX.
 */
export function patternMatcher(pattern: string): (path: string) => boolean {
  const exact = wildcardMatcher(pattern, DELIMITER);
  // the pattern's INBOX prefix is normalized by the caller (`inbox/%` → `INBOX/%`); INBOX itself also
  // matches case-folded patterns such as `in*` (ASCII folding, as the `i` flag of the old expression did)
  const folded = wildcardMatcher(pattern.replace(/[a-z]/g, (c) => c.toUpperCase()), DELIMITER);
  return (path: string) => exact(path) || (path === 'INBOX' && folded(path));
}

/**
 * Attributes every LIST response carries: children, \Noselect, special use; `\NonExistent` alone for a name without
 * a mailbox or a level above one (RFC 5258 §3: it implies \Noselect).
 */
export function baseAttributes(node: TreeNode): string[] {
  if (!node.exists) return ['\\NonExistent'];
  const attributes = [node.hasChildren ? '\\HasChildren' : '\\HasNoChildren'];
  if (!node.mailbox) attributes.push('\\Noselect');
  const use = node.mailbox?.specialUse;
  if (use && use !== '\\Inbox') attributes.push(use);
  return attributes;
}

/** LIST's OLDNAME extended item (RFC 9051 §6.3.9.7) for a name an IMAP4rev2 client wrote denormalized, else nothing. */
export function oldNameItem(oldName: string | null): string {
  return oldName === null ? '' : ` ("OLDNAME" (${literalOrQuoted(oldName, { utf8: true })}))`;
}
