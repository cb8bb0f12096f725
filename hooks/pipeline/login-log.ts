/**
 * The login lines an operator (and fail2ban) reads, written once for every protocol by the `authenticate`
 * pipeline:
 *
 *   {"msg":"login failed", ..., "ip":"192.0.2.7","user":"bob","method":"PLAIN","reason":"AUTHFAILED"}
 *   {"msg":"login", ..., "ip":"192.0.2.7","user":"bob","userId":"...","method":"PLAIN"}
 *
 * The message text is fixed and `ip` comes before `user`, so one filter matches every protocol (README, "Logs").
 * A failed login names the user the client sent, a login the account's user name. The name is JSON-encoded like every field (no line breaks, no quotes that could
 * end the field early) and cut to USER_MAX characters.
 */
import type { HookContext } from '../context.ts';
import type { Verdict } from '../verdict.ts';

export const LOGIN_FAILED = 'login failed';
export const LOGIN_OK = 'login';

/** Longest user name written to a log line (a client may send a line of many kilobytes). */
export const USER_MAX = 256;

function loggedUser(username: string): string {
  return username.length > USER_MAX ? `${username.slice(0, USER_MAX)}…` : username;
}

/**
 * A refused login: the credentials were wrong (auth.authenticate denied) or a policy refused the attempt
 * (auth.beforeAuthenticate denied, e.g. too many failures). Not a temporary failure (`tempfail`: storage out of
 * reach, too many logins in progress), which says nothing about the client.
 */
export function isFailedLogin(verdict: Verdict): boolean {
  return verdict.action !== 'tempfail';
}

export function logLoginFailed(ctx: HookContext, username: string, method: string, verdict: Verdict): void {
  ctx.log.info(LOGIN_FAILED, { ip: ctx.session.remoteAddress, user: loggedUser(username), method, reason: verdict.code });
}

export function logLogin(ctx: HookContext, user: { readonly id: string; readonly username: string }, method: string): void {
  ctx.log.info(LOGIN_OK, { ip: ctx.session.remoteAddress, user: loggedUser(user.username), userId: user.id, method });
}
