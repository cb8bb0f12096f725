/**
 * Commands on messages of the selected mailbox, by sequence number or UID: FETCH (RFC 3501 §6.4.5, RFC 7162
 * CHANGEDSINCE), STORE (±FLAGS, .SILENT, UNCHANGEDSINCE → [MODIFIED]), SEARCH, COPY ([COPYUID], RFC 4315) and
 * MOVE (RFC 6851); `$` as a set is the SEARCHRES saved result (search-context.ts). SEARCH is cmd-search.ts. Reads go to storage directly; writes through updateFlags / copyMessages / moveMessages. FETCH
 * responses carrying message bytes (body sections) pass checkDownload first and reportDownload after (daily limits).
 */
import type { HookContext } from '../../hooks/context.ts';
import { checkDownload, copyMessages, moveMessages, reportDownload, updateFlags } from '../../hooks/pipeline/index.ts';
import type { MessageContent, MessageParts } from '../../storage/ports.ts';
import { flagList, list, number } from './args.ts';
import type { Args } from './args.ts';
import { SELECTED, command } from './command.ts';
import type { CommandSpec } from './command.ts';
import { parseFetch, planHasSections, renderFetch, renderFetchLine } from './fetch.ts';
import type { FetchPlan } from './fetch.ts';
import { FetchRefusal } from './fetch-binary.ts';
import { formatSequenceSet, parseSequenceSet, sequenceNumbers } from './sequence.ts';
import type { SequenceSet } from './sequence.ts';
import { renderFlags } from './render.ts';
import { no, ok, verdictOutcome } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';
import { ImapSyntaxError } from './types.ts';
import { reportExpunged } from './cmd-select.ts';
import { vanishedEarlier } from './qresync.ts';

/** UIDs (ascending) a set names in the client's view. A sequence number beyond EXISTS is BAD (RFC 9051 §6.4.5). */
export function resolveSet(session: ImapSession, set: SequenceSet, uid: boolean): number[] {
  const view = session.selected!;
  if (uid) return view.selectUids(set);
  for (const range of set) {
    if (range.start !== '*' && range.end !== '*' && Math.max(range.start, range.end) > view.exists) {
      throw new ImapSyntaxError('Invalid message sequence number');
    }
  }
  return view.uidsAt(sequenceNumbers(set, view.exists));
}

/** A sequence set, or `$` (SEARCHRES, RFC 5182): the saved search result, as UIDs or sequence numbers. */
function sequenceArg(args: Args, session: ImapSession, uid: boolean): SequenceSet {
  const text = args.atom('sequence set');
  if (text === '$' && session.selected) return session.searches.savedSet(session.selected, uid);
  return parseSequenceSet(text);
}

// --- FETCH ------------------------------------------------------------------------------------------------

/** Messages loaded, checked against download limits, flagged \Seen and sent per step of a FETCH. */
const FETCH_CHUNK = 64;

