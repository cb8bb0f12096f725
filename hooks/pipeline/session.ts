/** Session and protocol hooks: connect/close, the per-verb command gate, capability lists. */
import type { HookContext } from '../context.ts';
import type { CommandInput, CommandResult } from '../types.ts';
import { ok } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runHook } from './run.ts';
import type { PipelineApp } from './run.ts';
import { isVerdict, fail } from '../verdict.ts';

/** Runs session.connect; every tap runs, failures are logged. */
export async function connectSession(app: PipelineApp, ctx: HookContext): Promise<void> {
  await runAfter(ctx, app.hooks.session.connect, [ctx]);
}

/** Runs session.close; every tap runs, failures are logged. */
export async function closeSession(app: PipelineApp, ctx: HookContext): Promise<void> {
  await runAfter(ctx, app.hooks.session.close, [ctx]);
}

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


