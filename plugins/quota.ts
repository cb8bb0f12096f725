/**
 * Quota: refuses a store or copy that would take the user over their storage or message-count quota (the user's
 * own limits, else `users.quota` from config; null = unlimited). It taps `message.beforeStore` and
 * `message.beforeCopy` at POLICY, so it holds for IMAP APPEND/COPY, LMTP delivery (where it becomes
 * `452 4.2.2`) and HTTP alike. A store checks the announced size (`declaredSize`); messages without one are
 * checked by count and by whether the user is already at the limit.
 */
import { definePlugin } from '../hooks/host.ts';
import { POLICY } from '../hooks/stages.ts';
import { deny } from '../hooks/verdict.ts';
import type { Verdict } from '../hooks/verdict.ts';
import type { PluginApi } from '../hooks/host.ts';

export const QUOTA_PLUGIN = 'quota';

async function check(api: PluginApi, userId: string, addBytes: number, addMessages: number): Promise<Verdict | undefined> {
  const user = await api.storage.users.get(userId);
  if (!user) return undefined;
  const storage = user.quota.storage ?? api.config.users.quota.storage;
  const messages = user.quota.messages ?? api.config.users.quota.messages;
  if (storage !== null && (user.storageUsed + addBytes > storage || (addBytes === 0 && user.storageUsed >= storage))) {
    return deny('OVERQUOTA', 'Mailbox is over its storage quota');
  }
  if (messages !== null && user.messagesUsed + addMessages > messages) {
    return deny('OVERQUOTA', 'Mailbox is over its message quota');
  }
  return undefined;
}

export const quotaPlugin = definePlugin({
  description: 'Refuses stores and copies that would exceed the user storage or message quota',
  create() {
    return {
      name: QUOTA_PLUGIN,
      apply(api: PluginApi) {
        api.hooks.message.beforeStore.tapPromise({ stage: POLICY }, (_ctx, request) => check(api, request.userId, request.declaredSize ?? 0, 1));
        api.hooks.message.beforeCopy.tapPromise({ stage: POLICY }, async (_ctx, input) => {
          const wanted = new Set(input.uids);
          let bytes = 0;
          let count = 0;
          for (const entry of await api.storage.messages.index(input.mailboxId)) {
            if (!wanted.has(entry.uid)) continue;
            bytes += entry.size;
            count++;
          }
          return check(api, input.userId, bytes, count);
        });
      },
    };
  },
});
