/**
 * POST /authenticate and application-specific passwords over real HTTP, and ASP logins over IMAP (the same
 * authenticate() pipeline, the same failed-login limits).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { connect } from './helpers/imap-harness.ts';
import { checkCredentials } from '../storage/users.ts';

describe('HTTP API: authentication and application-specific passwords', () => {
  let t: HttpTestApp;
  let user: string;
  let token: string;
  const imapLogin = async (login: string, password: string) => {
    const { client } = await connect(t.app, { remoteAddress: '127.0.0.1', isLoopback: true });
    const status = await client.status(`LOGIN "${login}" "${password}"`);
    client.end();
    return status;
  };

  before(async () => {
    t = await bootHttpTestApp({ auth: { failedLogins: { perUser: 4, perIp: 1000, delayMs: 0 } } });
    user = (await t.request('POST', '/users', { body: { username: 'mia', password: 'mia-pass', address: 'mia@example.com' } })).body.id;
    token = (await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'mia-pass', token: true } })).body.token;
  });
  after(() => t.close());

  it('authenticates by username or address and reports the user', async () => {
    const res = await t.request('POST', '/authenticate', { token: null, body: { username: 'MIA@example.com', password: 'mia-pass' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.id, user);
    assert.equal(res.body.username, 'mia');
    assert.equal(res.body.address, 'mia@example.com');
    assert.equal(res.body.scope, 'master');
    assert.equal(res.body.token, undefined, 'no token unless asked');
    const wrong = await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'nope' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.code, 'AuthFailed');
    const invalid = await t.request('POST', '/authenticate', { token: null, body: { username: 'mia' } });
    assert.equal(invalid.status, 400);
    const scoped = await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'mia-pass', scope: 'imap', token: true } });
    assert.equal(scoped.status, 400, 'tokens only for scope master');
  });

  it('creates an ASP once, lists it without the password, and deletes it', async () => {
    const created = await t.request('POST', '/users/me/asps', { token, body: { description: 'Phone', scopes: ['imap', 'pop3'] } });
    assert.equal(created.status, 200);
    assert.match(created.body.password, /^[a-z]{16}$/);
    const list = await t.request('GET', `/users/${user}/asps`);
    assert.equal(list.body.results.length, 1);
    const entry = list.body.results[0];
    assert.deepEqual([entry.id, entry.description, entry.scopes, entry.lastUse], [created.body.id, 'Phone', ['imap', 'pop3'], { time: null, event: null }]);
    assert.ok(!JSON.stringify(list.body).includes(created.body.password));
    const stored = await t.app.storage.documents.list(user, 'asp');
    assert.ok(!JSON.stringify(stored).includes(created.body.password), 'stored hashed');
    assert.equal((await t.request('GET', `/users/me/asps/${created.body.id}`, { token })).body.description, 'Phone');
    assert.deepEqual((await t.request('DELETE', `/users/${user}/asps/${created.body.id}`)).body, { success: true });
    const gone = await t.request('DELETE', `/users/${user}/asps/${created.body.id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'AspNotFound');
    assert.equal((await t.request('GET', `/users/${user}/asps/${created.body.id}`)).status, 404);
  });

  it('validates ASP input', async () => {
    assert.equal((await t.request('POST', `/users/${user}/asps`, { body: { description: 'x', scopes: ['master'] } })).status, 400);
    assert.equal((await t.request('POST', `/users/${user}/asps`, { body: { description: 'x', password: 'short' } })).status, 400);
    assert.equal((await t.request('POST', `/users/${user}/asps`, { body: {} })).status, 400);
    assert.equal((await t.request('POST', '/users/0000000000000000000f423f/asps', { body: { description: 'x' } })).body.code, 'UserNotFound');
  });

  it('accepts an ASP for its scopes only: IMAP yes, master (API) no', async () => {
    const imapOnly = (await t.request('POST', `/users/${user}/asps`, { body: { description: 'Mail app', scopes: ['imap'], password: 'abcd efgh ijkl mnop' } })).body;
    assert.equal(imapOnly.password, 'abcdefghijklmnop');
    assert.match(await imapLogin('mia', 'abcd efgh ijkl mnop'), /^OK/);
    assert.match(await imapLogin('mia@example.com', 'ABCDEFGHIJKLMNOP'), /^OK/);
    assert.match(await imapLogin('mia', 'mia-pass'), /^OK/, 'the account password still works');
    const api = await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'abcdefghijklmnop' } });
    assert.equal(api.status, 403, 'an ASP is never the master password');
    assert.equal((await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'abcdefghijklmnop', scope: 'imap' } })).status, 200);
    assert.equal((await t.request('POST', '/authenticate', { token: null, body: { username: 'mia', password: 'abcdefghijklmnop', scope: 'pop3' } })).status, 403);
    assert.equal(await checkCredentials(t.app.storage, 'mia', 'abcdefghijklmnop', 'pop3'), null);
    const used = (await t.request('GET', `/users/${user}/asps/${imapOnly.id}`)).body;
    assert.equal(used.lastUse.event, 'imap');
    assert.match(used.lastUse.time, /^\d{4}-/);
    await t.request('DELETE', `/users/${user}/asps/${imapOnly.id}`);
    assert.match(await imapLogin('mia', 'abcdefghijklmnop'), /^NO \[AUTHENTICATIONFAILED\]/, 'a deleted ASP stops working');
  });

  it('shares the failed-login limit between HTTP and IMAP', async () => {
    await t.request('POST', '/users', { body: { username: 'ned', password: 'ned-pass' } });
    for (let i = 0; i < 4; i++) {
      assert.equal((await t.request('POST', '/authenticate', { token: null, body: { username: 'ned', password: `wrong${i}` } })).status, 403);
    }
    const limited = await t.request('POST', '/authenticate', { token: null, body: { username: 'ned', password: 'ned-pass' } });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'LIMIT');
    assert.match(await imapLogin('ned', 'ned-pass'), /^NO \[LIMIT\]/);
  });
});
