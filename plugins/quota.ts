/**
 * Quota: per-user storage (bytes) and message-count limits, loaded by default (protocols/app.ts). A user's own
 * limits (`user add --quota`, the HTTP API) win; otherwise `users.quota` from config; null = unlimited, so with
 * the default config nothing is refused. `['quota', false]` in `plugins` switches it off entirely (no checks,
 * no QUOTA capability).
 *
 * Enforced on every way a message lands in a mailbox, as `deny OVERQUOTA` (IMAP `NO [OVERQUOTA]`, LMTP
 * `452 4.2.2`, HTTP 403 `{ code: "OVERQUOTA" }`):
 *   message.beforeStore  POLICY  IMAP APPEND, LMTP, HTTP upload, Sent autosave: the announced size (`declaredSize`)
 *                                and one more message; without a size, refused only when already at the limit
 *   message.store        POLICY  the exact size after `message.prepare` rewrote and ingest parsed the message (not
 *                                looked up again when it is no larger than the declared size that just passed)
 *   message.beforeCopy   POLICY  IMAP COPY, HTTP copy: the copied messages' sizes and count
 * (MOVE stays within one user and changes no usage.) Usage counters are kept by storage in the same
 * transaction as each write, so they are exact after concurrent writes and expunges;
 * `wildduck quota recalc [USER]` recounts them (`users.recalculateUsage`) when they drifted.
 *
 * IMAP QUOTA (RFC 9208) through the capabilities and command hooks: QUOTA, QUOTA=RES-STORAGE and
 * QUOTA=RES-MESSAGE; GETQUOTAROOT and GETQUOTA report the single per-user root "" (STORAGE in KiB), SETQUOTA is
 * refused (limits are the administrator's). A user without any limit has no quota root.
 *
 * Daily transfer limits (WildDuck's imapMaxDownload / imapMaxUpload / pop3MaxDownload), `users.limits` in config,
 * null = unlimited: bytes per user counted in the ephemeral store, each counter living `transferWindowMs` (a day)
 * from its first increment. A transfer that would go over the limit is refused with `deny LIMIT` (IMAP
 * `NO [LIMIT]`, POP3 `-ERR [SYS/TEMP]`):
 *   transfer.beforeDownload / afterDownload  IMAP FETCH of body sections (FLAGS and the like are never refused),
 *                                            POP3 RETR and TOP
 *   message.beforeStore GUARD / afterStore   IMAP APPEND only (LMTP delivery and the HTTP API are not uploads)
 */
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { GUARD, POLICY } from '../hooks/stages.ts';
import { deny } from '../hooks/verdict.ts';
import type { Verdict } from '../hooks/verdict.ts';
import type { HookContext } from '../hooks/context.ts';
import { imapInput, imapAstring, mailboxPath, tokenText } from '../hooks/imap.ts';
import type { ImapCommandResult, ImapToken } from '../hooks/imap.ts';
import type { UserRecord } from '../storage/ports.ts';

export const QUOTA_PLUGIN = 'quota';

