/**
 * submitMessage: the way a user's outgoing message enters the server (HTTP submit, a future SMTP submission).
 *
 *   submission.beforeSubmit   policy, rate limits                          ── verdict
 *   read the message once     bounded by limits.maxMessageSize             ── TOOBIG
 *   submission.submit         a queue plugin accepts it (none tapped: tempfail UNAVAILABLE)
 *   submission.afterSubmit    the Sent copy (plugins/sent-autosave.ts, through storeMessage so quota applies),
 *                             notifications; gets `open()` to read the message again (errors logged only), and
 *                             `recordStored()` to report a copy it stored
 *
 * The result carries the accepting plugin's answer and, in `stored`, every copy an observer reported: the
 * protocol answers with the Sent copy from there, without knowing which plugin saved it.
 */
import type { HookContext } from '../context.ts';
import type { StoredCopy, SubmitCommit, SubmitInput, SubmitOutcome, SubmitRequest, SubmitResult, SubmittedMessage } from '../types.ts';
import { deny, fail, ok } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runBefore, runCommit, toStream } from './run.ts';
import type { PipelineApp } from './run.ts';

async function readBounded(source: AsyncIterable<Uint8Array>, limit: number): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export async function submitMessage(app: PipelineApp, ctx: HookContext, input: SubmitInput): Promise<OperationResult<SubmitOutcome>> {
  const h = app.hooks.submission;
  const { source, ...fields } = input;
  const request: SubmitRequest = Object.freeze({ ...fields, to: [...fields.to] });
  const refused = await runBefore(ctx, h.beforeSubmit, [ctx, request]);
  if (refused) return fail(refused);
  const limit = app.config.limits.maxMessageSize;
  const bytes = source instanceof Uint8Array ? source : await readBounded(toStream(source), limit);
  if (!bytes || bytes.length > limit) return fail(deny('TOOBIG', `Message exceeds the maximum size of ${limit} bytes`));
  const commit: SubmitCommit = Object.freeze({ ...request, to: [...request.to], source: bytes });
  const result = await runCommit<SubmitResult>(ctx, h.submit, [ctx, commit]);
  if (!result.ok) return result;
  const stored: StoredCopy[] = [];
  const submitted: SubmittedMessage = Object.freeze({
    ...request,
    size: bytes.length,
    open: () => toStream(bytes),
    recordStored: (copy: StoredCopy) => void stored.push(Object.freeze({ mailboxId: copy.mailboxId, uid: copy.uid, id: copy.id })),
  });
  await runAfter(ctx, h.afterSubmit, [ctx, submitted, result.value]);
  return ok(Object.freeze({ ...result.value, stored: Object.freeze(stored) }));
}
