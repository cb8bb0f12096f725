/**
 * `wildduck quota ...`: per-user quota overrides and counter repair (plugins/quota.ts enforces them).
 *
 *   wildduck quota show NAME
 *   wildduck quota set NAME [--storage BYTES|default] [--messages N|default]
 *   wildduck quota recalc [NAME]          recount usage from the stored messages (all users without NAME)
 *
 * `set` and `recalc` pass the account pipeline (`account.user` with action 'update' / 'recalculate'); `show` reads.
 */
import type { Config } from '../../hooks/config.ts';
import { changeUser } from '../../hooks/pipeline/index.ts';
import type { StoragePorts, UserRecord } from '../../storage/ports.ts';
import { findUser } from '../../storage/users.ts';
import { valueOf } from './boot-app.ts';
import type { CliApp } from './boot-app.ts';

export const QUOTA_USAGE = `  wildduck quota show NAME
  wildduck quota set NAME [--storage BYTES|default] [--messages N|default]
  wildduck quota recalc [NAME]`;

export const QUOTA_OPTIONS = {
  storage: { type: 'string' },
  messages: { type: 'string' },
} as const;

export class QuotaUsageError extends Error {}

function limit(value: unknown, what: string): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'default' || value === 'none') return null;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isInteger(n) || n < 0) throw new QuotaUsageError(`--${what} must be a whole number or "default"`);
  return n;
}

function describe(config: Config, user: UserRecord): string {
  const storage = user.quota.storage ?? config.users.quota.storage;
  const messages = user.quota.messages ?? config.users.quota.messages;
  const source = (own: number | null) => (own === null ? ' (default)' : '');
  return (
    `${user.username}\tstorage ${user.storageUsed}/${storage ?? 'unlimited'} bytes${source(user.quota.storage)}` +
    `\tmessages ${user.messagesUsed}/${messages ?? 'unlimited'}${source(user.quota.messages)}\n`
  );
}

async function user(storage: StoragePorts, name: string | undefined): Promise<UserRecord> {
  if (!name) throw new QuotaUsageError('a user NAME is required');
  const found = await findUser(storage, name);
  if (!found) throw new QuotaUsageError(`no such user "${name}"`);
  return found;
}

/** Runs one quota subcommand; output goes to `out`. */
export async function quotaCommand({ app, ctx }: CliApp, args: string[], values: Record<string, unknown>, out: (text: string) => void): Promise<void> {
  const { storage, config } = app;
  const [sub, name] = args;
  switch (sub) {
    case 'show':
      out(describe(config, await user(storage, name)));
      return;
    case 'set': {
      const target = await user(storage, name);
      const quota: { storage?: number | null; messages?: number | null } = {};
      const s = limit(values.storage, 'storage');
      const m = limit(values.messages, 'messages');
      if (s !== undefined) quota.storage = s;
      if (m !== undefined) quota.messages = m;
      if (s === undefined && m === undefined) throw new QuotaUsageError('quota set needs --storage and/or --messages');
      out(describe(config, valueOf(await changeUser(app, ctx, target.id, { action: 'update', quota }))));
      return;
    }
    case 'recalc': {
      const targets: UserRecord[] = [];
      if (name) targets.push(await user(storage, name));
      else {
        let cursor: string | null = null;
        do {
          const page = await storage.users.list({ limit: 250, cursor });
          targets.push(...page.items);
          cursor = page.next;
        } while (cursor);
      }
      for (const before of targets) {
        const after = valueOf(await changeUser(app, ctx, before.id, { action: 'recalculate' }));
        const changed = after.storageUsed !== before.storageUsed || after.messagesUsed !== before.messagesUsed;
        out(
          `${after.username}\t${after.storageUsed} bytes\t${after.messagesUsed} messages` +
            (changed ? `\trepaired (was ${before.storageUsed} bytes, ${before.messagesUsed} messages)` : '\tok') +
            '\n',
        );
      }
      return;
    }
    default:
      throw new QuotaUsageError(`unknown quota command "${sub ?? ''}"`);
  }
}
