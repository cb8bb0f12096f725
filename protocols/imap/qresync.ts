/**
 * QRESYNC (RFC 7162 §3.2): the `(QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]]))` parameter of
 * SELECT/EXAMINE, and the `* VANISHED (EARLIER) uid-set` answer that SELECT and `UID FETCH ... (CHANGEDSINCE m
 * VANISHED)` give.
 *
 * Which UIDs vanished after a modseq comes from the change log (`changes.vanished`, an index of expunge entries by
 * mailbox and modseq in both backends). When the log was pruned past that modseq for the mailbox, the answer is the
 * larger set the RFC allows: every UID in the asked ranges that is not in the mailbox (from the in-memory index).
 * A UID the session still holds (expunged elsewhere, not yet reported) is left out: its `* VANISHED` comes at the
 * next point where expunges may be reported.
 */
import type { ImapToken } from './types.ts';
import { ImapSyntaxError } from './types.ts';
import { MAX_NUMBER, formatSequenceSet, parseSequenceSet, resolveSequenceSet, sequencePredicate } from './sequence.ts';
import type { NumberRange, SequenceSet } from './sequence.ts';
import type { SelectedMailbox } from './selected.ts';
import type { StoragePorts } from '../../storage/ports.ts';

const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;

export interface QresyncParam {
  uidValidity: number;
  modseq: number;
  /** UIDs the client has cached; null: all. */
  knownUids: SequenceSet | null;
  /** `(known-sequence-set known-uid-set)`: parsed for syntax; the server answers without it (a larger set is allowed). */
  seqMatch: { seqs: SequenceSet; uids: SequenceSet } | null;
}

function numberOf(token: ImapToken | undefined, what: string, min: number, max: number): number {
  if (!token || token.type !== 'atom' || !/^\d+$/.test(token.value)) throw new ImapSyntaxError(`Invalid ${what}`);
  const n = Number(token.value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ImapSyntaxError(`Invalid ${what}`);
  return n;
}

function setOf(token: ImapToken | undefined, what: string): SequenceSet {
  if (!token || token.type !== 'atom') throw new ImapSyntaxError(`Invalid ${what}`);
  return parseSequenceSet(token.value);
}

/** The list after `QRESYNC` in SELECT/EXAMINE parameters. Throws ImapSyntaxError (BAD). */
export function parseQresyncParam(token: ImapToken | undefined): QresyncParam {
  if (!token || token.type !== 'list' || token.items.length < 2 || token.items.length > 4) {
    throw new ImapSyntaxError('QRESYNC expects (uidvalidity modseq [known-uids [(seq-match-data)]])');
  }
  const [validity, modseq, third, fourth] = token.items;
  const param: QresyncParam = {
    uidValidity: numberOf(validity, 'QRESYNC uidvalidity', 1, MAX_NUMBER),
    modseq: numberOf(modseq, 'QRESYNC mod-sequence', 0, MAX_MODSEQ),
    knownUids: null,
    seqMatch: null,
  };
  let match = fourth;
  if (third?.type === 'list') {
    if (fourth) throw new ImapSyntaxError('Invalid QRESYNC parameters');
    match = third;
  } else if (third) param.knownUids = setOf(third, 'QRESYNC known-uids');
  if (match) {
    if (match.type !== 'list' || match.items.length !== 2) throw new ImapSyntaxError('Invalid QRESYNC seq-match-data');
    param.seqMatch = { seqs: setOf(match.items[0], 'QRESYNC known-sequence-set'), uids: setOf(match.items[1], 'QRESYNC known-uid-set') };
  }
  return param;
}

/** `* VANISHED (EARLIER) set` for UIDs within `set` (`*`: the highest UID given out) expunged after `modseq`, or null. */
export async function vanishedEarlier(
  storage: Pick<StoragePorts, 'changes'>,
  view: SelectedMailbox,
  modseq: number,
  set: SequenceSet | null,
): Promise<string | null> {
  const top = view.uidNext - 1;
  if (top < 1) return null;
  const ranges: NumberRange[] = set ? resolveSequenceSet(set, top).map((r) => ({ from: r.from, to: Math.min(r.to, top) })) : [{ from: 1, to: top }];
  const within = ranges.filter((r) => r.from <= r.to);
  if (within.length === 0) return null;
  const told = await storage.changes.vanished(view.mailbox.id, modseq);
  let text: string;
  if (told === null) {
    text = view.absent(within).map((r) => (r.from === r.to ? `${r.from}` : `${r.from}:${r.to}`)).join(',');
  } else {
    const wanted = set ? sequencePredicate(set, top) : null;
    text = formatSequenceSet(told.filter((uid) => (!wanted || wanted(uid)) && !view.holds(uid)));
  }
  return text === '' ? null : `* VANISHED (EARLIER) ${text}`;
}

/** The untagged responses SELECT/EXAMINE (QRESYNC ...) adds after the usual ones: VANISHED (EARLIER), then FETCH. */
export async function resyncResponses(storage: Pick<StoragePorts, 'changes'>, view: SelectedMailbox, param: QresyncParam): Promise<string[]> {
  if (param.uidValidity !== view.mailbox.uidValidity) return []; // a different mailbox: the client starts over
  const lines: string[] = [];
  const vanished = await vanishedEarlier(storage, view, param.modseq, param.knownUids);
  if (vanished) lines.push(vanished);
  const known = param.knownUids ? sequencePredicate(param.knownUids, view.uidNext - 1) : null;
  lines.push(...view.changedSince(param.modseq, known));
  return lines;
}
