/**
 * Mailbox management: CREATE (intermediate levels, RFC 6154 `USE (...)`), DELETE, RENAME (children move
 * along; renaming INBOX moves its messages, RFC 3501 §6.3.5), SUBSCRIBE, UNSUBSCRIBE, STATUS. Every write goes
 * through a pipeline function; STATUS reads storage directly.
 */
import type { HookContext } from '../../hooks/context.ts';
import { createMailbox, deleteMailbox, moveMessages, renameMailbox, subscribeMailbox } from '../../hooks/pipeline/index.ts';
import type { SpecialUse } from '../../storage/ports.ts';
import { denormalizedName, list } from './args.ts';
import { AUTHENTICATED, command } from './command.ts';
import { DELIMITER, oldNameItem } from './mailbox-tree.ts';
import { encodeMailboxName, literalOrQuoted } from './render.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';
import { statusItems, statusValues } from './status-items.ts';
import { ImapSyntaxError } from './types.ts';

const SPECIAL_USES = new Map(
  ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'].map((u) => [u.toLowerCase(), u as SpecialUse]),
);

/** A path with empty levels (`a//b`, `/a`) cannot be created. */
function validPath(path: string): boolean {
  return path.length > 0 && path.split(DELIMITER).every((part) => part.length > 0) && path.length <= 1024;
}

/** CREATE subscribes what it makes only when `imap.autoSubscribe` is on (RFC 3501 leaves subscribing to the client). */
function autoSubscribe(session: ImapSession): boolean {
  return session.app.config.imap.autoSubscribe;
}

/** Creates the missing superior levels of `path` (RFC 3501 §6.3.3); ALREADYEXISTS races are fine. */
async function createParents(session: ImapSession, ctx: HookContext, path: string): Promise<Outcome | null> {
  const parts = path.split(DELIMITER);
  for (let depth = 1; depth < parts.length; depth++) {
    const parent = parts.slice(0, depth).join(DELIMITER);
    if (await session.app.storage.mailboxes.getByPath(session.userId, parent)) continue;
    const created = await createMailbox(session.app, ctx, { userId: session.userId, path: parent, subscribed: autoSubscribe(session) });
    if (!created.ok && created.verdict.code !== 'ALREADYEXISTS') return verdictOutcome(created.verdict);
  }
  return null;
}

export const create = command({
  name: 'CREATE',
  states: AUTHENTICATED,
  parse(args, session) {
    const oldName = denormalizedName(args.peek(), session.rev2);
    let path = args.mailbox(session.utf8);
    if (path.endsWith(DELIMITER)) path = path.slice(0, -1); // "foo/" announces children to come: create "foo"
    let specialUse: SpecialUse | null = null;
    if (args.remaining > 0) {
      const params = list(args.next('CREATE parameters'), 'CREATE parameters');
      if (params.length !== 2 || params[0]!.type !== 'atom' || params[0].value.toUpperCase() !== 'USE') throw new ImapSyntaxError('Invalid CREATE parameters');
      const uses = list(params[1], 'USE attributes');
      if (uses.length > 1) throw new ImapSyntaxError('Only one special use per mailbox');
      const use = uses[0];
      if (use) {
        if (use.type !== 'atom') throw new ImapSyntaxError('Invalid USE attribute');
        specialUse = SPECIAL_USES.get(use.value.toLowerCase()) ?? null;
        if (!specialUse) return { path, specialUse: null, badUse: use.value.slice(0, 30), oldName };
      }
    }
    args.end();
    return { path, specialUse, badUse: null as string | null, oldName };
  },
  async run(session, { path, specialUse, badUse, oldName }, ctx) {
    if (badUse) return no(`Unsupported special use ${badUse}`, 'USEATTR');
    if (path === 'INBOX') return no('INBOX already exists', 'ALREADYEXISTS');
    if (!validPath(path)) return no('Invalid mailbox name', 'CANNOT');
    const parents = await createParents(session, ctx, path);
    if (parents) return parents;
    const created = await createMailbox(session.app, ctx, { userId: session.userId, path, specialUse, subscribed: autoSubscribe(session) });
    if (!created.ok) return verdictOutcome(created.verdict);
    // IMAP4rev2: a name written denormalized was created as its NFC form; LIST's OLDNAME says so (RFC 9051 §6.3.4)
    if (oldName !== null) session.send(`* LIST () "${DELIMITER}" ${literalOrQuoted(path, { utf8: true })}${oldNameItem(oldName)}`);
    return ok('CREATE completed');
  },
});

