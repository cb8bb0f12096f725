/** Session and protocol hooks: connect/close, the per-verb command gate, capability lists. */
import type { HookContext } from '../context.ts';
import type { CommandInput, CommandResult } from '../types.ts';
import { ok } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runHook } from './run.ts';
import type { PipelineApp } from './run.ts';
import { isVerdict, fail } from '../verdict.ts';

/** Runs session.connect; every tap runs, failures are logged. Counts the connection (open and total). */
export async function connectSession(app: PipelineApp, ctx: HookContext): Promise<void> {
  app.metrics?.connectionOpened(ctx.session.protocol);
  await runAfter(ctx, app.hooks.session.connect, [ctx]);
}

/** Runs session.close; every tap runs, failures are logged. Once per connectSession. */
export async function closeSession(app: PipelineApp, ctx: HookContext): Promise<void> {
  app.metrics?.connectionClosed(ctx.session.protocol);
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
 * Reports a finished command: the one `command` log line per command (`{ command, user, status, code, ms }`;
 * info for a refused or failed command, debug for a successful one: a line per command at info cost ~2 % of a
 * busy server's CPU) and the command metrics (count by status, duration, errors by code). Protocols call it once
 * per command they answered, so neither the log format nor the metrics live in protocol code.
 */
export function reportCommand(app: PipelineApp, ctx: HookContext, protocol: CommandProtocol, report: CommandReport): void {
  const code = report.code ?? null;
  if (!report.ok || DETAILED.has(ctx.log.level)) {
    const fields = { command: report.verb, user: ctx.session.user?.username, status: report.status, code: code ?? undefined, ms: Math.round(report.ms) };
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


