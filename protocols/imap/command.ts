/**
 * The shape of a command table entry. The session validates state and syntax generically (state from
 * `states`, syntax by `parse`) before the command gate (`imap.command.for(VERB)`) and before `run`.
 */
import type { HookContext } from '../../hooks/context.ts';
import type { Args } from './args.ts';
import type { Outcome } from './responses.ts';
import type { ImapCommand } from './types.ts';
import type { ImapSession } from './session.ts';

export type ImapState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

export const ANY: readonly ImapState[] = ['not-authenticated', 'authenticated', 'selected'];
export const NOT_AUTHENTICATED: readonly ImapState[] = ['not-authenticated'];
export const AUTHENTICATED: readonly ImapState[] = ['authenticated', 'selected'];
export const SELECTED: readonly ImapState[] = ['selected'];

export interface CommandSpec<P = unknown> {
  /** Upper-case verb, `UID FETCH` for UID commands. */
  readonly name: string;
  readonly states: readonly ImapState[];
  /**
   * May EXPUNGE responses for other sessions' expunges go out with this command? False for FETCH, STORE and
   * SEARCH (RFC 3501 §7.4.1) and COPY by sequence number; their UID forms allow them. Default true.
   */
  readonly expunge?: boolean;
  /** Reads the arguments; throws ImapSyntaxError for BAD. The result is what the command gate sees as `args`. */
  parse(args: Args, session: ImapSession): P;
  /**
   * The command may wait for hours (IDLE): the session does not keep its command loop suspended on it, but picks the
   * loop up again when `run`'s promise settles. Thousands of idle sessions then hold no suspended frames.
   */
  readonly waits?: boolean;
  /** Runs the command, writing untagged responses through the session; returns the tagged result. */
  run(session: ImapSession, parsed: P, ctx: HookContext, command: ImapCommand): Promise<Outcome>;
}

/** Helps TypeScript infer P per entry while the table holds `CommandSpec<unknown>`. */
export function command<P>(spec: CommandSpec<P>): CommandSpec<unknown> {
  return spec as unknown as CommandSpec<unknown>;
}
