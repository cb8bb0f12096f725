/** HTTP API users and addresses: success and error paths of every route, over real HTTP. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { getDeliverySettings } from '../storage/delivery-settings.ts';

describe('HTTP API: users', () => {
  let t: HttpTestApp;
  before(async () => {
    t = await bootHttpTestApp({ users: { quota: { storage: 1000 } } });
  });
  after(() => t.close());

  it('creates a user with default mailboxes, its address and the server default quota', async () => {
    const res = await t.request('POST', '/users', { body: { username: 'Carol', password: 'carol-pass', name: 'Carol C', address: 'carol@example.com' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.success, true);
    const user = await t.request('GET', `/users/${res.body.id}`);
    assert.equal(user.body.username, 'carol');
    assert.equal(user.body.name, 'Carol C');
    assert.equal(user.body.address, 'carol@example.com');
    assert.deepEqual(user.body.limits.quota, { allowed: 1000, used: 0 });
    assert.deepEqual(user.body.limits.messages, { allowed: 0, used: 0 });
    assert.equal(user.body.hasPasswordSet, true);
    assert.equal(user.body.disabled, false);
    const boxes = await t.request('GET', `/users/${res.body.id}/mailboxes`);
    assert.deepEqual(boxes.body.results.map((b: { path: string }) => b.path), ['INBOX', 'Drafts', 'Junk', 'Sent Mail', 'Trash']);
  });

  it('names the special-use mailboxes in the language given, with explicit mailboxes over it', async () => {
    const paths = async (body: Record<string, unknown>) => {
      const res = await t.request('POST', '/users', { body: { password: 'x1', ...body } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const boxes = await t.request('GET', `/users/${res.body.id}/mailboxes`);
      return Object.fromEntries(boxes.body.results.map((b: { path: string; specialUse: string | null }) => [b.specialUse ?? 'inbox', b.path]));
    };
    assert.deepEqual(await paths({ username: 'lang-et', language: 'et' }), {
      inbox: 'INBOX', '\\Drafts': 'Mustandid', '\\Sent': 'Saadetud kirjad', '\\Trash': 'Prügikast', '\\Junk': 'Rämpsposti kaust',
    });
    const de = await paths({ username: 'lang-de', language: 'de-AT' });
    assert.equal(de['\\Trash'], 'Papierkorb', 'region subtag ignored');
    const unknown = await paths({ username: 'lang-xx', language: 'xx' });
    assert.deepEqual(Object.values(unknown).sort(), ['Drafts', 'INBOX', 'Junk', 'Sent Mail', 'Trash'], 'unknown language: config names');
    const custom = await paths({ username: 'lang-custom', language: 'fr', mailboxes: { sent: 'Outbox', junk: ' Spam ' } });
    assert.equal(custom['\\Sent'], 'Outbox');
    assert.equal(custom['\\Junk'], 'Spam');
    assert.equal(custom['\\Drafts'], 'Brouillons');
    const bad = await t.request('POST', '/users', { body: { username: 'lang-bad', password: 'x1', mailboxes: { sent: 'a/b' } } });
    assert.equal(bad.status, 400);
    const same = await t.request('POST', '/users', { body: { username: 'lang-same', password: 'x1', mailboxes: { sent: 'Trash' } } });
    assert.equal(same.status, 400);
    assert.equal((await t.request('GET', '/users/resolve/lang-same')).status, 404);
  });

  it('refuses a taken username (409), a bad username (400) and a taken address (409)', async () => {
    await t.request('POST', '/users', { body: { username: 'dave', password: 'x1', address: 'dave@example.com' } });
    const taken = await t.request('POST', '/users', { body: { username: 'DAVE', password: 'x1' } });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.code, 'UserExistsError');
    const bad = await t.request('POST', '/users', { body: { username: 'no spaces', password: 'x1' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'InputValidationError');
    const addr = await t.request('POST', '/users', { body: { username: 'dave2', password: 'x1', address: 'Dave@Example.com' } });
    assert.equal(addr.status, 409);
    assert.equal(addr.body.code, 'AddressExistsError');
    assert.equal((await t.request('GET', '/users/resolve/dave2')).status, 404, 'no half-created user');
  });

  it('uses an address-shaped username as the address, and creates passwordless users', async () => {
    const res = await t.request('POST', '/users', { body: { username: 'erin@example.com', password: false } });
    const user = await t.request('GET', `/users/${res.body.id}`);
    assert.equal(user.body.address, 'erin@example.com');
    assert.equal(user.body.hasPasswordSet, false);
    const auth = await t.request('POST', '/authenticate', { token: null, body: { username: 'erin@example.com', password: 'anything' } });
    assert.equal(auth.status, 403);
  });

  it('lists users in pages with next and previous cursors and a query', async () => {
    for (let i = 0; i < 5; i++) await t.request('POST', '/users', { body: { username: `pager${i}`, password: 'x1', name: i % 2 ? 'Odd' : 'Even' } });
    const first = await t.request('GET', '/users?query=pager&limit=2');
    assert.equal(first.body.total, 5);
    assert.equal(first.body.page, 1);
    assert.equal(first.body.previousCursor, false);
    assert.deepEqual(first.body.results.map((u: { username: string }) => u.username), ['pager0', 'pager1']);
    const second = await t.request('GET', `/users?query=pager&limit=2&next=${first.body.nextCursor}`);
    assert.equal(second.body.page, 2);
    assert.deepEqual(second.body.results.map((u: { username: string }) => u.username), ['pager2', 'pager3']);
    const third = await t.request('GET', `/users?query=pager&limit=2&next=${second.body.nextCursor}`);
    assert.deepEqual(third.body.results.map((u: { username: string }) => u.username), ['pager4']);
    assert.equal(third.body.nextCursor, false);
    const back = await t.request('GET', `/users?query=pager&limit=2&previous=${third.body.previousCursor}`);
    assert.equal(back.body.page, 2);
    assert.deepEqual(back.body.results.map((u: { username: string }) => u.username), ['pager2', 'pager3']);
    const odd = await t.request('GET', '/users?query=odd');
    assert.deepEqual(odd.body.results.map((u: { username: string }) => u.username), ['pager1', 'pager3']);
    const foreign = await t.request('GET', `/users?query=other&next=${first.body.nextCursor}`);
    assert.equal(foreign.status, 400, 'a cursor is bound to its query');
    assert.equal((await t.request('GET', '/users?next=garbage')).status, 400);
    assert.equal((await t.request('GET', '/users?limit=0')).status, 400);
  });

  it('stores tags lowercased, shows them, filters the list by any tag or all tags, and lets only root change them', async () => {
    const create = async (username: string, tags: string[]) =>
      (await t.request('POST', '/users', { body: { username, password: 'x1', tags } })).body.id as string;
    const a = await create('tagged-a', [' Sales ', 'VIP', 'vip']);
    await create('tagged-b', ['sales']);
    await create('tagged-c', ['ops', 'vip']);
    assert.deepEqual((await t.request('GET', `/users/${a}`)).body.tags, ['sales', 'vip']);
    const names = async (qs: string) => {
      const res = await t.request('GET', `/users?${qs}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.results.map((u: { username: string; tags: string[] }) => `${u.username}:${u.tags.join('+')}`);
    };
    assert.deepEqual(await names('tags=vip,nothing'), ['tagged-a:sales+vip', 'tagged-c:ops+vip']);
    assert.deepEqual(await names('requiredTags=SALES,vip'), ['tagged-a:sales+vip']);
    assert.deepEqual(await names('query=tagged&tags=sales&requiredTags=vip'), ['tagged-a:sales+vip']);
    assert.equal((await t.request('GET', '/users?tags=sales')).body.total, 2);
    const first = await t.request('GET', '/users?tags=vip&limit=1');
    const second = await t.request('GET', `/users?tags=vip&limit=1&next=${first.body.nextCursor}`);
    assert.deepEqual(second.body.results.map((u: { username: string }) => u.username), ['tagged-c']);
    assert.equal((await t.request('GET', `/users?tags=ops&limit=1&next=${first.body.nextCursor}`)).status, 400, 'cursor bound to the tags');

    assert.equal((await t.request('PUT', `/users/${a}`, { body: { tags: ['ops'] } })).status, 200);
    assert.deepEqual(await names('tags=ops'), ['tagged-a:ops', 'tagged-c:ops+vip']);
    assert.equal((await t.request('POST', '/users', { body: { username: 'tagged-bad', password: 'x1', tags: 'a,b' } })).status, 400);
    const token = (await t.request('POST', '/authenticate', { token: null, body: { username: 'tagged-b', password: 'x1', token: true } })).body.token;
    const own = await t.request('PUT', '/users/me', { token, body: { tags: ['boss'] } });
    assert.equal(own.status, 403);
    assert.equal(own.body.code, 'MissingPrivileges');
  });

  it('sets forwarding targets and the spam level on create and update (delivery settings), shown by get and list', async () => {
    const res = await t.request('POST', '/users', { body: { username: 'fwd', password: 'x1', targets: ['Copy@Example.org'], spamLevel: 80 } });
    assert.equal(res.status, 200);
    const id = res.body.id as string;
    const get = async () => (await t.request('GET', `/users/${id}`)).body;
    assert.deepEqual((await get()).targets, ['copy@example.org']);
    assert.equal((await get()).spamLevel, 80);
    assert.deepEqual(await getDeliverySettings(t.app.storage.documents, id), { forward: ['copy@example.org'], spamLevel: 80 }, 'the settings delivery reads');
    const listed = (await t.request('GET', '/users?query=fwd')).body.results;
    assert.deepEqual(listed.map((u: { targets: string[] }) => u.targets), [['copy@example.org']]);

    const token = (await t.request('POST', '/authenticate', { token: null, body: { username: 'fwd', password: 'x1', token: true } })).body.token;
    assert.equal((await t.request('PUT', '/users/me', { token, body: { targets: ['a@example.net', 'b@example.net'] } })).status, 200, 'owners may');
    assert.deepEqual((await get()).targets, ['a@example.net', 'b@example.net']);
    assert.equal((await get()).spamLevel, 80, 'kept');
    assert.equal((await t.request('PUT', `/users/${id}`, { body: { spamLevel: null, targets: [] } })).status, 200);
    assert.deepEqual((await get()).targets, []);
    assert.equal((await get()).spamLevel, 50, 'unset shows 50');
    assert.deepEqual(await getDeliverySettings(t.app.storage.documents, id), { forward: [], spamLevel: null });

    const plain = (await t.request('POST', '/users', { body: { username: 'nofwd', password: 'x1' } })).body.id;
    assert.deepEqual((await t.request('GET', `/users/${plain}`)).body.targets, []);
    for (const body of [{ targets: ['smtp://mx.example.com:25'] }, { targets: ['not an address'] }, { spamLevel: 101 }, { spamLevel: 1.5 }]) {
      const bad = await t.request('PUT', `/users/${id}`, { body });
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.code, 'InputValidationError');
    }
    const badCreate = await t.request('POST', '/users', { body: { username: 'fwd-bad', password: 'x1', targets: ['nope'] } });
    assert.equal(badCreate.status, 400);
    assert.equal((await t.request('GET', '/users/resolve/fwd-bad')).status, 404);
  });

  it('resolves a username or address to the user id', async () => {
    const id = (await t.request('POST', '/users', { body: { username: 'frank', password: 'x1', address: 'frank@example.com' } })).body.id;
    assert.deepEqual((await t.request('GET', '/users/resolve/FRANK')).body, { success: true, id });
    assert.deepEqual((await t.request('GET', '/users/resolve/frank+tag@example.com')).body, { success: true, id });
    const missing = await t.request('GET', '/users/resolve/nobody');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'UserNotFound');
  });

  it('updates password, name, quota and the disabled flag', async () => {
    const id = (await t.request('POST', '/users', { body: { username: 'gina', password: 'old-pass' } })).body.id;
    const login = (password: string) => t.request('POST', '/authenticate', { token: null, body: { username: 'gina', password } });
    assert.equal((await t.request('PUT', `/users/${id}`, { body: { password: 'new-pass', name: 'Gina', quota: 5000 } })).status, 200);
    assert.equal((await login('old-pass')).status, 403);
    assert.equal((await login('new-pass')).status, 200);
    const user = (await t.request('GET', `/users/${id}`)).body;
    assert.equal(user.name, 'Gina');
    assert.equal(user.limits.quota.allowed, 5000);
    await t.request('PUT', `/users/${id}`, { body: { disabled: true } });
    assert.equal((await t.request('GET', `/users/${id}`)).body.disabled, true);
    assert.equal((await login('new-pass')).status, 403, 'a disabled user cannot log in');
    await t.request('PUT', `/users/${id}`, { body: { disabled: false } });

    const token = (await t.request('POST', '/authenticate', { token: null, body: { username: 'gina', password: 'new-pass', token: true } })).body.token;
    const wrong = await t.request('PUT', '/users/me', { token, body: { existingPassword: 'nope', password: 'third-pass' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.code, 'AuthFailed');
    assert.equal((await t.request('PUT', '/users/me', { token, body: { existingPassword: 'new-pass', password: 'third-pass' } })).status, 200);
    assert.equal((await login('third-pass')).status, 200);
    const quota = await t.request('PUT', '/users/me', { token, body: { quota: 1 } });
    assert.equal(quota.status, 403, 'a user cannot raise their own quota');
    assert.equal((await t.request('PUT', `/users/${id}`, { body: { quota: 'lots' } })).status, 400);
    assert.equal((await t.request('PUT', '/users/0000000000000000000f423f', { body: { name: 'x' } })).body.code, 'UserNotFound');
  });

  it('logs a user out everywhere by revoking their tokens', async () => {
    const id = (await t.request('POST', '/users', { body: { username: 'hank', password: 'hank-pass' } })).body.id;
    const token = (await t.request('POST', '/authenticate', { token: null, body: { username: 'hank', password: 'hank-pass', token: true } })).body.token;
    assert.equal((await t.request('GET', '/users/me', { token })).status, 200);
    assert.equal((await t.request('PUT', `/users/${id}/logout`, { body: { reason: 'lost phone' } })).status, 200);
    assert.equal((await t.request('GET', '/users/me', { token })).status, 401);
    assert.equal((await t.request('PUT', '/users/0000000000000000000f423f/logout', { body: {} })).status, 404);
  });

  it('deletes a user', async () => {
    const id = (await t.request('POST', '/users', { body: { username: 'ivan', password: 'x1', address: 'ivan@example.com' } })).body.id;
    assert.deepEqual((await t.request('DELETE', `/users/${id}`)).body, { success: true });
    assert.equal((await t.request('GET', `/users/${id}`)).status, 404);
    assert.equal((await t.request('GET', '/addresses/resolve/ivan@example.com')).status, 404);
    const again = await t.request('DELETE', `/users/${id}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'UserNotFound');
  });
});

describe('HTTP API: addresses', () => {
  let t: HttpTestApp;
  let user: string;
  before(async () => {
    t = await bootHttpTestApp();
    user = (await t.request('POST', '/users', { body: { username: 'jane', password: 'x1', address: 'jane@example.com' } })).body.id;
  });
  after(() => t.close());

  it('adds, lists, reads and resolves addresses, internationalized ones included', async () => {
    const idn = await t.request('POST', `/users/${user}/addresses`, { body: { address: 'Jäne@Bücher.example' } });
    assert.equal(idn.status, 200);
    const list = await t.request('GET', `/users/${user}/addresses`);
    assert.deepEqual(list.body.results.map((a: { address: string; main: boolean }) => [a.address, a.main]), [
      ['jane@example.com', true],
      ['Jäne@Bücher.example', false],
    ]);
    const one = await t.request('GET', `/users/${user}/addresses/${idn.body.id}`);
    assert.equal(one.body.address, 'Jäne@Bücher.example');
    assert.match(one.body.created, /^\d{4}-\d\d-\d\dT/);
    for (const form of ['jäne@bücher.example', 'JÄNE@xn--bcher-kva.example', 'jäne+news@BÜCHER.example']) {
      const resolved = await t.request('GET', `/addresses/resolve/${encodeURIComponent(form)}`);
      assert.equal(resolved.status, 200, form);
      assert.equal(resolved.body.user, user);
      assert.equal(resolved.body.id, idn.body.id);
    }
    const none = await t.request('GET', '/addresses/resolve/nobody@example.com');
    assert.equal(none.status, 404);
    assert.equal(none.body.code, 'AddressNotFound');
    assert.equal((await t.request('GET', '/addresses/resolve/not-an-address')).status, 400);
  });

  it('refuses invalid and taken addresses', async () => {
    const bad = await t.request('POST', `/users/${user}/addresses`, { body: { address: 'no-at-sign' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'InputValidationError');
    const taken = await t.request('POST', `/users/${user}/addresses`, { body: { address: 'JANE@example.com' } });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.code, 'AddressExistsError');
    assert.equal((await t.request('POST', '/users/0000000000000000000f423f/addresses', { body: { address: 'z@example.com' } })).body.code, 'UserNotFound');
  });

  it('moves the main flag and rewrites the display form, nothing else', async () => {
    const alt = (await t.request('POST', `/users/${user}/addresses`, { body: { address: 'alt@example.com' } })).body.id;
    assert.equal((await t.request('PUT', `/users/${user}/addresses/${alt}`, { body: { main: true, address: 'Alt@Example.com' } })).status, 200);
    const mine = (await t.request('GET', `/users/${user}`)).body;
    assert.equal(mine.address, 'Alt@Example.com');
    const other = await t.request('PUT', `/users/${user}/addresses/${alt}`, { body: { address: 'different@example.com' } });
    assert.equal(other.status, 400);
    assert.equal((await t.request('PUT', `/users/${user}/addresses/0000000000000000000f423f`, { body: { main: true } })).body.code, 'AddressNotFound');
  });

  it('deletes addresses but not the main one while others remain', async () => {
    const list = (await t.request('GET', `/users/${user}/addresses`)).body.results as Array<{ id: string; main: boolean }>;
    const main = list.find((a) => a.main)!;
    const other = list.find((a) => !a.main)!;
    assert.equal((await t.request('DELETE', `/users/${user}/addresses/${main.id}`)).status, 400);
    assert.equal((await t.request('DELETE', `/users/${user}/addresses/${other.id}`)).status, 200);
    assert.equal((await t.request('GET', `/users/${user}/addresses/${other.id}`)).status, 404);
    assert.equal((await t.request('DELETE', `/users/${user}/addresses/${other.id}`)).body.code, 'AddressNotFound');
  });

  it("does not show or touch another user's address through one's own path", async () => {
    const bob = (await t.request('POST', '/users', { body: { username: 'bob', password: 'x1', address: 'bob@example.com' } })).body.id;
    const bobAddress = (await t.request('GET', `/users/${bob}/addresses`)).body.results[0].id;
    assert.equal((await t.request('GET', `/users/${user}/addresses/${bobAddress}`)).status, 404);
    assert.equal((await t.request('DELETE', `/users/${user}/addresses/${bobAddress}`)).status, 404);
    assert.equal((await t.request('GET', `/users/${bob}/addresses/${bobAddress}`)).status, 200);
  });
});
