/**
 * authenticate: auth.beforeAuthenticate (rate limits, policy) → auth.authenticate (the storage plugin checks
 * the password) → on success sets `ctx.session.user` → auth.afterAuthenticate (without the password); when
 * the credentials are refused (a deny verdict) → auth.failed, which runs before the caller gets the verdict.
 */
import type { HookContext } from '../context.ts';
import type { AuthInfo, AuthInput, UserRecord } from '../types.ts';
import { fail } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runBefore, runCommit } from './run.ts';
import type { PipelineApp } from './run.ts';

export async function authenticate(app: PipelineApp, ctx: HookContext, input: AuthInput): Promise<OperationResult<UserRecord>> {
  const h = app.hooks.auth;
  const request: AuthInput = Object.freeze({ ...input });
  const refused = await runBefore(ctx, h.beforeAuthenticate, [ctx, request]);
  if (refused) return fail(refused);
  const result = await runCommit<UserRecord>(ctx, h.authenticate, [ctx, request]);
  const info: AuthInfo = Object.freeze({ username: input.username, method: input.method });
  if (!result.ok) {
    if (result.verdict.action === 'deny') await runAfter(ctx, h.failed, [ctx, info, result.verdict]);
    return result;
  }
  ctx.session.user = { id: result.value.id, username: result.value.username };
  await runAfter(ctx, h.afterAuthenticate, [ctx, info, result.value]);
  return result;
}
