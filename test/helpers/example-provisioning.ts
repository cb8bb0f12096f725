/**
 * The account worked example from plugins/README.md (kept here so the guide's code is compiled and tested): a
 * "provisioning" plugin. Every account change, from the HTTP API or the `wildduck` CLI alike, is appended to a
 * ledger file a billing system reads (one JSON line each), and addresses on blocked domains are refused, whether
 * added on their own or with a new user.
 */
import { appendFile } from 'node:fs/promises';
import { z } from 'zod';
import { definePlugin, deny, OBSERVE, POLICY } from '../../hooks/index.ts';

export const provisioning = definePlugin({
  description: 'Records account changes in a ledger file; refuses addresses on blocked domains',
  optionsSchema: z.object({
    ledger: z.string().min(1),
    blockedDomains: z.array(z.string().min(1)),
  }),
  defaults: { blockedDomains: [] },
  create(options) {
    const blocked = new Set(options.blockedDomains.map((d) => d.toLowerCase()));
    const record = (entry: Record<string, unknown>) => appendFile(options.ledger, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
    return {
      name: 'provisioning',
      apply(api) {
        // Every new address passes here: POST /users/:user/addresses, POST /users, `wildduck user add --address`.
        api.hooks.account.beforeAddress.tap({ stage: POLICY }, (_ctx, change) => {
          if (change.action !== 'add' || !blocked.has(change.domain)) return undefined; // no opinion
          return deny('DOMAINBLOCKED', `Addresses on ${change.domain} are not allowed`);
        });

        // After-hooks see committed changes only (a refused one never shows up here), without secrets.
        const at = { stage: OBSERVE };
        const { account } = api.hooks;
        account.afterUser.tapPromise(at, (_ctx, change, user) => record({ kind: 'user', action: change.action, userId: user.id, username: user.username }));
        account.afterAddress.tapPromise(at, (_ctx, change, address) => record({ kind: 'address', action: change.action, userId: change.userId, address: address.address }));
        account.afterAppPassword.tapPromise(at, (_ctx, change, asp) => record({ kind: 'appPassword', action: change.action, userId: change.userId, id: asp.id }));
        account.afterToken.tapPromise(at, (_ctx, change) => record({ kind: 'token', action: change.action, userId: change.userId }));
        account.afterFilter.tapPromise(at, (_ctx, change, filter) => record({ kind: 'filter', action: change.action, userId: change.userId, id: filter.id }));
        account.afterAutoreply.tapPromise(at, (_ctx, change) => record({ kind: 'autoreply', action: change.action, userId: change.userId }));
        account.afterSettings.tapPromise(at, (_ctx, change) => record({ kind: 'settings', action: change.action, userId: change.userId, changed: Object.keys(change.changes) }));
      },
    };
  },
});
