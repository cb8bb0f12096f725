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
 * its round trip overlaps the parse; a function is called only then, so its caller learns that ingest is done:
 * store-messages.ts holds several messages there until all are ingested): false stores nothing; and optionally the caller's parse of the source
 * (PreIngested), used in place of `app.ingest` when no `message.prepare` tap replaced the stream.
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

async function discardStaged(app: PipelineApp, ctx: HookContext, message: IngestedMessage): Promise<void> {
  if (message.blobs.length === 0) return;
  try {
    await app.storage.blobs.discard(message.blobs);
  } catch (err) {
    ctx.log.warn('could not discard staged blobs; blobs.collect() will', { err, blobs: message.blobs.length });
  }
}

/**
 * A parse of the message the caller made already (delivery parses a message once for all its recipients). It is used
 * instead of ingesting `input.source` when every `message.prepare` tap returned the stream it was given: a tap that
 * rewrites the message returns a new stream, and that stream is ingested on its own. The staged blobs of a
 * pre-ingested message stay the caller's: storeMessage never discards them, and tells `committed()` when a commit
 * took them (on both backends the first commit consumes them and later ones take references on the stored blobs).
 */
export interface PreIngested {
  /** The parse of exactly the bytes `input.source` yields; null when there is none (the source is ingested then). */
  message(): Promise<IngestedMessage | null>;
  committed(): void;
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
  proceed: Promise<boolean> | (() => Promise<boolean>) | null,
  ingested: PreIngested | null = null,
): Promise<OperationResult<StoreResult> | null> {
  const { source, ...fields } = input;
  const request: StoreRequest = Object.freeze({ ...fields, flags: [...fields.flags] });
  const limit = app.config.limits.maxMessageSize;
  if (request.declaredSize !== undefined && request.declaredSize > limit) return fail(tooBig(limit));

  const refused = await runBefore(ctx, app.hooks.message.beforeStore, [ctx, request]);
  if (refused) return fail(refused);

  const stream = toStream(source);
  const prepared = await runHook<MessageSource>(ctx, app.hooks.message.prepare, [stream, ctx, request]);
  if (!prepared.ok) return prepared;
  if (!isAsyncIterable(prepared.value)) {
    ctx.log.error('message.prepare returned something that is not an AsyncIterable<Uint8Array>', { returned: typeof prepared.value });
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }

  // The caller's parse serves when no message.prepare tap replaced the stream (the bytes are the ones it parsed) and
  // it has one for these bytes; else the stream is ingested here.
  let message: IngestedMessage | null = null;
  try {
    if (ingested !== null && prepared.value === stream) message = await ingested.message();
  } catch (err) {
    return fail(ingestFailure(ctx, err, limit));
  }
  const shared = message !== null;
  if (message === null) {
    try {
      message = await app.ingest(prepared.value);
    } catch (err) {
      return fail(ingestFailure(ctx, err, limit));
    }
  }
  // staged blobs of the caller's parse are the caller's to discard (other copies may still commit them)
  const release = (staged: IngestedMessage): Promise<void> => (shared ? Promise.resolve() : discardStaged(app, ctx, staged));

  try {
    if (message.size > limit) {
      await release(message);
      return fail(tooBig(limit));
    }
    if (proceed && !(await (typeof proceed === 'function' ? proceed() : proceed))) {
      await release(message);
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
      await release(message);
      return committed;
    }
    if (committed.value.existing) {
      // a tap answered with a message already stored: nothing new was written
      await release(message);
      return committed;
    }
    if (shared) ingested!.committed();
    await runAfter(ctx, app.hooks.message.afterStore, [ctx, append, committed.value]);
    return committed;
  } catch (err) {
    // Only reachable through a bug in this function: the run* helpers do not throw.
    ctx.log.error('storeMessage failed', { err });
    await release(message);
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }
}
