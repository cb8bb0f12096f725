/** HTTP API filters and autoreply over real HTTP: CRUD, validation, and a filter created over HTTP applied at delivery. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { deliverMessage, resolveRecipient } from '../hooks/pipeline/index.ts';
import { internalContext } from '../hooks/context.ts';

describe('HTTP API: filters and autoreply', () => {
  let t: HttpTestApp;
  let user: string;
  let archive: string;
  const f = (p = '') => `/users/${user}/filters${p}`;

  before(async () => {
    t = await bootHttpTestApp();
    user = (await t.request('POST', '/users', { body: { username: 'kim@example.com', password: 'x1' } })).body.id;
    archive = (await t.request('POST', `/users/${user}/mailboxes`, { body: { path: 'Archive/Lists' } })).body.id;
  });
  after(() => t.close());

  it('creates, lists, reads, changes and deletes filters', async () => {
    const made = await t.request('POST', f(), { body: { name: 'lists', query: { listId: 'announce', size: -5000 }, action: { mailbox: archive, seen: true } } });
    assert.equal(made.status, 200);
    const list = (await t.request('GET', f())).body.results;
    assert.equal(list.length, 1);
    assert.equal(list[0].id, made.body.id);
    assert.deepEqual(list[0].query, [['listId', 'announce'], ['size', -5000]]);
    assert.deepEqual(list[0].originalAction, { mailbox: archive, seen: true });
    assert.equal(list[0].disabled, false);
    const one = (await t.request('GET', f(`/${made.body.id}`))).body;
    assert.deepEqual(one.query, { listId: 'announce', size: -5000 });
    assert.equal(one.name, 'lists');
    assert.equal((await t.request('PUT', f(`/${made.body.id}`), { body: { disabled: true, action: { flag: true } } })).status, 200);
    const changed = (await t.request('GET', f(`/${made.body.id}`))).body;
    assert.deepEqual([changed.disabled, changed.action, changed.query.listId], [true, { flag: true }, 'announce']);
    assert.deepEqual((await t.request('DELETE', f(`/${made.body.id}`))).body, { success: true });
    assert.equal((await t.request('GET', f(`/${made.body.id}`))).body.code, 'FilterNotFound');
    assert.equal((await t.request('DELETE', f(`/${made.body.id}`))).status, 404);
    assert.equal((await t.request('PUT', f('/0000000000000000000f423f'), { body: { disabled: true } })).status, 404);
    assert.equal((await t.request('PUT', f('/nope'), { body: { disabled: true } })).status, 400);
  });

  it('refuses filters without conditions or actions, unknown fields and foreign mailboxes', async () => {
    const empty = await t.request('POST', f(), { body: { query: {}, action: { seen: true } } });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.details[0].path, 'body.query');
    assert.equal((await t.request('POST', f(), { body: { query: { from: 'x' }, action: {} } })).status, 400);
    assert.equal((await t.request('POST', f(), { body: { query: { from: 'x', colour: 'red' }, action: { seen: true } } })).status, 400);
    assert.equal((await t.request('POST', f(), { body: { query: { from: 'x' }, action: { targets: ['not an address'] } } })).status, 400);
    const other = (await t.request('POST', '/users', { body: { username: 'lee', password: 'x1' } })).body.id;
    const theirs = (await t.request('GET', `/users/${other}/mailboxes`)).body.results[0].id;
    assert.equal((await t.request('POST', f(), { body: { query: { from: 'x' }, action: { mailbox: theirs } } })).body.code, 'NoSuchMailbox');
    const token = (await t.request('POST', '/authenticate', { body: { username: 'lee', password: 'x1', token: true } })).body.token;
    assert.equal((await t.request('GET', f(), { token })).status, 403);
    assert.equal((await t.request('POST', f(), { token, body: { query: { from: 'x' }, action: { seen: true } } })).status, 403);
  });

  it('applies a filter made over HTTP when mail is delivered', async () => {
    await t.request('POST', f(), { body: { query: { subject: 'weekly digest' }, action: { mailbox: archive, seen: true } } });
    const ctx = internalContext(t.app.log);
    const rcpt = await resolveRecipient(t.app, ctx, 'news@example.org', 'kim@example.com');
    assert.ok(rcpt.ok);
    const bytes = new TextEncoder().encode('From: news@example.org\r\nTo: kim@example.com\r\nSubject: Your Weekly Digest\r\n\r\nNews\r\n');
    await deliverMessage(t.app, ctx, { from: 'news@example.org', recipients: [rcpt.value], message: { size: bytes.length, open: async function* () { yield bytes; } } });
    const listed = (await t.request('GET', `/users/${user}/mailboxes/${archive}/messages`)).body.results;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].seen, true);
  });

  it('sets, reads, changes and removes the autoreply', async () => {
    const none = (await t.request('GET', `/users/${user}/autoreply`)).body;
    assert.deepEqual([none.status, none.subject, none.start], [false, '', false]);
    const set = await t.request('PUT', `/users/${user}/autoreply`, { body: { status: true, subject: 'Away', text: 'Back on Monday', start: '2024-01-01T00:00:00Z', end: false } });
    assert.deepEqual(set.body, { success: true, id: 'default' });
    const got = (await t.request('GET', `/users/${user}/autoreply`)).body;
    assert.deepEqual([got.status, got.subject, got.text, got.start, got.end], [true, 'Away', 'Back on Monday', '2024-01-01T00:00:00.000Z', false]);
    assert.ok(got.created);
    await t.request('PUT', `/users/${user}/autoreply`, { body: { status: false } });
    const off = (await t.request('GET', `/users/${user}/autoreply`)).body;
    assert.deepEqual([off.status, off.text], [false, 'Back on Monday']);
    const backwards = await t.request('PUT', `/users/${user}/autoreply`, { body: { start: '2024-02-01', end: '2024-01-01' } });
    assert.equal(backwards.status, 400);
    assert.equal((await t.request('PUT', `/users/${user}/autoreply`, { body: { start: 'someday' } })).status, 400);
    assert.deepEqual((await t.request('DELETE', `/users/${user}/autoreply`)).body, { success: true });
    assert.equal((await t.request('GET', `/users/${user}/autoreply`)).body.status, false);
  });
});
