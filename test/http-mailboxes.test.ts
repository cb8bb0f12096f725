/** HTTP API mailboxes over real HTTP: list with counters, create, read/resolve, rename, subscribe, delete. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { internalContext } from '../hooks/context.ts';
import type { Plugin } from '../hooks/host.ts';
import { deny } from '../hooks/verdict.ts';

const guard: Plugin = {
  name: 'test-mailbox-guard',
  apply(api) {
    api.hooks.mailbox.beforeCreate.tap({}, (_ctx, input) => (input.path.startsWith('Forbidden') ? deny('NOPERM', 'Not this name') : undefined));
  },
};

describe('HTTP API: mailboxes', () => {
  let t: HttpTestApp;
  let user: string;
  const path = (p: string) => `/users/${user}/mailboxes${p}`;
  const byPath = async (p: string) => (await t.request('GET', path(`/resolve?path=${encodeURIComponent(p)}`))).body;

  before(async () => {
    t = await bootHttpTestApp({ plugins: [guard] });
    user = (await t.request('POST', '/users', { body: { username: 'kim', password: 'x1' } })).body.id;
    const inbox = (await t.app.storage.mailboxes.getByPath(user, 'INBOX'))!;
    const ctx = internalContext(t.app.log, { id: user, username: 'kim' });
    const msg = (s: string) => new TextEncoder().encode(`From: a@example.com\r\nSubject: ${s}\r\n\r\nHello\r\n`);
    await storeMessage(t.app, ctx, { userId: user, mailboxId: inbox.id, flags: ['\\Seen'], internalDate: Date.now(), source: msg('one') });
    await storeMessage(t.app, ctx, { userId: user, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source: msg('two') });
  });
  after(() => t.close());

  it('lists mailboxes with special use, subscription and, on request, counters and sizes', async () => {
    const plain = (await t.request('GET', path(''))).body.results;
    assert.equal(plain[0].path, 'INBOX');
    assert.equal(plain[0].total, undefined);
    const sent = plain.find((b: { path: string }) => b.path === 'Sent Mail');
    assert.equal(sent.specialUse, '\\Sent');
    assert.equal(sent.subscribed, true);
    assert.equal(sent.name, 'Sent Mail');
    const counted = (await t.request('GET', path('?counters=true&sizes=true'))).body.results;
    assert.equal(counted[0].total, 2);
    assert.equal(counted[0].unseen, 1);
    assert.ok(counted[0].size > 0);
    const special = (await t.request('GET', path('?specialUse=true'))).body.results;
    assert.deepEqual(special.map((b: { path: string }) => b.path), ['INBOX', 'Drafts', 'Junk', 'Sent Mail', 'Trash']);
    assert.equal((await t.request('GET', path('?counters=maybe'))).status, 400);
  });

  it('creates mailboxes with their parents, refusing duplicates, bad paths and plugin vetoes', async () => {
    const made = await t.request('POST', path(''), { body: { path: 'Projects/2024/Q1' } });
    assert.equal(made.status, 200);
    assert.equal((await byPath('Projects/2024/Q1')).id, made.body.id);
    assert.equal((await byPath('Projects')).path, 'Projects');
    const again = await t.request('POST', path(''), { body: { path: 'Projects/2024/Q1' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'ALREADYEXISTS');
    assert.equal((await t.request('POST', path(''), { body: { path: 'inbox' } })).status, 409);
    const empty = await t.request('POST', path(''), { body: { path: 'a//b' } });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.details[0].path, 'body.path');
    const vetoed = await t.request('POST', path(''), { body: { path: 'Forbidden' } });
    assert.equal(vetoed.status, 403);
    assert.equal(vetoed.body.code, 'NOPERM');
  });

  it('reads one mailbox with counters, by id or by path', async () => {
    const inbox = await byPath('INBOX');
    assert.equal(inbox.total, 2);
    assert.equal(inbox.unseen, 1);
    const byId = (await t.request('GET', path(`/${inbox.id}`))).body;
    assert.equal(byId.path, 'INBOX');
    const missing = await t.request('GET', path('/0000000000000000000f423f'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NoSuchMailbox');
    assert.equal((await t.request('GET', path('/resolve?path=Nope'))).status, 404);
  });

  it('renames a mailbox with its children and changes subscriptions', async () => {
    const projects = await byPath('Projects');
    assert.equal((await t.request('PUT', path(`/${projects.id}`), { body: { path: 'Work/Projects', subscribed: false } })).status, 200);
    const moved = await byPath('Work/Projects/2024/Q1');
    assert.equal(moved.path, 'Work/Projects/2024/Q1');
    assert.equal((await byPath('Work/Projects')).subscribed, false);
    assert.equal((await t.request('GET', path('/resolve?path=Projects'))).status, 404);
    const inbox = await byPath('INBOX');
    const renameInbox = await t.request('PUT', path(`/${inbox.id}`), { body: { path: 'Old' } });
    assert.equal(renameInbox.status, 403);
    assert.equal(renameInbox.body.code, 'CANNOT');
    const trash = await byPath('Trash');
    assert.equal((await t.request('PUT', path(`/${trash.id}`), { body: { path: 'Junk' } })).status, 409);
    const work = await byPath('Work');
    assert.equal((await t.request('PUT', path(`/${work.id}`), { body: { path: 'Work/Inner' } })).status, 403);
  });

  it('deletes mailboxes, never INBOX, special-use ones only with force', async () => {
    const q1 = await byPath('Work/Projects/2024/Q1');
    assert.deepEqual((await t.request('DELETE', path(`/${q1.id}`))).body, { success: true });
    assert.equal((await t.request('GET', path(`/${q1.id}`))).status, 404);
    assert.equal((await t.request('DELETE', path(`/${q1.id}`))).status, 404);
    const inbox = await byPath('INBOX');
    assert.equal((await t.request('DELETE', path(`/${inbox.id}?force=true`))).body.code, 'CANNOT');
    const junk = await byPath('Junk');
    const refused = await t.request('DELETE', path(`/${junk.id}`));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'CANNOT');
    assert.equal((await t.request('DELETE', path(`/${junk.id}?force=true`))).status, 200);
  });

  it("keeps one user's mailboxes out of another's paths", async () => {
    const other = (await t.request('POST', '/users', { body: { username: 'lee', password: 'x1' } })).body.id;
    const theirs = (await t.request('GET', `/users/${other}/mailboxes`)).body.results[0].id;
    assert.equal((await t.request('GET', path(`/${theirs}`))).status, 404);
    assert.equal((await t.request('DELETE', path(`/${theirs}`))).status, 404);
    assert.equal((await t.request('PUT', path(`/${theirs}`), { body: { subscribed: false } })).status, 404);
  });
});