function fetchCommand(uid: boolean): CommandSpec<unknown> {
  return command({
    name: uid ? 'UID FETCH' : 'FETCH',
    states: SELECTED,
    expunge: uid,
    parse(args, session) {
      const set = sequenceArg(args, session, uid);
      const plan = parseFetch(args.rest(), { uid, condstore: session.condstore, utf8: session.utf8, qresync: session.isEnabled('QRESYNC') });
      return { set, plan };
    },
    async run(session, { set, plan }, ctx) {
      const view = session.selected!;
      const { storage } = session.app;
      if (plan.enablesCondstore) session.enable('CONDSTORE');
      let uids = resolveSet(session, set, uid);
      const since = plan.changedSince;
      if (plan.vanished && since !== null) {
        const vanished = await vanishedEarlier(storage, view, since, set);
        if (vanished) session.send(vanished);
      }
      if (since !== null) uids = uids.filter((u) => (view.entry(u)?.modseq ?? 0) > since);
      const sendsFlags = plan.items.some((item) => item.type === 'FLAGS');
      if (!plan.needsRecord && !plan.needsContent && !planHasSections(plan)) return fetchMetadata(session, ctx, uids, plan, sendsFlags);
      // Messages go out in chunks: load and render a chunk, ask whether its bytes may be downloaded
      // (transfer.beforeDownload), then set \Seen for a non-PEEK body fetch — so a refused download never
      // marks anything read — and send. One flag update per chunk keeps modseq churn and commits low.
      let missing = false;
      for (let i = 0; i < uids.length; i += FETCH_CHUNK) {
        // the chunk's messages the client knows, read in one storage call with only the parts the items need
        const known = uids.slice(i, i + FETCH_CHUNK).filter((u) => view.entry(u) !== undefined);
        if (known.length < Math.min(FETCH_CHUNK, uids.length - i)) missing = true;
        const chunk: Array<{ uid: number; record?: MessageParts; content?: MessageContent; modseq?: number }> = [];
        if (plan.needsRecord || plan.needsContent) {
          const found = await storage.messages.parts(view.mailbox.id, known, plan.parts);
          if (found.length < known.length) missing = true;
          for (const parts of found) chunk.push({ uid: parts.uid, record: parts, content: parts.content });
        } else {
          for (const u of known) chunk.push({ uid: u });
        }
        await session.slice.pause();
        const render = (m: (typeof chunk)[number], flagsChanged: boolean) => {
          const entry = view.entry(m.uid)!;
          m.modseq = entry.modseq;
          return renderFetch(plan, {
            seq: view.seqOf(m.uid),
            entry,
            record: m.record,
            content: m.content,
            loadContent: async () => (await storage.messages.parts(view.mailbox.id, [m.uid], { content: true }))[0]?.content ?? null,
            blobs: storage.blobs,
            recent: view.recent.has(m.uid),
            flagsChanged,
          });
        };
        // one message at a time, yielding between them: rendering may read storage synchronously
        const renderAll = async (changed: ReadonlySet<number> | null) => {
          const out = [];
          for (const m of chunk) {
            out.push(await render(m, changed?.has(m.uid) ?? false));
            await session.slice.pause();
          }
          return out;
        };
        let rendered;
        try {
          rendered = await renderAll(null);
        } catch (err) {
          if (err instanceof FetchRefusal) return no(err.message, err.code); // BINARY of a part it cannot decode
          throw err;
        }
        const bytes = rendered.flat().reduce((sum, piece) => (typeof piece === 'string' ? sum : sum + piece.size), 0);
        const transfer = { userId: session.userId, protocol: 'imap', bytes };
        const refused = await checkDownload(session.app, ctx, transfer);
        if (refused) return verdictOutcome(refused);
        if (plan.setsSeen && !view.readOnly) {
          const unseen = chunk.filter((m) => !view.entry(m.uid)!.flags.includes('\\Seen')).map((m) => m.uid);
          if (unseen.length > 0) {
            const update = { action: 'add' as const, flags: ['\\Seen'] };
            const result = await updateFlags(session.app, ctx, { userId: session.userId, mailboxId: view.mailbox.id, uids: unseen, update });
            if (!result.ok) return verdictOutcome(result.verdict);
            view.applyFlags(result.value.changed);
            const changed = new Set(result.value.changed.map((c) => c.uid));
            // the response carries the new FLAGS (RFC 3501 §6.4.5)
            if (changed.size > 0) rendered = await renderAll(changed);
          }
        }
        for (const line of view.keywordResponses()) session.send(line);
        for (const pieces of rendered) {
          await session.sendPieces(pieces);
          await session.slice.pause();
        }
        if (sendsFlags) for (const m of chunk) view.flagsSent(m.uid, m.modseq!);
        await reportDownload(session.app, ctx, transfer);
      }
      return missing ? ok('Some messages were expunged meanwhile', 'EXPUNGEISSUED') : ok(`${uid ? 'UID FETCH' : 'FETCH'} completed`);
    },
  });
}

/** Lines of a metadata FETCH built per send (they come from the shared index, with no storage call). */
const METADATA_BATCH = 1024;