export const deleteCommand = command({
  name: 'DELETE',
  states: AUTHENTICATED,
  parse(args, session) {
    const path = args.mailbox(session.utf8);
    args.end();
    return path;
  },
  async run(session, path, ctx) {
    if (path === 'INBOX') return no('INBOX cannot be deleted', 'CANNOT');
    const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
    if (!mailbox) {
      // a level that only exists for its children (\Noselect) cannot be deleted (RFC 9051 §6.3.5, RFC 5530 HASCHILDREN)
      const children = (await session.app.storage.mailboxes.list(session.userId)).some((m) => m.path.startsWith(path + DELIMITER));
      return children ? no('Mailbox has inferior hierarchical names', 'HASCHILDREN') : no('No such mailbox', 'NONEXISTENT');
    }
    const deleted = await deleteMailbox(session.app, ctx, { userId: session.userId, mailboxId: mailbox.id });
    if (!deleted.ok) return verdictOutcome(deleted.verdict); // refused or failed: the selected mailbox stays selected
    if (session.selected?.mailbox.id === mailbox.id) {
      // the mailbox is gone: leave it (RFC 7162 [CLOSED]) before the tagged OK
      session.deselect();
      session.send('* OK [CLOSED] Previous mailbox closed');
    }
    return ok('DELETE completed');
  },
});

export const rename = command({
  name: 'RENAME',
  states: AUTHENTICATED,
  parse(args, session) {
    const from = args.mailbox(session.utf8);
    let to = args.mailbox(session.utf8);
    if (to.endsWith(DELIMITER)) to = to.slice(0, -1);
    args.end();
    return { from, to };
  },
  async run(session, { from, to }, ctx) {
    const { storage } = session.app;
    const userId = session.userId;
    if (!validPath(to)) return no('Invalid mailbox name', 'CANNOT');
    if (to === 'INBOX' || (await storage.mailboxes.getByPath(userId, to))) return no('Target mailbox already exists', 'ALREADYEXISTS');
    const source = await storage.mailboxes.getByPath(userId, from);
    if (!source) return no('No such mailbox', 'NONEXISTENT');
    if (from === to) return no('Source and target are the same', 'CANNOT');
    if (to.startsWith(from + DELIMITER)) return no('Cannot move a mailbox into itself', 'CANNOT');
    const parents = await createParents(session, ctx, to);
    if (parents) return parents;
    if (from !== 'INBOX') {
      const renamed = await renameMailbox(session.app, ctx, { userId, fromPath: from, toPath: to });
      return renamed.ok ? ok('RENAME completed') : verdictOutcome(renamed.verdict);
    }
    // RFC 3501: renaming INBOX moves all its messages to the new mailbox and leaves INBOX empty;
    // INBOX's children stay where they are.
    const created = await createMailbox(session.app, ctx, { userId, path: to, subscribed: autoSubscribe(session) });
    if (!created.ok) return verdictOutcome(created.verdict);
    const uids = (await storage.messages.index(source.id)).map((entry) => entry.uid);
    for (let i = 0; i < uids.length; i += 1000) {
      const moved = await moveMessages(session.app, ctx, { userId, mailboxId: source.id, uids: uids.slice(i, i + 1000), targetMailboxId: created.value.id });
      if (!moved.ok) return verdictOutcome(moved.verdict);
    }
    return ok('RENAME completed');
  },
});

function subscription(name: 'SUBSCRIBE' | 'UNSUBSCRIBE', subscribed: boolean) {
  return command({
    name,
    states: AUTHENTICATED,
    parse(args, session) {
      const path = args.mailbox(session.utf8);
      args.end();
      return path;
    },
    async run(session, path, ctx) {
      const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
      if (!mailbox && subscribed) return no('No such mailbox', 'NONEXISTENT');
      // UNSUBSCRIBE of a name without a mailbox removes the subscription its DELETE kept, if any
      const result = await subscribeMailbox(session.app, ctx, { userId: session.userId, mailboxId: mailbox?.id ?? null, path, subscribed });
      return result.ok ? ok(`${name} completed`) : verdictOutcome(result.verdict);
    },
  });
}

export const subscribe = subscription('SUBSCRIBE', true);
export const unsubscribe = subscription('UNSUBSCRIBE', false);

export const status = command({
  name: 'STATUS',
  states: AUTHENTICATED,
  parse(args, session) {
    const path = args.mailbox(session.utf8);
    const items = statusItems(list(args.next('status items'), 'status items'), session);
    args.end();
    return { path, items };
  },
  async run(session, { path, items }) {
    const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
    if (!mailbox) return no('No such mailbox', 'NONEXISTENT');
    if (items.includes('HIGHESTMODSEQ')) session.enable('CONDSTORE');
    const values = await statusValues(session, mailbox, items);
    session.send(`* STATUS ${literalOrQuoted(encodeMailboxName(mailbox.path, session.utf8), { utf8: session.utf8 })} (${values})`);
    return ok('STATUS completed');
  },
});

export const MAILBOX_COMMANDS = [create, deleteCommand, rename, subscribe, unsubscribe, status];
