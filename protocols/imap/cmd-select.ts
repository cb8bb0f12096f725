/**
 * Selecting and leaving a mailbox: SELECT, EXAMINE (RFC 3501 §6.3.1–2, `(CONDSTORE)` of RFC 7162), CLOSE
 * (silent expunge), UNSELECT (RFC 3691), EXPUNGE, UID EXPUNGE (RFC 4315).
 */
import type { HookContext } from '../../hooks/context.ts';
import { expungeMessages } from '../../hooks/pipeline/index.ts';
import { list } from './args.ts';
import type { Args } from './args.ts';
import { AUTHENTICATED, SELECTED, command } from './command.ts';
import { parseSequenceSet } from './sequence.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';
import { ImapSyntaxError } from './types.ts';

function parseSelect(args: Args, session: ImapSession) {
  const path = args.mailbox(session.utf8);
  let condstore = false;
  if (args.remaining > 0) {
    for (const param of list(args.next('SELECT parameters'), 'SELECT parameters')) {
      if (param.type === 'atom' && param.value.toUpperCase() === 'CONDSTORE') condstore = true;
      else throw new ImapSyntaxError('Unsupported SELECT parameter');
    }
  }
  args.end();
  return { path, condstore };
}

function selectCommand(name: 'SELECT' | 'EXAMINE', readOnly: boolean) {
  return command({
    name,
    states: AUTHENTICATED,
    parse: parseSelect,
    async run(session, { path, condstore }) {
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
      session.send(`* ${view.recent.size} RECENT`);
      const firstUnseen = view.firstUnseen();
      if (firstUnseen > 0) session.send(`* OK [UNSEEN ${firstUnseen}] First unseen message`);
      session.send(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
      session.send(`* OK [UIDNEXT ${Math.max(mailbox.uidNext, view.lastUid + 1)}] Predicted next UID`);
      session.send(`* OK [HIGHESTMODSEQ ${Math.max(1, view.highestModseq)}] Highest`);
      return ok(`${name} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
    },
  });
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
  if (!silent) for (const seq of seqs) session.send(`* ${seq} EXPUNGE`);
  return null;
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