/**
 * FETCH of index data only (UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ): every line comes from the shared
 * mailbox index, rendered synchronously and sent in batches, each batch gated like a chunk of any FETCH.
 */
async function fetchMetadata(session: ImapSession, ctx: HookContext, uids: readonly number[], plan: FetchPlan, sendsFlags: boolean): Promise<Outcome> {
  const view = session.selected!;
  const { blobs } = session.app.storage;
  let missing = false;
  for (let i = 0; i < uids.length; i += METADATA_BATCH) {
    const transfer = { userId: session.userId, protocol: 'imap', bytes: 0 };
    const refused = await checkDownload(session.app, ctx, transfer);
    if (refused) return verdictOutcome(refused);
    const lines: string[] = [];
    for (let k = i; k < Math.min(uids.length, i + METADATA_BATCH); k++) {
      const uid = uids[k]!;
      const known = view.message(uid);
      if (!known) {
        missing = true;
        continue;
      }
      lines.push(renderFetchLine(plan, { seq: known.seq, entry: known.entry, blobs, recent: view.recent.has(uid), flagsChanged: false }));
      if (sendsFlags) view.flagsSent(uid, known.entry.modseq);
    }
    for (const line of view.keywordResponses()) session.send(line);
    if (lines.length > 0) await session.sendPieces([lines.join('\r\n')]);
    await reportDownload(session.app, ctx, transfer);
    await session.slice.pause();
  }
  return missing ? ok('Some messages were expunged meanwhile', 'EXPUNGEISSUED') : ok(`${plan.uid ? 'UID FETCH' : 'FETCH'} completed`);
}

// --- STORE ------------------------------------------------------------------------------------------------

const STORE_ITEM = /^([+-]?)FLAGS(\.SILENT)?$/i;
/** Flag changes (messages × flags) per updateFlags call of one STORE. */
const STORE_STEP = 2048;

