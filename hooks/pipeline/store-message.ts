/**
 * storeMessage: the one way a message gets into a mailbox (IMAP APPEND, LMTP delivery, HTTP upload, Sent
 * autosave).
 *
 *   declaredSize check ── TOOBIG
 *   message.beforeStore    quota, policy               ── verdict
 *   message.prepare        rewrite the stream          ── VerdictError / failure
 *   app.ingest             parse once, stage blobs     ── TOOBIG / tempfail
 *   message.store          storage plugin commits      ── verdict (staged blobs discarded); or a tap answers an
 *                                                         existing message (existingMessage(): nothing written)
 *   message.afterStore     notifications               (errors logged only)
 *
 * When the result is a failure, the source may not have been read to its end; the caller drains or drops it.
 * `storeMessageWhen` takes a condition awaited between ingest and `message.store` (delivery's duplicate claim, so
 * its round trip overlaps the parse): false stores nothing.
 */
import type { HookContext } from '../context.ts';
import type { AppendInput, AppendResult, IngestedMessage } from '../../storage/ports.ts';
import type { MessageSource, StoreInput, StoreRequest, StoreResult } from '../types.ts';
import { VerdictError, deny, fail, tempfail } from '../verdict.ts';
import type { OperationResult, Verdict } from '../verdict.ts';
import { isAsyncIterable, runAfter, runBefore, runCommit, runHook, toStream } from './run.ts';
import type { PipelineApp } from './run.ts';

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function tooBig(limit: number): Verdict {
  return deny('TOOBIG', `Message exceeds the maximum size of ${limit} bytes`);
}

/** Maps an error thrown by ingest (or by a stream a prepare tap returned) to a verdict. */
function ingestFailure(ctx: HookContext, err: unknown, limit: number): Verdict {
  if (err instanceof VerdictError) return err.verdict;
  const code = errorCode(err);
  if (code === 'TOOBIG') return tooBig(limit);
  if (code === 'UNAVAILABLE') return tempfail('UNAVAILABLE');
  ctx.log.error('message ingest failed', { err });
  return tempfail('SERVERBUG', 'Could not process the message, try again later');
}

async function discard(app: PipelineApp, ctx: HookContext, message: IngestedMessage): Promise<void> {
  if (message.blobs.length === 0) return;
  try {
    await app.storage.blobs.discard(message.blobs);
  } catch (err) {
    ctx.log.warn('could not discard staged blobs; blobs.collect() will', { err, blobs: message.blobs.length });
  }
}

/** Marks a message already stored as `message.store`'s answer (see StoreResult): nothing new is written. */
export function existingMessage(result: AppendResult): StoreResult {
  return Object.freeze({ id: result.id, uid: result.uid, modseq: result.modseq, uidValidity: result.uidValidity, threadId: result.threadId, existing: true });
}

export async function storeMessage(app: PipelineApp, ctx: HookContext, input: StoreInput): Promise<OperationResult<StoreResult>> {
  return (await storeMessageWhen(app, ctx, input, null))!;
}

/**
 * storeMessage, with `proceed` awaited after ingest and before `message.store`: when it gives false, the staged blobs
 * are discarded, nothing is stored, and the answer is null (a failure before that point is answered as usual).
 */
export async function storeMessageWhen(
  app: PipelineApp,
  ctx: HookContext,
  input: StoreInput,
  proceed: Promise<boolean> | null,
): Promise<OperationResult<StoreResult> | null> {
  const { source, ...fields } = input;
  const request: StoreRequest = Object.freeze({ ...fields, flags: [...fields.flags] });
  const limit = app.config.limits.maxMessageSize;
  if (request.declaredSize !== undefined && request.declaredSize > limit) return fail(tooBig(limit));

  const refused = await runBefore(ctx, app.hooks.message.beforeStore, [ctx, request]);
  if (refused) return fail(refused);

  const prepared = await runHook<MessageSource>(ctx, app.hooks.message.prepare, [toStream(source), ctx, request]);
  if (!prepared.ok) return prepared;
  if (!isAsyncIterable(prepared.value)) {
    ctx.log.error('message.prepare returned something that is not an AsyncIterable<Uint8Array>', { returned: typeof prepared.value });
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }

  let message: IngestedMessage;
  try {
    message = await app.ingest(prepared.value);
  } catch (err) {
    return fail(ingestFailure(ctx, err, limit));
  }

  try {
    if (message.size > limit) {
      await discard(app, ctx, message);
      return fail(tooBig(limit));
    }
    if (proceed && !(await proceed)) {
      await discard(app, ctx, message);
      return null;
    }
    const append: AppendInput = Object.freeze({
      userId: request.userId,
      mailboxId: request.mailboxId,
      flags: [...request.flags],
      internalDate: request.internalDate,
      message,
    });
    const committed = await runCommit<StoreResult>(ctx, app.hooks.message.store, [ctx, append]);
    if (!committed.ok) {
      await discard(app, ctx, message);
      return committed;
    }
    if (committed.value.existing) {
      // a tap answered with a message already stored: nothing new was written
      await discard(app, ctx, message);
      return committed;
    }
    await runAfter(ctx, app.hooks.message.afterStore, [ctx, append, committed.value]);
    return committed;
  } catch (err) {
    // Only reachable through a bug in this function: the run* helpers do not throw.
    ctx.log.error('storeMessage failed', { err });
    await discard(app, ctx, message);
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }
}
