/**
 * The storage plugin's commits for the `account.*` do-hooks (plugins/storage.ts calls `tapAccountCommits` at stage
 * COMMIT): users, addresses, application passwords, access tokens, filters, the autoreply and delivery settings.
 * Each turns the validated change (hooks/types.ts) into StoragePorts calls; StorageError codes become verdicts in
 * `port()` as for every other commit.
 */
import type { TapOnlyHooks } from '../hooks/view.ts';
import type { Verdict } from '../hooks/verdict.ts';
import type { AppPasswordResult } from '../hooks/types.ts';
import { StorageError } from '../storage/ports.ts';
import type { StoragePorts, UserDocument, UserRecord } from '../storage/ports.ts';
import { hashPassword } from '../storage/passwords.ts';
import { ASP_KIND, createAppPassword } from '../storage/app-passwords.ts';
import type { AppPasswordData } from '../storage/app-passwords.ts';
import { issueToken, revokeTokens } from '../storage/access-tokens.ts';
import {
  AUTOREPLY_ID,
  AUTOREPLY_KIND,
  FILTER_KIND,
  disableAutoreply,
  filterSchema,
  getAutoreply,
  setAutoreply,
  updateDeliverySettings,
} from '../storage/delivery-settings.ts';
import type { FilterData } from '../storage/delivery-settings.ts';

type Port = <T>(call: () => Promise<T>) => Promise<T | Verdict>;

function missing(what: string): never {
  throw new StorageError('NONEXISTENT', `No such ${what}`);
}

function aspResult(doc: UserDocument<AppPasswordData>, password?: string): AppPasswordResult {
  const { description, scopes, expires } = doc.data;
  return { id: doc.id, description, scopes, expires, ...(password !== undefined ? { password } : {}) };
}

async function userOf(storage: StoragePorts, userId: string | null): Promise<UserRecord> {
  const user = userId === null ? null : await storage.users.get(userId);
  return user ?? missing('user');
}

export function tapAccountCommits(account: TapOnlyHooks['account'], storage: StoragePorts, port: Port, stage: number): void {
  const at = { stage };

  account.user.tapPromise(at, (_ctx, change) =>
    port(async () => {
      switch (change.action) {
        case 'create':
          return storage.users.create({
            username: change.username,
            name: change.name ?? '',
            passwordHash: change.password == null ? null : await hashPassword(change.password),
            quota: change.quota,
            tags: [...(change.tags ?? [])],
          });
        case 'update': {
          const user = await userOf(storage, change.userId);
          return storage.users.update(user.id, { name: change.name, quota: change.quota, tags: change.tags === undefined ? undefined : [...change.tags] });
        }
        case 'password': {
          const user = await userOf(storage, change.userId);
          return storage.users.update(user.id, { passwordHash: change.password == null ? null : await hashPassword(change.password) });
        }
        case 'disable':
        case 'enable': {
          const user = await userOf(storage, change.userId);
          return storage.users.update(user.id, { disabled: change.action === 'disable' });
        }
        case 'delete': {
          const user = await userOf(storage, change.userId);
          await storage.users.delete(user.id);
          return user;
        }
        case 'recalculate':
          return storage.users.recalculateUsage((await userOf(storage, change.userId)).id);
      }
    }),
  );

  account.address.tapPromise(at, (_ctx, change) =>
    port(async () => {
      if (change.action === 'add') return storage.users.addAddress(change.userId, { address: change.address, display: change.display ?? change.address, main: change.main });
      const found = (await storage.users.listAddresses(change.userId)).find((a) => a.id === change.addressId) ?? missing('address');
      if (change.action === 'update') return storage.users.updateAddress(found.id, { display: change.display, main: change.main });
      await storage.users.removeAddress(found.id);
      return found;
    }),
  );

  account.appPassword.tapPromise(at, (_ctx, change) =>
    port(async () => {
      if (change.action === 'create') {
        const { document, password } = await createAppPassword(storage, change.userId, {
          description: change.description ?? '',
          scopes: [...(change.scopes ?? ['*'])],
          password: change.password,
          ttl: change.ttl,
        });
        return aspResult(document, password);
      }
      const doc = (change.appPasswordId === null ? null : await storage.documents.get<AppPasswordData>(change.userId, ASP_KIND, change.appPasswordId)) ?? missing('application password');
      if (!(await storage.documents.delete(change.userId, ASP_KIND, doc.id))) missing('application password');
      return aspResult(doc);
    }),
  );

  account.token.tapPromise(at, (_ctx, change) =>
    port(async () => {
      if (change.action === 'create') {
        const { id, token } = await issueToken(storage, change.userId, { expires: change.expires ?? Date.now(), remoteAddress: change.remoteAddress ?? '' });
        return { ids: [id], token };
      }
      return { ids: await revokeTokens(storage, change.userId, change.tokenId) };
    }),
  );

  account.filter.tapPromise(at, (_ctx, change) =>
    port(async () => {
      if (change.action === 'create') {
        const doc = await storage.documents.put<FilterData>(change.userId, FILTER_KIND, change.filter!);
        return { id: doc.id, filter: doc.data };
      }
      const found = (change.filterId === null ? null : await storage.documents.get(change.userId, FILTER_KIND, change.filterId)) ?? missing('filter');
      if (change.action === 'update') {
        const doc = await storage.documents.put<FilterData>(change.userId, FILTER_KIND, change.filter!, { id: found.id });
        return { id: doc.id, filter: doc.data };
      }
      const parsed = filterSchema.safeParse(found.data);
      if (!(await storage.documents.delete(change.userId, FILTER_KIND, found.id))) missing('filter');
      return { id: found.id, filter: parsed.success ? parsed.data : null };
    }),
  );

  account.autoreply.tapPromise(at, (_ctx, change) =>
    port(async () => {
      switch (change.action) {
        case 'set':
          return { autoreply: await setAutoreply(storage.documents, change.userId, change.autoreply) };
        case 'off':
          await disableAutoreply(storage.documents, change.userId);
          return { autoreply: await getAutoreply(storage.documents, change.userId) };
        case 'delete':
          await storage.documents.delete(change.userId, AUTOREPLY_KIND, AUTOREPLY_ID);
          return { autoreply: null };
      }
    }),
  );

  account.settings.tapPromise(at, (_ctx, change) =>
    port(() =>
      updateDeliverySettings(storage.documents, change.userId, {
        ...(change.changes.forward !== undefined ? { forward: [...change.changes.forward] } : {}),
        ...(change.changes.spamLevel !== undefined ? { spamLevel: change.changes.spamLevel } : {}),
      }),
    ),
  );
}
