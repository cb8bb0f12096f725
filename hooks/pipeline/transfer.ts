/**
 * Downloads to IMAP and POP3 clients: `checkDownload` before a response carrying message bytes is sent (IMAP
 * FETCH body sections, POP3 RETR/TOP), `reportDownload` after it went out. Daily byte limits live in a plugin
 * (plugins/quota.ts); uploads are seen in `message.beforeStore` / `message.afterStore` with the session protocol.
 */
import type { HookContext } from '../context.ts';
import type { TransferInput } from '../types.ts';
import type { Verdict } from '../verdict.ts';
import { runAfter, runBefore } from './run.ts';
import type { PipelineApp } from './run.ts';

/** The refusing verdict, or null to send the bytes. Nothing to check for zero bytes. */
export async function checkDownload(app: PipelineApp, ctx: HookContext, input: TransferInput): Promise<Verdict | null> {
  if (input.bytes <= 0) return null;
  return runBefore(ctx, app.hooks.transfer.beforeDownload, [ctx, Object.freeze({ ...input })]);
}

/** Reports bytes sent; never fails. */
export async function reportDownload(app: PipelineApp, ctx: HookContext, input: TransferInput): Promise<void> {
  if (input.bytes <= 0) return;
  await runAfter(ctx, app.hooks.transfer.afterDownload, [ctx, Object.freeze({ ...input })]);
}
