/** Session and protocol hooks: connect/close, the per-verb command gate, capability lists. */
import type { HookContext } from '../context.ts';
import type { CommandInput, CommandResult } from '../types.ts';
import { ok } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runHook } from './run.ts';
import type { PipelineApp } from './run.ts';
import { isVerdict, fail } from '../verdict.ts';

/**
 * Why a connection ended, in its `connection closed` line:
 * - `quit`: the client said goodbye (IMAP LOGOUT, POP3 and LMTP QUIT);
 * - `client-closed`: the client went away without it;
 * - `idle-timeout`: nothing arrived for the idle timeout (autologout);
 * - `command-timeout`: a command did not arrive in time (commandTimeoutSeconds, minBytesPerSecond);
 * - `too-many-errors`: too many bad commands (maxBadCommands), or an over-long line where the protocol closes;
 * - `refused`: over the per-IP connection limit;
 * - `disconnect`: the server ended it for another reason (a plugin's disconnect verdict, the selected mailbox
 *   deleted, a failed STARTTLS handshake, a response cut short);
 * - `shutdown`: the server is stopping;
 * - `error`: an internal error.
 */
export type CloseReason = 'quit' | 'client-closed' | 'idle-timeout' | 'command-timeout' | 'too-many-errors' | 'refused' | 'disconnect' | 'shutdown' | 'error';

/**
 * Runs session.connect; every tap runs, failures are logged. Counts the connection (open and total) and logs its
 * `connection opened` line: the client's address and port (the PROXY header's when the listener takes one), and
 * the protocol and session id the session's logger carries.
 */
export async function connectSession(app: PipelineApp, ctx: HookContext): Promise<void> {
  const session = ctx.session;
  app.metrics?.connectionOpened(session.protocol);
  session.log.info('connection opened', { ip: session.remoteAddress, port: session.remotePort ?? undefined });
  await runAfter(ctx, app.hooks.session.connect, [ctx]);
}

/**
 * Runs session.close; every tap runs, failures are logged. Once per connectSession. Logs `connection closed` with
 * the address, the duration and why (`reason`); the session's logger adds the user when one was logged in.
 */
export async function closeSession(app: PipelineApp, ctx: HookContext, reason: CloseReason = 'client-closed'): Promise<void> {
  const session = ctx.session;
  app.metrics?.connectionClosed(session.protocol);
  session.log.info('connection closed', { ip: session.remoteAddress, port: session.remotePort ?? undefined, reason, seconds: Math.round((Date.now() - session.openedAt) / 100) / 10 });
  await runAfter(ctx, app.hooks.session.close, [ctx]);
}

/** A finished command, as the protocol answered it. */
export interface CommandReport {
  /** The verb as the client sent it (upper-cased for the metrics; unknown verbs are bounded there). */
  readonly verb: string;
  /** The protocol's status word: IMAP `OK` / `NO` / `BAD`, POP3 `+OK` / `-ERR`, LMTP the reply code (`250`). */
  readonly status: string;
  /** True when the command did what was asked. */
  readonly ok: boolean;
  /** Response code of the answer: IMAP `[CODE]`, POP3 `[CODE]`, LMTP enhanced status code; null when none. */
  readonly code?: string | null;
  /** From the command read to its final response. */
  readonly ms: number;
}

/**
 * Reports a finished command: the one `command` log line per command (`{ command, user, status, code, ms }`, the
 * code by its name alone;
 * info for a refused or failed command, debug for a successful one: a line per command at info cost ~2 % of a
 * busy server's CPU) and the command metrics (count by status, duration, errors by code). Protocols call it once
 * per command they answered, so neither the log format nor the metrics live in protocol code.
 */
export function reportCommand(app: PipelineApp, ctx: HookContext, protocol: CommandProtocol, report: CommandReport): void {
  const code = report.code ?? null;
  if (!report.ok || DETAILED.has(ctx.log.level)) {
    // the code's name only: `CAPABILITY`, not the capability list a LOGIN's OK carries; `COPYUID`, not the UID sets
    const fields = { command: report.verb, user: ctx.session.user?.username, status: report.status, code: code?.split(' ', 1)[0], ms: Math.round(report.ms) };
    if (report.ok) ctx.log.debug('command', fields);
    else ctx.log.info('command', fields);
  }
  app.metrics?.command({ protocol, verb: report.verb, status: report.status, ok: report.ok, code, seconds: report.ms / 1000 });
}

/** Log levels that show successful commands. */
const DETAILED = new Set(['debug', 'trace']);

export type CommandProtocol = 'imap' | 'pop3' | 'lmtp' | 'http';

function commandMap(app: PipelineApp, protocol: CommandProtocol) {
  return protocol === 'http' ? app.hooks.http.request : app.hooks[protocol].command;
}

/**
 * The command gate, run after the protocol's command table accepted a command and before its handler:
 * `{ ok: true, value: null }` = go on with the built-in handler; `{ ok: true, value: result }` = a plugin
 * implemented the command; `{ ok: false, verdict }` = refused (or a tap failed).
 */
export async function runCommand(app: PipelineApp, protocol: CommandProtocol, ctx: HookContext, command: CommandInput): Promise<OperationResult<CommandResult | null>> {
  const key = protocol === 'http' ? command.verb : command.verb.toUpperCase();
  const hook = commandMap(app, protocol).get(key);
  if (!hook || hook.taps.length === 0) return ok(null);
  const result = await runHook<unknown>(ctx, hook, [ctx, command]);
  if (!result.ok) return result;
  if (result.value === undefined || result.value === null) return ok(null);
  if (isVerdict(result.value)) return fail(result.value);
  return ok(result.value as CommandResult);
}

/**
 * The capability list a protocol announces, after plugins had their say (`capabilities.for(protocol)`). A
 * failing tap leaves the base list.
 */
export async function listCapabilities(app: PipelineApp, protocol: string, ctx: HookContext, base: readonly string[]): Promise<string[]> {
  const hook = app.hooks.capabilities.get(protocol.toLowerCase());
  if (!hook || hook.taps.length === 0) return [...base];
  const result = await runHook<unknown>(ctx, hook, [[...base], ctx]);
  if (!result.ok || !Array.isArray(result.value) || !result.value.every((c) => typeof c === 'string')) {
    if (result.ok) ctx.log.error('capabilities hook returned something that is not a string list', { protocol });
    return [...base];
  }
  return result.value;
}