export interface QuotaOptions {
  /** Announce and answer the IMAP QUOTA extension (RFC 9208). */
  imap: boolean;
  /** How long a daily transfer counter lives after its first increment (ms); tests shorten it. */
  transferWindowMs: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

type TransferKind = 'imap-download' | 'imap-upload' | 'pop3-download';

/** The configured limit for one kind of transfer (null = unlimited). */
export function transferLimit(api: Pick<PluginApi, 'config'>, kind: TransferKind): number | null {
  const limits = api.config.users.limits;
  if (kind === 'imap-download') return limits.imapDownloadBytesPerDay;
  if (kind === 'imap-upload') return limits.imapUploadBytesPerDay;
  return limits.pop3DownloadBytesPerDay;
}

/** The ephemeral counter key of a user's transfers of one kind. */
export function transferKey(kind: TransferKind, userId: string): string {
  return `transfer:${kind}:${userId}`;
}

function downloadKind(protocol: string): TransferKind | null {
  return protocol === 'imap' ? 'imap-download' : protocol === 'pop3' ? 'pop3-download' : null;
}

export interface EffectiveQuota {
  storage: { used: number; limit: number | null };
  messages: { used: number; limit: number | null };
}

/** A user's limits as enforced: their own, else the config defaults. */
export function effectiveQuota(api: Pick<PluginApi, 'config'>, user: UserRecord): EffectiveQuota {
  return {
    storage: { used: user.storageUsed, limit: user.quota.storage ?? api.config.users.quota.storage },
    messages: { used: user.messagesUsed, limit: user.quota.messages ?? api.config.users.quota.messages },
  };
}

/** The verdict for adding `addBytes` in `addMessages` messages (undefined = fits). */
export function quotaVerdict(quota: EffectiveQuota, addBytes: number, addMessages: number): Verdict | undefined {
  const { storage, messages } = quota;
  if (storage.limit !== null && (storage.used + addBytes > storage.limit || (addBytes === 0 && storage.used >= storage.limit))) {
    return deny('OVERQUOTA', 'Mailbox is over its storage quota');
  }
  if (messages.limit !== null && messages.used + addMessages > messages.limit) {
    return deny('OVERQUOTA', 'Mailbox is over its message quota');
  }
  return undefined;
}

/** RFC 9208 quota-list for the root "", or null when the user has no limits. STORAGE is in units of 1024 octets. */
export function quotaList(quota: EffectiveQuota): string | null {
  const parts: string[] = [];
  if (quota.storage.limit !== null) parts.push(`STORAGE ${Math.ceil(quota.storage.used / 1024)} ${Math.floor(quota.storage.limit / 1024)}`);
  if (quota.messages.limit !== null) parts.push(`MESSAGE ${quota.messages.used} ${quota.messages.limit}`);
  return parts.length ? `(${parts.join(' ')})` : null;
}

function needsLogin(ctx: HookContext): ImapCommandResult | null {
  return ctx.session.user ? null : { status: 'BAD', text: 'Log in first' };
}

function oneArg(args: unknown, what: string): string | ImapCommandResult {
  const tokens = args as ImapToken[];
  const text = Array.isArray(tokens) && tokens.length === 1 ? tokenText(tokens[0]) : null;
  return text ?? { status: 'BAD', text: `Expected ${what}` };
}

export const quotaPlugin = definePlugin<QuotaOptions>({
  description: 'Storage and message-count quota on every way in, the IMAP QUOTA extension and daily IMAP/POP3 transfer limits (loaded by default)',
  optionsSchema: z.object({ imap: z.boolean(), transferWindowMs: z.number().int().positive() }).strict(),
  defaults: { imap: true, transferWindowMs: DAY_MS },
  create(options) {
    return {
      name: QUOTA_PLUGIN,
      apply(api: PluginApi) {
        const quotaOf = async (userId: string): Promise<EffectiveQuota | null> => {
          const user = await api.storage.users.get(userId);
          return user ? effectiveQuota(api, user) : null;
        };
        const check = async (userId: string, bytes: number, count: number): Promise<Verdict | undefined> => {
          const quota = await quotaOf(userId);
          return quota ? quotaVerdict(quota, bytes, count) : undefined;
        };
        const { message } = api.hooks;
        // The declared size's check leaves a note for the exact size's (same operation): a message that turned out
        // no larger than announced already passed against the same usage, and is not looked up again.
        message.beforeStore.tapPromise({ stage: POLICY, label: 'declared size' }, async (ctx, request) => {
          ctx.data.delete(QUOTA_PLUGIN);
          const verdict = await check(request.userId, request.declaredSize ?? 0, 1);
          if (!verdict && request.declaredSize !== undefined) ctx.data.set(QUOTA_PLUGIN, { userId: request.userId, bytes: request.declaredSize });
          return verdict;
        });
        message.store.tapPromise({ stage: POLICY, label: 'exact size' }, async (ctx, input) => {
          const passed = ctx.data.get(QUOTA_PLUGIN) as { userId: string; bytes: number } | undefined;
          ctx.data.delete(QUOTA_PLUGIN);
          if (passed && passed.userId === input.userId && input.message.size <= passed.bytes) return undefined;
          return check(input.userId, input.message.size, 1);
        });
        message.beforeCopy.tapPromise({ stage: POLICY }, async (_ctx, input) => {
          const wanted = new Set(input.uids);
          let bytes = 0;
          let count = 0;
          for (const entry of await api.storage.messages.index(input.mailboxId)) {
            if (!wanted.has(entry.uid)) continue;
            bytes += entry.size;
            count++;
          }
          return count === 0 ? undefined : check(input.userId, bytes, count);
        });

        // daily transfer limits; `bytes` 0 (size unknown) is refused only when the limit is already reached
        const overLimit = async (kind: TransferKind, userId: string, bytes: number): Promise<Verdict | undefined> => {
          const limit = transferLimit(api, kind);
          if (limit === null) return undefined;
          const used = await api.storage.ephemeral.get(transferKey(kind, userId));
          if (used + bytes > limit || (bytes === 0 && used >= limit)) {
            const what = kind === 'imap-upload' ? 'upload' : 'download';
            return deny('LIMIT', `Daily ${kind.startsWith('imap') ? 'IMAP' : 'POP3'} ${what} limit reached, try again later`);
          }
          return undefined;
        };
        const count = async (kind: TransferKind, userId: string, bytes: number): Promise<void> => {
          if (bytes > 0 && transferLimit(api, kind) !== null) await api.storage.ephemeral.incr(transferKey(kind, userId), bytes, options.transferWindowMs);
        };
        const { transfer } = api.hooks;
        transfer.beforeDownload.tapPromise({ stage: GUARD, label: 'daily download' }, async (_ctx, input) => {
          const kind = downloadKind(input.protocol);
          return kind ? overLimit(kind, input.userId, input.bytes) : undefined;
        });
        transfer.afterDownload.tapPromise({ label: 'daily download' }, async (_ctx, input) => {
          const kind = downloadKind(input.protocol);
          if (kind) await count(kind, input.userId, input.bytes);
        });
        message.beforeStore.tapPromise({ stage: GUARD, label: 'daily upload' }, async (ctx, request) =>
          ctx.session.protocol === 'imap' ? overLimit('imap-upload', request.userId, request.declaredSize ?? 0) : undefined,
        );
        message.afterStore.tapPromise({ label: 'daily upload' }, async (ctx, input) => {
          if (ctx.session.protocol === 'imap') await count('imap-upload', input.userId, input.message.size);
        });

        if (!options.imap) return;
        api.hooks.capabilities.for('imap').tap(QUOTA_PLUGIN, (caps) => [...caps, 'QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE']);
        const command = api.hooks.imap.command;

        command.for('GETQUOTAROOT').tapPromise(QUOTA_PLUGIN, async (ctx, raw) => {
          const input = imapInput(raw);
          const refused = needsLogin(ctx);
          if (refused) return refused;
          const name = oneArg(input.args, 'a mailbox name');
          if (typeof name !== 'string') return name;
          let path: string;
          try {
            path = mailboxPath(name, input.utf8);
          } catch {
            return { status: 'BAD', text: 'Invalid mailbox name' };
          }
          const userId = ctx.session.user!.id;
          if (!(await api.storage.mailboxes.getByPath(userId, path))) return { status: 'NO', code: 'NONEXISTENT', text: 'No such mailbox' };
          const quota = await quotaOf(userId);
          const list = quota ? quotaList(quota) : null;
          const untagged = [`* QUOTAROOT ${imapAstring(name, input.utf8)}${list ? ' ""' : ''}`];
          if (list) untagged.push(`* QUOTA "" ${list}`);
          return { untagged, text: 'GETQUOTAROOT completed' };
        });

        command.for('GETQUOTA').tapPromise(QUOTA_PLUGIN, async (ctx, raw) => {
          const refused = needsLogin(ctx);
          if (refused) return refused;
          const root = oneArg(imapInput(raw).args, 'a quota root');
          if (typeof root !== 'string') return root;
          const quota = await quotaOf(ctx.session.user!.id);
          const list = quota ? quotaList(quota) : null;
          if (root !== '' || !list) return { status: 'NO', code: 'NONEXISTENT', text: 'No such quota root' };
          return { untagged: [`* QUOTA "" ${list}`], text: 'GETQUOTA completed' };
        });

        command.for('SETQUOTA').tap(QUOTA_PLUGIN, (ctx) => needsLogin(ctx) ?? { status: 'NO', code: 'NOPERM', text: 'Quota limits are set by the administrator' });
      },
    };
  },
});

/** The plugin with its defaults, as protocols/app.ts loads it when config doesn't name it. */
export function createQuotaPlugin() {
  return quotaPlugin.create({ imap: true, transferWindowMs: DAY_MS });
}
