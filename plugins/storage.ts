/**
 * Storage as a plugin: the committer. It taps every `do` hook at stage COMMIT (the `account.*` ones in
 * plugins/storage-account.ts) and calls the StoragePorts, so
 * every rule at an earlier stage has had its say before anything is written. `StorageError` codes become
 * verdicts with the same code (`UNAVAILABLE` a tempfail, the others deny); anything else thrown is left to
 * the interceptor (logged, tempfail SERVERBUG).
 *
 * The host always loads it, last, for the backend named by `config.storage.backend`.
 */
import type { Plugin, PluginApi } from '../hooks/host.ts';
import { COMMIT } from '../hooks/stages.ts';
import { deny, isVerdict, tempfail } from '../hooks/verdict.ts';
import type { Verdict } from '../hooks/verdict.ts';
import { StorageError } from '../storage/ports.ts';
import { clientNetwork } from './client-address.ts';
import { tapAccountCommits } from './storage-account.ts';
import { dropSubscription, keepSubscription } from '../storage/subscriptions.ts';
import type { StoragePorts, UserRecord } from '../storage/ports.ts';

/**
 * Checks a login (username or address) and password; null when they don't match or the user is disabled.
 * The composition root binds storage/users.ts `checkCredentials` (scrypt, timing-safe for unknown logins) with
 * the server's password-check queue; `client` (the client's network) is that queue's fairness key.
 */
export type CheckCredentials = (login: string, password: string, scope?: string, client?: string) => Promise<UserRecord | null>;

/**
 * The scope a login asks for: the request's own (HTTP `POST /authenticate`), else the session's protocol
 * (imap, pop3, smtp), else 'master'. Application-specific passwords are accepted only for their scopes.
 */
function loginScope(protocol: string, requested: string | undefined): string {
  if (requested) return requested;
  return protocol === 'imap' || protocol === 'pop3' || protocol === 'smtp' ? protocol : 'master';
}

export interface StoragePluginOptions {
  /** The full (writable) ports; the plugin is the only one that writes through hooks. */
  storage: StoragePorts;
  checkCredentials: CheckCredentials;
  /** config.storage.backend, shown in logs. */
  backend?: string;
}

export const STORAGE_PLUGIN = 'storage';

/** Runs a port call; StorageError becomes a verdict, anything else is rethrown for the interceptor. */
async function port<T>(call: () => Promise<T>): Promise<T | Verdict> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StorageError) return err.code === 'UNAVAILABLE' ? tempfail('UNAVAILABLE', err.message) : deny(err.code, err.message);
    throw err;
  }
}

export function createStoragePlugin(options: StoragePluginOptions): Plugin {
  const { storage, checkCredentials } = options;
  return {
    name: STORAGE_PLUGIN,
    apply(api: PluginApi) {
      const at = { stage: COMMIT };
      const { auth, mailbox, message } = api.hooks;
      api.log.debug('storage plugin committing to backend', { backend: options.backend ?? storage.name });

      auth.authenticate.tapPromise(at, async (ctx, input) => {
        const user = await port(() => checkCredentials(input.username, input.password, loginScope(ctx.session.protocol, input.scope), clientNetwork(ctx.session.remoteAddress) ?? ''));
        if (isVerdict(user)) return user;
        return user ?? deny('AUTHENTICATIONFAILED', 'Invalid login or password');
      });

      mailbox.create.tapPromise(at, (_ctx, input) =>
        port(async () => {
          const created = await storage.mailboxes.create(input.userId, { path: input.path, specialUse: input.specialUse ?? null, subscribed: input.subscribed ?? true });
          // a subscription kept when a mailbox of this name was deleted belongs to the new one
          if ((await dropSubscription(storage, input.userId, created.path)) && !created.subscribed) {
            await storage.mailboxes.setSubscribed(created.id, true);
            return { ...created, subscribed: true };
          }
          return created;
        }),
      );
      mailbox.rename.tapPromise(at, (_ctx, input) => port(() => storage.mailboxes.rename(input.userId, input.fromPath, input.toPath)));
      mailbox.delete.tapPromise(at, (_ctx, input) =>
        port(async () => {
          const box = await storage.mailboxes.get(input.mailboxId);
          if (!box || box.userId !== input.userId) throw new StorageError('NONEXISTENT', 'No such mailbox');
          await storage.mailboxes.delete(box.id);
          // RFC 3501 §6.3.6: the subscription outlives the mailbox
          if (box.subscribed) await keepSubscription(storage, box.userId, box.path);
          return box;
        }),
      );
      mailbox.subscribe.tapPromise(at, (_ctx, input) =>
        port(async () => {
          if (input.mailboxId === null) {
            // a name without a mailbox: only a kept subscription can be removed
            if (input.subscribed || input.path === undefined) throw new StorageError('NONEXISTENT', 'No such mailbox');
            await dropSubscription(storage, input.userId, input.path);
            return { mailboxId: null, subscribed: false };
          }
          await storage.mailboxes.setSubscribed(input.mailboxId, input.subscribed);
          return { mailboxId: input.mailboxId, subscribed: input.subscribed };
        }),
      );

      message.store.tapPromise(at, (_ctx, input) => port(() => storage.messages.append(input)));
      message.copy.tapPromise(at, (_ctx, input) => port(() => storage.messages.copy(input.mailboxId, input.uids, input.targetMailboxId)));
      message.move.tapPromise(at, (_ctx, input) => port(() => storage.messages.move(input.mailboxId, input.uids, input.targetMailboxId)));
      message.expunge.tapPromise(at, (_ctx, input) => port(async () => ({ uids: await storage.messages.expunge(input.mailboxId, input.uids) })));
      message.flags.tapPromise(at, (_ctx, input) => port(() => storage.messages.setFlags(input.mailboxId, input.uids, input.update)));

      // users, addresses, application passwords, tokens, filters, autoreply, delivery settings
      tapAccountCommits(api.hooks.account, storage, port, COMMIT);
    },
  };
}
