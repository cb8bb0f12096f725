/** Message operations other than store: copy, move, expunge, flags. Each is before → commit → after. */
import type { HookContext } from '../context.ts';
import type { CopyInput, CopyResult, ExpungeInput, ExpungeResult, FlagResult, FlagsInput, MoveInput } from '../types.ts';
import type { OperationResult } from '../verdict.ts';
import { runTriplet } from './run.ts';
import type { PipelineApp } from './run.ts';

export function copyMessages(app: PipelineApp, ctx: HookContext, input: CopyInput): Promise<OperationResult<CopyResult>> {
  const h = app.hooks.message;
  return runTriplet(ctx, { before: h.beforeCopy, commit: h.copy, after: h.afterCopy }, Object.freeze({ ...input, uids: [...input.uids] }));
}

/** Serves IMAP MOVE, POP3 DELE-to-Trash and the HTTP API alike. */
export function moveMessages(app: PipelineApp, ctx: HookContext, input: MoveInput): Promise<OperationResult<CopyResult>> {
  const h = app.hooks.message;
  return runTriplet(ctx, { before: h.beforeMove, commit: h.move, after: h.afterMove }, Object.freeze({ ...input, uids: [...input.uids] }));
}

export function expungeMessages(app: PipelineApp, ctx: HookContext, input: ExpungeInput): Promise<OperationResult<ExpungeResult>> {
  const h = app.hooks.message;
  return runTriplet(ctx, { before: h.beforeExpunge, commit: h.expunge, after: h.afterExpunge }, Object.freeze({ ...input, uids: [...input.uids] }));
}

export function updateFlags(app: PipelineApp, ctx: HookContext, input: FlagsInput): Promise<OperationResult<FlagResult>> {
  const h = app.hooks.message;
  return runTriplet(ctx, { before: h.beforeFlags, commit: h.flags, after: h.afterFlags }, Object.freeze({ ...input, uids: [...input.uids] }));
}
