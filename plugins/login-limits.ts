/**
 * Failed-login limits, for every protocol at once (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS and AUTH, HTTP
 * authentication): the host always loads this plugin, configured from `auth.failedLogins`.
 *
 * - `auth.failed` (every refused password): counts the failure for the login name and for the client address
 *   in the ephemeral store (so the count holds across server instances sharing Redis), then waits `delayMs`
 *   before the client gets its answer.
 * - `auth.beforeAuthenticate` at GUARD: once the login name has `perUser` failures, or the address `perIp`,
 *   within the window, every attempt — even with the right password — is refused with `deny LIMIT`, after the
 *   same delay, until the window (counted from the first failure) runs out.
 *
 * IPv6 clients are counted per /64, the block one subscriber usually holds, so rotating addresses within it
 * does not reset the count. Attempts without a client address (internal callers) are counted per user only.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Plugin, PluginApi } from '../hooks/host.ts';
import { GUARD } from '../hooks/stages.ts';
import { deny } from '../hooks/verdict.ts';
import type { Config } from '../hooks/config.ts';

export const LOGIN_LIMITS_PLUGIN = 'login-limits';

export interface LoginLimitsOptions {
  /** Failures per login name within the window before logins are refused. */
  perUser: number;
  /** Failures per client address within the window before logins are refused. */
  perIp: number;
  windowMs: number;
  /** Wait before answering a failed or refused attempt. */
  delayMs: number;
}

export function loginLimitsFromConfig(config: Pick<Config, 'auth'>): LoginLimitsOptions {
  const f = config.auth.failedLogins;
  return { perUser: f.perUser, perIp: f.perIp, windowMs: f.windowSeconds * 1000, delayMs: f.delayMs };
}

/** Counter key for a login name: case-insensitive, long names hashed so keys stay small. */
export function userKey(username: string): string {
  const name = username.trim().toLowerCase();
  return `login-fail:user:${name.length > 200 ? 'sha256:' + createHash('sha256').update(name).digest('hex') : name}`;
}

/** Counter key for a client address: IPv4 as is, IPv6 by its /64 prefix; null without an address. */
export function ipKey(address: string): string | null {
  const a = address.trim().toLowerCase();
  if (!a) return null;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return `login-fail:ip:${mapped[1]}`;
  if (isIP(a) !== 6) return `login-fail:ip:${a}`;
  const [head = '', tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  const prefix = groups.slice(0, 4).map((g) => (g.includes('.') ? g : parseInt(g || '0', 16).toString(16)));
  return `login-fail:ip6:${prefix.join(':')}::/64`;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

export function createLoginLimitsPlugin(options: LoginLimitsOptions): Plugin {
  return {
    name: LOGIN_LIMITS_PLUGIN,
    apply(api: PluginApi) {
      const { ephemeral } = api.storage;
      // a tap that outlives hooks.timeoutMs would turn the answer into "try again": keep the delay inside it
      const maxDelay = Math.max(0, api.config.hooks.timeoutMs - 500);
      const delayMs = Math.min(options.delayMs, maxDelay);
      if (delayMs < options.delayMs) {
        api.log.warn('auth.failedLogins.delayMs exceeds hooks.timeoutMs; using a shorter delay', { delayMs, configured: options.delayMs });
      }

      api.hooks.auth.beforeAuthenticate.tapPromise({ stage: GUARD }, async (ctx, input) => {
        const ip = ipKey(ctx.session.remoteAddress);
        const [userFailures, ipFailures] = await Promise.all([ephemeral.get(userKey(input.username)), ip ? ephemeral.get(ip) : Promise.resolve(0)]);
        const over = userFailures >= options.perUser ? 'user' : ipFailures >= options.perIp ? 'ip' : null;
        if (!over) return undefined;
        ctx.log.info('login refused: too many failed attempts', { by: over, username: input.username, remoteAddress: ctx.session.remoteAddress });
        await sleep(delayMs);
        return deny('LIMIT', 'Too many failed login attempts, try again later');
      });

      api.hooks.auth.failed.tapPromise({}, async (ctx, info) => {
        const ip = ipKey(ctx.session.remoteAddress);
        try {
          await Promise.all([ephemeral.incr(userKey(info.username), 1, options.windowMs), ip ? ephemeral.incr(ip, 1, options.windowMs) : null]);
        } finally {
          await sleep(delayMs); // also when the store is down: the answer is delayed either way
        }
      });
    },
  };
}
