/**
 * authenticate: auth.beforeAuthenticate (rate limits, policy) → auth.authenticate (the storage plugin checks
 * the password) → on success sets `ctx.session.user` → auth.afterAuthenticate (without the password); when
 * the credentials are refused (a deny verdict) → auth.failed, which runs before the caller gets the verdict.
 * Last, whatever happened, auth.settled with the outcome (login-limits gives back its reserved attempt there).
 *
 * It also writes the login lines every protocol shares (login-log.ts): `login failed` with the address and the
 * attempted user name when a tap refused the attempt or the credentials (not for a temporary failure), `login`
 * on success. From then on the session's logger names the user (hooks/context.ts).
 */
import type { HookContext } from '../context.ts';
import type { AuthInfo, AuthInput, AuthSettled, UserRecord } from '../types.ts';
import { fail } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runBefore, runCommit } from './run.ts';
import { isFailedLogin, logLogin, logLoginFailed } from './login-log.ts';
import type { PipelineApp } from './run.ts';

export async function authenticate(app: PipelineApp, ctx: HookContext, input: AuthInput): Promise<OperationResult<UserRecord>> {
  const h = app.hooks.auth;
  const request: AuthInput = Object.freeze({ ...input });
  const info: AuthInfo = Object.freeze({ username: input.username, method: input.method });
  const settle = (settled: AuthSettled) => runAfter(ctx, h.settled, [ctx, info, Object.freeze(settled)]);
  const refused = await runBefore(ctx, h.beforeAuthenticate, [ctx, request]);
  if (refused) {
    if (isFailedLogin(refused)) logLoginFailed(ctx, input.username, input.method, refused);
    await settle({ outcome: 'refused', verdict: refused });
    return fail(refused);
  }
  const result = await runCommit<UserRecord>(ctx, h.authenticate, [ctx, request]);
  if (!result.ok) {
    const failed = result.verdict.action === 'deny';
    if (isFailedLogin(result.verdict)) logLoginFailed(ctx, input.username, input.method, result.verdict);
    if (failed) await runAfter(ctx, h.failed, [ctx, info, result.verdict]);
    await settle({ outcome: failed ? 'failed' : 'error', verdict: result.verdict });
    return result;
  }
  ctx.session.user = { id: result.value.id, username: result.value.username };
  logLogin(ctx, result.value, input.method);
  await runAfter(ctx, h.afterAuthenticate, [ctx, info, result.value]);
  await settle({ outcome: 'ok', verdict: null });
  return result;
}
