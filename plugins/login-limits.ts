/**
 * Failed-login limits, for every protocol at once (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS and AUTH, HTTP
 * `POST /authenticate`: all run the authenticate() pipeline): the host always loads this plugin, configured
 * from `auth.failedLogins`.
 *
 * - `auth.beforeAuthenticate` at GUARD: resolves the login name to its account (storage/users.ts `resolveLogin`,
 *   lookups only, no hashing), then reserves one attempt atomically (EphemeralPort.reserve) on three counters:
 *   the account (every name of it — username, each address, `+tag` forms — shares one budget; an unknown name is
 *   counted per name), the client address and the client network (IPv4 /24, IPv6 /64). A counter holds the
 *   failures plus the attempts in progress, so concurrent attempts count as they arrive: 100 LOGINs at once get
 *   `perUser` password checks, not 100. When a counter is at its limit (`perUser`, `perIp`, `perNetwork`):
 *   - if its failures alone reach the limit, the attempt is refused with `deny LIMIT` after `delayMs`, before any
 *     password is hashed — even the right password, until the window (from the first count) runs out;
 *   - otherwise attempts in progress hold the budget (a client opening many connections at once): the attempt
 *     waits for them to finish, up to `maxWaitMs`, then gets `tempfail LIMIT` (try again later).
 * - `auth.failed`: the reservation stays (it is the failure's count) and each counter's failure count goes up;
 *   the answer waits `delayMs`.
 * - `auth.settled`: a success, a refusal by a later beforeAuthenticate tap or a temporary failure gives its
 *   reservation back, so a user's own logins never lock the user out.
 *
 * Counters live in the ephemeral store, so the limits hold across server instances sharing Redis. Internal
 * callers (no client address) are counted per account only.
 */
import { createHash } from 'node:crypto';
import type { Plugin, PluginApi } from '../hooks/host.ts';
import { GUARD } from '../hooks/stages.ts';
import { deny, tempfail } from '../hooks/verdict.ts';
import type { Config } from '../hooks/config.ts';
import { resolveLogin } from '../storage/users.ts';
import { clientIp, clientNetwork } from './client-address.ts';

export const LOGIN_LIMITS_PLUGIN = 'login-limits';

export interface LoginLimitsOptions {
  /** Failures (and attempts in progress) per account, or per login name when it names no account. */
  perUser: number;
  /** Failures per client address. */
  perIp: number;
  /** Failures per client network (IPv4 /24, IPv6 /64). */
  perNetwork: number;
  windowMs: number;
  /** Wait before answering a failed or refused attempt. */
  delayMs: number;
  /** Longest wait for attempts in progress to free the budget before a temporary refusal. */
  maxWaitMs: number;
}

export function loginLimitsFromConfig(config: Pick<Config, 'auth'>): LoginLimitsOptions {
  const f = config.auth.failedLogins;
  return { perUser: f.perUser, perIp: f.perIp, perNetwork: f.perNetwork, windowMs: f.windowSeconds * 1000, delayMs: f.delayMs, maxWaitMs: f.maxWaitMs };
}

/** Counter key for an account: all its login names share it. */
export function accountKey(userId: string): string {
  return `login-fail:account:${userId}`;
}

/** Counter key for a login name that names no account: case-insensitive, long names hashed so keys stay small. */
export function userKey(username: string): string {
  const name = username.trim().normalize('NFC').toLowerCase();
  return `login-fail:user:${name.length > 200 ? 'sha256:' + createHash('sha256').update(name).digest('hex') : name}`;
}

/** Counter key for a client address (plugins/client-address.ts `clientIp`); null without an address. */
export function ipKey(address: string): string | null {
  const ip = clientIp(address);
  return ip ? `login-fail:${ip}` : null;
}

/** Counter key for a client network (IPv4 /24, IPv6 /64); null without an address. */
export function networkKey(address: string): string | null {
  const net = clientNetwork(address);
  return net ? `login-fail:${net}` : null;
}

