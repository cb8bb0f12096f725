/**
 * Selecting and leaving a mailbox: SELECT, EXAMINE (RFC 3501 §6.3.1–2, `(CONDSTORE)` and `(QRESYNC (...))` of
 * RFC 7162, qresync.ts), CLOSE
 * (silent expunge), UNSELECT (RFC 3691), EXPUNGE, UID EXPUNGE (RFC 4315).
 */
import type { HookContext } from '../../hooks/context.ts';
import { expungeMessages } from '../../hooks/pipeline/index.ts';
import { denormalizedName, list } from './args.ts';
import type { Args } from './args.ts';
import { AUTHENTICATED, SELECTED, command } from './command.ts';
import { DELIMITER, oldNameItem } from './mailbox-tree.ts';
import { encodeMailboxName, literalOrQuoted } from './render.ts';
import { formatSequenceSet, parseSequenceSet } from './sequence.ts';
import { parseQresyncParam, resyncResponses } from './qresync.ts';
import type { QresyncParam } from './qresync.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';
import { ImapSyntaxError } from './types.ts';

function parseSelect(args: Args, session: ImapSession) {
  const oldName = denormalizedName(args.peek(), session.rev2);
  const path = args.mailbox(session.utf8);
  let condstore = false;
  let qresync: QresyncParam | null = null;
  if (args.remaining > 0) {
    const params = list(args.next('SELECT parameters'), 'SELECT parameters');
    for (let i = 0; i < params.length; i++) {
      const param = params[i]!;
      const name = param.type === 'atom' ? param.value.toUpperCase() : '';
      if (name === 'CONDSTORE') condstore = true;
      else if (name === 'QRESYNC' && qresync === null) {
        // RFC 7162 §3.2.5: only after ENABLE QRESYNC
        if (!session.isEnabled('QRESYNC')) throw new ImapSyntaxError('QRESYNC is not enabled', 'CLIENTBUG');
        qresync = parseQresyncParam(params[++i]);
      } else throw new ImapSyntaxError('Unsupported SELECT parameter');
    }
  }
  args.end();
  return { path, condstore, qresync, oldName };
}

function selectCommand(name: 'SELECT' | 'EXAMINE', readOnly: boolean) {
  return command({
    name,
    states: AUTHENTICATED,
    parse: parseSelect,
    async run(session, { path, condstore, qresync, oldName }) {
      if (session.selected) {
        session.deselect(); // a failed SELECT leaves no mailbox selected either (RFC 3501 §6.3.1)
        session.send('* OK [CLOSED] Previous mailbox closed');
      }
      const mailbox = await session.app.storage.mailboxes.getByPath(session.userId, path);
      if (!mailbox) return no('No such mailbox', 'NONEXISTENT');
      if (condstore) session.enable('CONDSTORE');
      const view = await session.open(mailbox, readOnly);
      for (const line of view.flagsResponses()) session.send(line);
      session.send(`* ${view.exists} EXISTS`);
      if (session.rev2) {
        // RFC 9051 §6.3.2: no RECENT and no [UNSEEN n] (both gone from IMAP4rev2), but the mailbox's LIST line
        session.send(`* LIST (${selectedAttributes(mailbox.specialUse)}) "${DELIMITER}" ${mailboxNameText(mailbox.path, session.utf8)}${oldNameItem(oldName)}`);
      } else {
        session.send(`* ${view.recent.size} RECENT`);
        const firstUnseen = view.firstUnseen();
        if (firstUnseen > 0) session.send(`* OK [UNSEEN ${firstUnseen}] First unseen message`);
      }
      session.send(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
      session.send(`* OK [UIDNEXT ${Math.max(mailbox.uidNext, view.lastUid + 1)}] Predicted next UID`);
      session.send(`* OK [HIGHESTMODSEQ ${Math.max(1, view.highestModseq)}] Highest`);
      if (qresync) for (const line of await resyncResponses(session.app.storage, view, qresync)) session.send(line);
      return ok(`${name} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
    },
  });
}

/** The attributes SELECT's LIST line can state without listing the user's other mailboxes: the special use. */
function selectedAttributes(specialUse: string | null | undefined): string {
  return specialUse && specialUse !== '\\Inbox' ? specialUse : '';
}

function mailboxNameText(path: string, utf8: boolean): string {
  return literalOrQuoted(encodeMailboxName(path, utf8), { utf8 });
}

export const select = selectCommand('SELECT', false);
export const examine = selectCommand('EXAMINE', true);

/** Expunges `uids` (already filtered to \Deleted ones) and reports each as `* n EXPUNGE` unless silent. */
async function expunge(session: ImapSession, ctx: HookContext, uids: number[], silent: boolean): Promise<Outcome | null> {
  const view = session.selected!;
  if (uids.length === 0) return null;
  const result = await expungeMessages(session.app, ctx, { userId: session.userId, mailboxId: view.mailbox.id, uids });
  if (!result.ok) return verdictOutcome(result.verdict);
  const seqs = view.remove(result.value.uids);
  if (!silent) reportExpunged(session, result.value.uids, seqs);
  return null;
}

/** The session's own expunges: `* n EXPUNGE` each, or one `* VANISHED uid-set` once QRESYNC is enabled (RFC 7162 §3.2.10). */
export function reportExpunged(session: ImapSession, uids: readonly number[], seqs: readonly number[]): void {
  if (session.isEnabled('QRESYNC')) {
    if (uids.length > 0) session.send(`* VANISHED ${formatSequenceSet(uids)}`);
  } else for (const seq of seqs) session.send(`* ${seq} EXPUNGE`);
}

async function deletedUids(session: ImapSession): Promise<number[]> {
  const view = session.selected!;
  await view.sync(true); // the latest \Deleted flags, whoever set them
  return view.deletedUids();
}

export const expungeCommand = command({
  name: 'EXPUNGE',
  states: SELECTED,
  parse: (args) => args.end(),
  async run(session, _parsed, ctx) {
    if (session.selected!.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
    return (await expunge(session, ctx, await deletedUids(session), false)) ?? ok('EXPUNGE completed');
  },
});

export const uidExpunge = command({
  name: 'UID EXPUNGE',
  states: SELECTED,
  parse(args, session) {
    const text = args.atom('UID set');
    // `$`: the SEARCHRES saved result (RFC 5182)
    const set = text === '$' && session.selected ? session.searches.savedSet(session.selected, true) : parseSequenceSet(text);
    args.end();
    return set;
  },
  async run(session, set, ctx) {
    if (session.selected!.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
    const deleted = await deletedUids(session);
    const wanted = new Set(session.selected!.selectUids(set));
    return (await expunge(session, ctx, deleted.filter((uid) => wanted.has(uid)), false)) ?? ok('UID EXPUNGE completed');
  },
});

export const close = command({
  name: 'CLOSE',
  states: SELECTED,
  parse: (args) => args.end(),
  async run(session, _parsed, ctx) {
    const view = session.selected!;
    let outcome: Outcome | null = null;
    if (!view.readOnly) outcome = await expunge(session, ctx, await deletedUids(session), true);
    session.deselect();
    return outcome ?? ok('CLOSE completed');
  },
});

export const unselect = command({
  name: 'UNSELECT',
  states: SELECTED,
  parse: (args) => args.end(),
  async run(session) {
    session.deselect();
    return ok('UNSELECT completed');
  },
});

export const SELECT_COMMANDS = [select, examine, expungeCommand, uidExpunge, close, unselect];
