/**
 * The account hook domain end to end: a plugin (the plugin guide's provisioning example) refuses one domain and
 * records every account event. Over the HTTP API and over the `wildduck` CLI (a child process booting the app from
 * a wildduck.config.ts), a refused change is answered with the plugin's code and writes nothing, and each kind of
 * write leaves its record: user create / update / password / disable / enable / recalculate / delete, address add /
 * delete, application password create / delete, token create / delete, filter create / update / delete, autoreply,
 * forwarding and the spam level (settings). After-hooks never see clear passwords or generated secrets.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { runTs } from './helpers/spawn-ts.ts';
import { provisioning } from './helpers/example-provisioning.ts';
import type { Plugin } from '../hooks/host.ts';
import { deny } from '../hooks/verdict.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);
const CONFIG = new URL('../hooks/config.ts', import.meta.url).href;
const EXAMPLE = new URL('./helpers/example-provisioning.ts', import.meta.url).href;

/** Reads the ledger's records written since the last call, as "kind action" strings (plus the records). */
function ledgerReader(file: string) {
  let seen = 0;
  return () => {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    const fresh = lines.slice(seen).map((l) => JSON.parse(l) as Record<string, unknown>);
    seen = lines.length;
    return { events: fresh.map((r) => `${r.kind} ${r.action}`), records: fresh };
  };
}