/** The failures alone counted under a reservation counter's key (the counter holds failures + attempts in progress). */
export function failuresKey(key: string): string {
  return `${key}:failed`;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

const BY = ['account', 'ip', 'network'] as const;

export function createLoginLimitsPlugin(options: LoginLimitsOptions): Plugin {
  return {
    name: LOGIN_LIMITS_PLUGIN,
    apply(api: PluginApi) {
      const { storage } = api;
      const { ephemeral } = storage;
      // a tap that outlives hooks.timeoutMs would turn the answer into "try again": keep the delay inside it
      const maxDelay = Math.max(0, api.config.hooks.timeoutMs - 500);
      const delayMs = Math.min(options.delayMs, maxDelay);
      if (delayMs < options.delayMs) {
        api.log.warn('auth.failedLogins.delayMs exceeds hooks.timeoutMs; using a shorter delay', { delayMs, configured: options.delayMs });
      }

      // waiting, then the refusal delay, must fit in hooks.timeoutMs too
      const maxWaitMs = Math.max(0, Math.min(options.maxWaitMs, maxDelay - delayMs));

      api.hooks.auth.beforeAuthenticate.tapPromise({ stage: GUARD }, async (ctx, input) => {
        const user = await resolveLogin(storage, input.username);
        const address = ctx.session.remoteAddress;
        const counters: Array<{ key: string; limit: number; by: (typeof BY)[number] }> = [{ key: user ? accountKey(user.id) : userKey(input.username), limit: options.perUser, by: 'account' }];
        const ip = ipKey(address);
        const net = networkKey(address);
        if (ip) counters.push({ key: ip, limit: options.perIp, by: 'ip' });
        if (net) counters.push({ key: net, limit: options.perNetwork, by: 'network' });
        const deadline = Date.now() + maxWaitMs;
        for (;;) {
          const over = await ephemeral.reserve(counters, options.windowMs);
          if (over < 0) {
            ctx.data.set(LOGIN_LIMITS_PLUGIN, counters.map((c) => c.key));
            return undefined;
          }
          const counter = counters[over]!;
          if ((await ephemeral.get(failuresKey(counter.key))) >= counter.limit) {
            ctx.log.info('login refused: too many failed attempts', { by: counter.by, username: input.username, remoteAddress: address });
            await sleep(delayMs);
            return deny('LIMIT', 'Too many failed login attempts, try again later');
          }
          if (Date.now() >= deadline) {
            ctx.log.info('login refused: too many attempts in progress', { by: counter.by, username: input.username, remoteAddress: address });
            return tempfail('LIMIT', 'Too many logins in progress, try again later');
          }
          await sleep(20 + Math.floor(Math.random() * 30)); // attempts in progress hold the budget: wait for them
        }
      });

      api.hooks.auth.failed.tapPromise({}, async (ctx) => {
        const keys = ctx.data.get(LOGIN_LIMITS_PLUGIN) as string[] | undefined;
        try {
          // the reservation stays (it is this failure's count); the failures alone decide refusal vs waiting
          if (keys) await Promise.all(keys.map((key) => ephemeral.incr(failuresKey(key), 1, options.windowMs)));
        } finally {
          await sleep(delayMs); // also when the store is down: the answer is delayed either way
        }
      });

      api.hooks.auth.settled.tapPromise({}, async (ctx, _info, settled) => {
        const keys = ctx.data.get(LOGIN_LIMITS_PLUGIN) as string[] | undefined;
        ctx.data.delete(LOGIN_LIMITS_PLUGIN);
        if (!keys || settled.outcome === 'failed') return;
        // not awaited: the answer to the client need not wait for the store (the releases reach it in order, before
        // anything this process asks it later)
        for (const key of keys) ephemeral.release(key, 1).catch(() => 0);
      });
    },
  };
}
