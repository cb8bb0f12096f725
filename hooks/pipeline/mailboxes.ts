/** Mailbox operations: create, rename, delete, subscribe. Each is before → commit → after. */
import type { HookContext } from '../context.ts';
import type {
  CreateMailboxInput,
  DeleteMailboxInput,
  MailboxRecord,
  RenameMailboxInput,
  SubscribeMailboxInput,
  SubscribeResult,
} from '../types.ts';
import type { OperationResult } from '../verdict.ts';
import { runTriplet } from './run.ts';
import type { PipelineApp } from './run.ts';

export function createMailbox(app: PipelineApp, ctx: HookContext, input: CreateMailboxInput): Promise<OperationResult<MailboxRecord>> {
  const h = app.hooks.mailbox;
  return runTriplet(ctx, { before: h.beforeCreate, commit: h.create, after: h.afterCreate }, Object.freeze({ ...input }));
}

/** Renames the mailbox and its descendants; the result lists every renamed mailbox. */
export function renameMailbox(app: PipelineApp, ctx: HookContext, input: RenameMailboxInput): Promise<OperationResult<MailboxRecord[]>> {
  const h = app.hooks.mailbox;
  return runTriplet(ctx, { before: h.beforeRename, commit: h.rename, after: h.afterRename }, Object.freeze({ ...input }));
}

export function deleteMailbox(app: PipelineApp, ctx: HookContext, input: DeleteMailboxInput): Promise<OperationResult<MailboxRecord>> {
  const h = app.hooks.mailbox;
  return runTriplet(ctx, { before: h.beforeDelete, commit: h.delete, after: h.afterDelete }, Object.freeze({ ...input }));
}

/** SUBSCRIBE and UNSUBSCRIBE (`subscribed: false`). */
export function subscribeMailbox(app: PipelineApp, ctx: HookContext, input: SubscribeMailboxInput): Promise<OperationResult<SubscribeResult>> {
  const h = app.hooks.mailbox;
  return runTriplet(ctx, { before: h.beforeSubscribe, commit: h.subscribe, after: h.afterSubscribe }, Object.freeze({ ...input }));
}
