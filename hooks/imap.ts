/**
 * For plugins that extend IMAP through `imap.command.for(VERB)` and `capabilities.for('imap')`: the shape of
 * the command input and result, and the wire helpers a command needs (strings, mailbox names). The pure codecs
 * are in hooks/imap-wire.ts, which the IMAP protocol module uses too, so a plugin never reaches into protocols/.
 *
 *   api.hooks.imap.command.for('GETQUOTA').tapPromise('getquota', async (ctx, input) => {
 *     const { args, utf8 } = imapInput(input);          // args: ImapToken[] for verbs the server doesn't know
 *     return { untagged: ['* QUOTA "" (STORAGE 10 512)'], text: 'GETQUOTA completed' };
 *   });
 */
import type { CommandInput } from './types.ts';
import { astring, decodeMailboxName, encodeMailboxName, literalOrQuoted } from './imap-wire.ts';
import type { ImapToken } from './imap-wire.ts';

export type { ImapToken };
/** ESEARCH (RFC 4731 / 5267): `RETURN (...)` options and the `* ESEARCH` line, as the built-in SEARCH uses them. */
export { answersEsearch, esearchLine, formatNumberSet, parseReturnOptions, partialSlice, savedMatches } from './imap-esearch.ts';
export type { EsearchAnswer, PartialRange, ReturnOptions } from './imap-esearch.ts';

/** What a built-in handler produced, as `next()` returns it (nothing written yet). */
export interface ImapCommandOutput {
  /** Untagged response lines, without CRLF. */
  readonly untagged: string[];
  readonly status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets (`TRYCREATE`), or null. */
  readonly code: string | null;
  readonly text: string;
}

/** What an IMAP command hook receives. */
export interface ImapCommandInput extends CommandInput {
  readonly tag: string;
  /**
   * For a verb the server implements: its parsed arguments (the command table's parse result). For a verb it
   * doesn't know: the raw `ImapToken[]`. The state check is done only for known verbs: check
   * `ctx.session.user` yourself in a new command.
   */
  readonly args: unknown;
  /** The client enabled UTF8=ACCEPT: mailbox names are UTF-8, not modified UTF-7. */
  readonly utf8: boolean;
  /**
   * Known verbs only: runs the built-in handler with `args` (default: the parsed arguments as received) and
   * returns its untagged lines and tagged result instead of writing them. Return them (with yours) as the
   * command's result. Handlers whose responses carry literals (FETCH bodies) cannot be run this way.
   */
  readonly next?: (args?: unknown) => Promise<ImapCommandOutput>;
  /** The selected mailbox (ImapSelectedMailbox), while one is selected. */
  readonly selected?: ImapSelectedMailbox;
}

/** What `ImapSelectedMailbox.search` found: the matching UIDs, ascending, as SEARCH would answer them. */
export interface ImapSearchMatches {
  readonly status: 'OK';
  readonly uids: number[];
  /** The highest modseq of the matches when the criteria used MODSEQ (RFC 7162), else null. */
  readonly highestModseq: number | null;
}

/**
 * The session's selected mailbox as a command hook sees it (SORT, THREAD): set on the input while a mailbox is
 * selected, absent otherwise. Read-only: the session's view of UIDs and sequence numbers, and the built-in search.
 */
export interface ImapSelectedMailbox {
  readonly mailboxId: string;
  /** UIDs in sequence-number order as this session sees them (message n is `uids()[n - 1]`). A new array. */
  uids(): number[];
  /** The sequence number of a UID in this session's view, or 0. */
  seqOf(uid: number): number;
  /**
   * Runs the built-in SEARCH parser and evaluator on the selected mailbox. `keys` are search keys as SEARCH takes
   * them; `charset` is the charset they are written in (null: UTF-8 / US-ASCII). A syntax error answers BAD, an
   * unknown charset `NO [BADCHARSET ...]`: return that result as the command's.
   */
  search(keys: readonly ImapToken[], charset: string | null): Promise<ImapSearchMatches | ImapCommandResult>;
  /** The modseq of a message in this session's view, 0 when it has none (an ESEARCH `MODSEQ` of MIN / MAX). */
  modseqOf(uid: number): number;
  /** SEARCHRES (RFC 5182): makes these UIDs the saved result that `$` stands for in later commands. */
  saveResult(uids: readonly number[]): void;
  /**
   * CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267): keeps the result of this command's last `search()` up to date under
   * `tag`: the session re-evaluates changed and new messages and reports `* ESEARCH (TAG "tag") ADDTO / REMOVEFROM`
   * whenever it may send untagged responses, until CANCELUPDATE or the mailbox is left. `matches` is the result as
   * answered (for a SORT in its order), and `order` puts a set of matching UIDs in that order (positions in the
   * updates follow it; without it the result is in UID order, position 0). False when the session keeps as many
   * results as it may: answer `* NO [NOUPDATE "tag"]` then.
   */
  keepUpdated(tag: string, uid: boolean, matches: readonly number[], order?: (uids: number[]) => Promise<number[]>): boolean;
}

/** What an IMAP command hook returns to answer the command itself. Status defaults to OK. (A type, not an
 * interface, so it is assignable to the neutral CommandResult.) */
export type ImapCommandResult = {
  readonly untagged?: string[];
  readonly status?: 'OK' | 'NO' | 'BAD';
  readonly code?: string | null;
  readonly text?: string;
  /**
   * False when the answer holds sequence numbers (SORT, THREAD): the session then sends no EXPUNGE responses for
   * other sessions' expunges with it (RFC 3501 §7.4.1), as for SEARCH. Default true.
   */
  readonly expunge?: boolean;
};

/** The input of an `imap.command` tap, typed (the IMAP session always passes an ImapCommandInput). */
export function imapInput(input: CommandInput): ImapCommandInput {
  return input as ImapCommandInput;
}

/** A token's text: an atom, quoted string or literal; null for NIL, lists and streamed literals. */
export function tokenText(token: ImapToken | undefined): string | null {
  if (!token) return null;
  if (token.type === 'atom' || token.type === 'string') return token.value;
  return null;
}

/** A client's mailbox name → the stored path (INBOX normalized). Throws on malformed modified UTF-7. */
export function mailboxPath(name: string, utf8: boolean): string {
  return decodeMailboxName(name, utf8);
}

/** A stored path → the mailbox name as the client sees it, ready to write (quoted or a literal). */
export function mailboxName(path: string, utf8: boolean): string {
  return literalOrQuoted(encodeMailboxName(path, utf8), { utf8 });
}

/** Any text as an IMAP string (quoted, or a literal when it must be). */
export function imapString(text: string, utf8 = false): string {
  return literalOrQuoted(text, { utf8 });
}

/** An astring: a bare atom when possible, else quoted or a literal. */
export function imapAstring(text: string, utf8 = false): string {
  return astring(text, { utf8 });
}
