/**
 * submitMessage: submission.beforeSubmit (policy, rate limits) → submission.submit (a queue plugin accepts
 * the message; with none tapped the result is tempfail UNAVAILABLE) → submission.afterSubmit (Sent copy etc.).
 */
import type { HookContext } from '../context.ts';
import type { SubmitInput, SubmitRequest, SubmitResult } from '../types.ts';
import { fail } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runBefore, runCommit } from './run.ts';
import type { PipelineApp } from './run.ts';

export async function submitMessage(app: PipelineApp, ctx: HookContext, input: SubmitInput): Promise<OperationResult<SubmitResult>> {
  const h = app.hooks.submission;
  const { source: _source, ...fields } = input;
  const request: SubmitRequest = Object.freeze({ ...fields, to: [...fields.to] });
  const refused = await runBefore(ctx, h.beforeSubmit, [ctx, request]);
  if (refused) return fail(refused);
  const result = await runCommit<SubmitResult>(ctx, h.submit, [ctx, Object.freeze({ ...input, to: [...input.to] })]);
  if (!result.ok) return result;
  await runAfter(ctx, h.afterSubmit, [ctx, request, result.value]);
  return result;
}