function storeCommand(uid: boolean): CommandSpec<unknown> {
  return command({
    name: uid ? 'UID STORE' : 'STORE',
    states: SELECTED,
    expunge: uid,
    parse(args, session) {
      const set = sequenceArg(args, session, uid);
      let unchangedSince: number | undefined;
      const next = args.peek();
      if (next?.type === 'list') {
        const modifiers = list(args.next('modifiers'), 'modifiers');
        const name = modifiers[0];
        if (modifiers.length !== 2 || name?.type !== 'atom' || name.value.toUpperCase() !== 'UNCHANGEDSINCE') throw new ImapSyntaxError('Invalid STORE modifier');
        unchangedSince = number(modifiers[1], 'UNCHANGEDSINCE value', Number.MAX_SAFE_INTEGER);
      }
      const item = STORE_ITEM.exec(args.atom('STORE data item'));
      if (!item) throw new ImapSyntaxError('Invalid STORE data item');
      const rest = args.rest();
      const tokens = rest.length === 1 && rest[0]!.type === 'list' ? rest[0].items : rest;
      if (rest.length === 0) throw new ImapSyntaxError('Missing flags');
      const flags = flagList(tokens).filter((f) => f !== '\\Recent'); // \Recent cannot be stored (RFC 3501 §2.3.2)
      const action = item[1] === '+' ? ('add' as const) : item[1] === '-' ? ('remove' as const) : ('set' as const);
      return { set, action, flags, silent: Boolean(item[2]), unchangedSince };
    },
    async run(session, { set, action, flags, silent, unchangedSince }, ctx) {
      const view = session.selected!;
      if (view.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
      if (unchangedSince !== undefined) session.enable('CONDSTORE');
      const uids = resolveSet(session, set, uid).filter((u) => view.entry(u));
      if (uids.length > 0 && (flags.length > 0 || action === 'set')) {
        const update = { action, flags, ...(unchangedSince !== undefined ? { unchangedSince } : {}) };
        // in steps of about STORE_STEP flag changes, yielding between them: one updateFlags call for a whole
        // mailbox times many flags would hold the event loop for seconds on a synchronous backend
        const step = Math.max(1, Math.floor(STORE_STEP / Math.max(1, flags.length)));
        const modified = new Set<number>();
        for (let i = 0; i < uids.length; i += step) {
          const part = uids.slice(i, i + step);
          const result = await updateFlags(session.app, ctx, { userId: session.userId, mailboxId: view.mailbox.id, uids: part, update });
          if (!result.ok) return verdictOutcome(result.verdict);
          if (view.applyFlags(result.value.changed)) for (const line of view.flagsResponses()) session.send(line);
          for (const u of result.value.modified) modified.add(u);
          await session.slice.pause();
        }
        for (const u of uids) {
          await session.slice.pause();
          const entry = view.entry(u);
          if (!entry || modified.has(u)) continue;
          // .SILENT drops FLAGS; with CONDSTORE the MODSEQ is still reported (RFC 7162 §3.2)
          if (silent && !session.condstore) continue;
          for (const line of view.keywordResponses()) session.send(line);
          const flagsText = view.recent.has(u) ? [...entry.flags, '\\Recent'] : entry.flags;
          const parts = silent ? [] : [`FLAGS ${renderFlags(flagsText)}`];
          if (uid) parts.push(`UID ${u}`);
          if (session.condstore) parts.push(`MODSEQ (${entry.modseq})`);
          session.send(`* ${view.seqOf(u)} FETCH (${parts.join(' ')})`);
        }
        if (modified.size > 0) {
          const numbers = [...modified].map((u) => (uid ? u : view.seqOf(u))).filter((n) => n > 0);
          return ok('Conditional STORE failed for some messages', `MODIFIED ${formatSequenceSet(numbers)}`);
        }
      }
      return ok(`${uid ? 'UID STORE' : 'STORE'} completed`);
    },
  });
}

// --- COPY and MOVE ----------------------------------------------------------------------------------------

function transferCommand(verb: 'COPY' | 'MOVE', uid: boolean): CommandSpec<unknown> {
  const name = uid ? `UID ${verb}` : verb;
  return command({
    name,
    states: SELECTED,
    expunge: uid || verb === 'MOVE',
    parse(args, session) {
      const set = sequenceArg(args, session, uid);
      const path = args.mailbox(session.utf8);
      args.end();
      return { set, path };
    },
    async run(session, { set, path }, ctx: HookContext) {
      const view = session.selected!;
      const { storage } = session.app;
      if (verb === 'MOVE' && view.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
      const target = await storage.mailboxes.getByPath(session.userId, path);
      if (!target) return no('No such mailbox', 'TRYCREATE');
      const uids = resolveSet(session, set, uid).filter((u) => view.entry(u));
      if (uids.length === 0) return ok(`${name} completed, nothing to do`);
      const input = { userId: session.userId, mailboxId: view.mailbox.id, uids, targetMailboxId: target.id };
      const result = verb === 'COPY' ? await copyMessages(session.app, ctx, input) : await moveMessages(session.app, ctx, input);
      if (!result.ok) return verdictOutcome(result.verdict, { target: true });
      const { mappings, uidValidity } = result.value;
      const copyUid =
        mappings.length > 0
          ? `COPYUID ${uidValidity} ${formatSequenceSet(mappings.map((m) => m.sourceUid), { sort: false })} ${formatSequenceSet(
              mappings.map((m) => m.destinationUid),
              { sort: false },
            )}`
          : null;
      if (target.id === view.mailbox.id) await view.sync(true);
      if (verb === 'COPY') return ok(`${name} completed`, copyUid);
      if (copyUid) session.send(`* OK [${copyUid}] Moved`);
      const moved = mappings.map((m) => m.sourceUid);
      reportExpunged(session, moved, view.remove(moved));
      return ok(`${name} completed`);
    },
  });
}

export const MESSAGE_COMMANDS: CommandSpec<unknown>[] = [
  fetchCommand(false),
  fetchCommand(true),
  storeCommand(false),
  storeCommand(true),
  transferCommand('COPY', false),
  transferCommand('COPY', true),
  transferCommand('MOVE', false),
  transferCommand('MOVE', true),
];
