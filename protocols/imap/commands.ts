/** The IMAP command table: every built-in verb (UID forms as `UID FETCH`, …) and its spec. */
import type { CommandSpec } from './command.ts';
import { append } from './cmd-append.ts';
import { idle } from './cmd-idle.ts';
import { listCommand, lsubCommand } from './cmd-list.ts';
import { MAILBOX_COMMANDS } from './cmd-mailboxes.ts';
import { MESSAGE_COMMANDS } from './cmd-messages.ts';
import { notifyCommand } from './cmd-notify.ts';
import { SEARCH_COMMANDS } from './cmd-search.ts';
import { SELECT_COMMANDS } from './cmd-select.ts';
import { SESSION_COMMANDS } from './cmd-session.ts';

export const COMMANDS: ReadonlyMap<string, CommandSpec<unknown>> = new Map(
  [...SESSION_COMMANDS, listCommand, lsubCommand, ...MAILBOX_COMMANDS, ...SELECT_COMMANDS, ...MESSAGE_COMMANDS, ...SEARCH_COMMANDS, append, idle, notifyCommand].map((spec) => [spec.name, spec]),
);