describe('account hooks', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wd-account-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('over HTTP', () => {
    let t: HttpTestApp;
    let read: ReturnType<typeof ledgerReader>;
    const seenByObservers: unknown[] = [];

    before(async () => {
      const ledger = join(dir, 'http-ledger.jsonl');
      read = ledgerReader(ledger);
      // what after-hooks get, whole, to check that no secret reaches them
      const spy: Plugin = {
        name: 'spy',
        apply(api) {
          api.hooks.account.afterUser.tap('spy', (_ctx, change, user) => void seenByObservers.push(change, user.username));
          api.hooks.account.afterAppPassword.tap('spy', (_ctx, change, result) => void seenByObservers.push(change, result));
          api.hooks.account.afterToken.tap('spy', (_ctx, change, result) => void seenByObservers.push(change, result));
        },
      };
      // a plugin that gives every new user a shared folder, through the mailbox pipeline
      const sharedFolder: Plugin = {
        name: 'shared-folder',
        apply(api) {
          api.hooks.account.afterUser.tapPromise('shared-folder', async (ctx, change, user) => {
            if (change.action !== 'create') return;
            const made = await api.pipeline.createMailbox(ctx, { userId: user.id, path: 'Shared' });
            if (!made.ok) ctx.log.warn('no shared folder', { code: made.verdict.code });
          });
        },
      };
      t = await bootHttpTestApp({ plugins: [provisioning.create({ ledger, blockedDomains: ['blocked.example'] }), spy, sharedFolder] });
    });
    after(() => t.close());

    it('refuses the blocked domain with the plugin code and records every kind of write', { timeout: 60_000 }, async () => {
      // refused: a new user with an address on the blocked domain; nothing of it stays
      let r = await t.request('POST', '/users', { body: { username: 'ann', password: 'first secret', address: 'ann@Blocked.example' } });
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'DOMAINBLOCKED');
      assert.match(r.body.error, /blocked\.example are not allowed/);
      assert.equal((await t.request('GET', '/users/resolve/ann')).status, 404);
      assert.deepEqual(read().events, []);

      r = await t.request('POST', '/users', { body: { username: 'ann', password: 'first secret', address: 'ann@ok.example' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const user = r.body.id as string;
      const created = read();
      assert.deepEqual(created.events, ['user create', 'address add']);
      assert.equal(created.records[0]!.username, 'ann');
      assert.equal(created.records[1]!.address, 'ann@ok.example');
      const boxes = (await t.request('GET', `/users/${user}/mailboxes`)).body.results.map((m: { path: string }) => m.path);
      assert.ok(boxes.includes('INBOX') && boxes.includes('Shared'), boxes.join(', '));

      // refused: an address on the blocked domain for an existing user
      r = await t.request('POST', `/users/${user}/addresses`, { body: { address: 'sales@blocked.example' } });
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'DOMAINBLOCKED');
      assert.deepEqual((await t.request('GET', `/users/${user}/addresses`)).body.results.map((a: { address: string }) => a.address), ['ann@ok.example']);
      assert.deepEqual(read().events, []);

      r = await t.request('POST', `/users/${user}/addresses`, { body: { address: 'sales@ok.example' } });
      assert.equal(r.status, 200);
      assert.equal((await t.request('DELETE', `/users/${user}/addresses/${r.body.id}`)).status, 200);
      assert.deepEqual(read().events, ['address add', 'address delete']);

      assert.equal((await t.request('PUT', `/users/${user}`, { body: { name: 'Ann' } })).status, 200);
      assert.equal((await t.request('PUT', `/users/${user}`, { body: { password: 'second secret' } })).status, 200);
      assert.equal((await t.request('PUT', `/users/${user}`, { body: { disabled: true } })).status, 200);
      assert.equal((await t.request('PUT', `/users/${user}`, { body: { disabled: false } })).status, 200);
      assert.deepEqual(read().events, ['user update', 'user password', 'user disable', 'user enable']);

      r = await t.request('POST', `/users/${user}/asps`, { body: { description: 'phone', scopes: ['imap'] } });
      assert.equal(r.status, 200);
      const aspPassword = r.body.password as string;
      assert.match(aspPassword, /^[a-z]{16}$/);
      assert.equal((await t.request('DELETE', `/users/${user}/asps/${r.body.id}`)).status, 200);
      assert.deepEqual(read().events, ['appPassword create', 'appPassword delete']);

      r = await t.request('POST', '/authenticate', { body: { username: 'ann', password: 'second secret', token: true } });
      assert.equal(r.status, 200);
      const token = r.body.token as string;
      assert.equal((await t.request('GET', `/users/${user}`, { token })).status, 200);
      assert.equal((await t.request('DELETE', '/authenticate', { token })).status, 200);
      assert.equal((await t.request('GET', `/users/${user}`, { token })).status, 401);
      assert.deepEqual(read().events, ['token create', 'token delete']);

      r = await t.request('POST', `/users/${user}/filters`, { body: { query: { from: 'boss' }, action: { seen: true } } });
      assert.equal(r.status, 200);
      const filter = r.body.id as string;
      assert.equal((await t.request('PUT', `/users/${user}/filters/${filter}`, { body: { disabled: true } })).status, 200);
      assert.equal((await t.request('DELETE', `/users/${user}/filters/${filter}`)).status, 200);
      assert.deepEqual(read().events, ['filter create', 'filter update', 'filter delete']);

      assert.equal((await t.request('PUT', `/users/${user}/autoreply`, { body: { subject: 'Away', text: 'Back soon' } })).status, 200);
      assert.equal((await t.request('DELETE', `/users/${user}/autoreply`)).status, 200);
      assert.deepEqual(read().events, ['autoreply set', 'autoreply delete']);

      assert.equal((await t.request('PUT', `/users/${user}`, { body: { targets: ['ann@elsewhere.example'] } })).status, 200);
      assert.equal((await t.request('PUT', `/users/${user}`, { body: { spamLevel: 20 } })).status, 200);
      const settings = read();
      assert.deepEqual(settings.events, ['settings update', 'settings update']);
      assert.deepEqual(settings.records.map((s) => s.changed), [['forward'], ['spamLevel']]);

      assert.equal((await t.request('DELETE', `/users/${user}`)).status, 200);
      assert.deepEqual(read().events, ['user delete']);

      // observers saw the changes, never the secrets
      const shown = JSON.stringify(seenByObservers);
      assert.ok(seenByObservers.length > 0);
      for (const secret of ['first secret', 'second secret', aspPassword, token]) assert.ok(!shown.includes(secret), `after-hooks saw ${secret}`);
      assert.ok(!shown.includes('scrypt'), 'after-hooks saw no password hash');
    });
  });

  describe('refusals part way through creating a user', () => {
    let t: HttpTestApp;
    const events: string[] = [];

    before(async () => {
      const gate: Plugin = {
        name: 'gate',
        apply(api) {
          const { account, mailbox } = api.hooks;
          account.beforeUser.tap('gate', (_ctx, change) => (change.action === 'create' && change.username.startsWith('x') ? deny('NOPERM', 'No x users') : undefined));
          mailbox.beforeCreate.tapPromise('gate', async (_ctx, input) =>
            input.path === 'Trash' && (await api.storage.users.get(input.userId))?.username === 'tess' ? deny('CANNOT', 'No trash for tess') : undefined,
          );
          account.beforeSettings.tap('gate', (_ctx, change) => (change.changes.forward?.some((a) => a.endsWith('@gone.example')) ? deny('NOPERM', 'Not there') : undefined));
          account.afterUser.tap('gate', (_ctx, change, user) => void events.push(`${change.action} ${user.username}`));
        },
      };
      t = await bootHttpTestApp({ plugins: [gate] }); // the default mailbox names: Drafts, Sent Mail, Trash, Junk
    });
    after(() => t.close());

    it('leaves no user behind when a user, mailbox or settings hook refuses', { timeout: 60_000 }, async () => {
      let r = await t.request('POST', '/users', { body: { username: 'xavier', password: 'pw' } });
      assert.deepEqual([r.status, r.body.code, r.body.error], [403, 'NOPERM', 'No x users'], JSON.stringify(r.body));

      // the user is committed, then its default mailboxes pass mailbox.beforeCreate: Trash is refused
      r = await t.request('POST', '/users', { body: { username: 'tess', password: 'pw', address: 'tess@ok.example' } });
      assert.deepEqual([r.status, r.body.code], [403, 'CANNOT']);
      assert.equal((await t.request('GET', '/users/resolve/tess')).status, 404);
      assert.equal((await t.request('GET', '/addresses/resolve/tess@ok.example')).status, 404);

      // a user whose forwarding target is refused is removed again (observers see it come and go)
      r = await t.request('POST', '/users', { body: { username: 'fred', password: 'pw', targets: ['fred@gone.example'] } });
      assert.deepEqual([r.status, r.body.code], [403, 'NOPERM']);
      assert.equal((await t.request('GET', '/users/resolve/fred')).status, 404);
      assert.deepEqual(events, ['create fred', 'delete fred']);
    });
  });

  describe('over the CLI', () => {
    // a dozen CLI processes, each booting the app: slow on a loaded machine
    it('refuses the blocked domain (reason, code, exit 1) and records every kind of write', { timeout: 600_000 }, async () => {
      const home = join(dir, 'cli');
      const ledger = join(dir, 'cli-ledger.jsonl');
      const read = ledgerReader(ledger);
      rmSync(home, { recursive: true, force: true });
      mkdirSync(home, { recursive: true });
      writeFileSync(
        join(home, 'wildduck.config.ts'),
        `import { defineConfig } from ${JSON.stringify(CONFIG)};
import { provisioning } from ${JSON.stringify(EXAMPLE)};
export default defineConfig({ plugins: [provisioning.create({ ledger: ${JSON.stringify(ledger)}, blockedDomains: ['blocked.example'] })] });
`,
      );
      const env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(home, 'data'), WILDDUCK_LOG_FORMAT: 'json' };
      const cli = async (...args: string[]) => runTs(CLI, args, { cwd: home, env });
      const ok = async (...args: string[]) => {
        const r = await cli(...args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };

      const refused = await cli('user', 'add', 'bob', '--password', 'pw', '--address', 'bob@blocked.example');
      assert.equal(refused.code, 1, refused.stderr);
      assert.equal(refused.stderr, 'wildduck: Addresses on blocked.example are not allowed (DOMAINBLOCKED)\n');
      assert.deepEqual(read().events, []);

      // bob was not kept: adding him again works (a taken name would be refused)
      await ok('user', 'add', 'bob', '--password', 'pw', '--address', 'bob@ok.example');
      assert.deepEqual(read().events, ['user create', 'address add']);

      await ok('user', 'passwd', 'bob', '--password', 'new password');
      await ok('quota', 'set', 'bob', '--storage', '100000');
      await ok('quota', 'recalc', 'bob');
      assert.deepEqual(read().events, ['user password', 'user update', 'user recalculate']);

      const added = await ok('filter', 'add', 'bob', '--subject', 'invoice', '--seen');
      const filter = /added filter (\S+)/.exec(added)![1]!;
      await ok('filter', 'del', 'bob', filter);
      assert.deepEqual(read().events, ['filter create', 'filter delete']);

      await ok('autoreply', 'set', 'bob', '--subject', 'Away', '--text', 'Back soon');
      await ok('autoreply', 'off', 'bob');
      assert.deepEqual(read().events, ['autoreply set', 'autoreply off']);

      await ok('forward', 'set', 'bob', 'bob@elsewhere.example');
      await ok('spam-level', 'bob', '30');
      const settings = read();
      assert.deepEqual(settings.events, ['settings update', 'settings update']);
      assert.deepEqual(settings.records.map((s) => s.changed), [['forward'], ['spamLevel']]);

      await ok('user', 'del', 'bob');
      assert.deepEqual(read().events, ['user delete']);
    });
  });
});
