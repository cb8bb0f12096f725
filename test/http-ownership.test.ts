/**
 * Acceptance: a user with a per-user token cannot read, list, change or delete anything of another user
 * through any route. The test walks the routing table itself (`apiRoutes()`), so a route added later is
 * walked too:
 *
 * 1. every route, with alice's token and bob's real ids in every path parameter (and a body that would be
 *    valid), answers 403 — except the few routes any caller may use, which are checked one by one;
 * 2. every owner route with an id besides `:user`, as `/users/me/…` with bob's ids (mailbox, message,
 *    attachment, address, asp, filter), answers 404 (nothing revealed) or 403;
 * 3. bob's ids inside alice's own requests (moveTo, search `mailbox`, submit `reference` / `draft` /
 *    `mailbox`, filter `action.mailbox`) are refused the same way;
 *
 * and afterwards bob's user, addresses, ASPs, mailboxes, messages and flags, filters, autoreply and token are
 * exactly as before, and no answer to alice ever contained one of bob's secrets.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { ApiResponse, HttpTestApp } from './helpers/http-harness.ts';
import { apiRoutes } from '../protocols/http.ts';
import { routeKey } from '../protocols/http/route.ts';

const SECRET = 'bob-private-7f3a';

const bobMessage = [
  'From: Carol <carol@example.org>',
  'To: bob@example.com',
  `Subject: ${SECRET} subject`,
  'Message-ID: <bob-secret@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  '',
  `The text of ${SECRET}.`,
  '--b1',
  'Content-Type: application/pdf; name="plan.pdf"',
  'Content-Disposition: attachment; filename="plan.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from(`${SECRET} attachment`).toString('base64'),
  '--b1--',
  '',
].join('\r\n');

const aliceMessage = 'From: alice@example.com\r\nTo: someone@example.net\r\nSubject: mine\r\nMessage-ID: <alice-1@example.com>\r\n\r\nAlice text.\r\n';

/**
 * A request each route would accept from its owner (so a refusal is about ownership, not input), by route key.
 * Every route must have an entry: a new route fails the walk until it is added here.
 */
const SAMPLES: Record<string, { body?: unknown; query?: string }> = {
  'GET /health': {},
  'GET /metrics': {},
  'GET /openapi.json': {},
  'GET /users': {},
  'POST /users': { body: { username: 'mallory', password: 'mallory-pass' } },
  'GET /users/resolve/:username': {},
  'GET /users/:user': {},
  'PUT /users/:user': { body: { name: 'Taken over', password: 'new-password-1' } },
  'DELETE /users/:user': {},
  'PUT /users/:user/logout': { body: { reason: 'walk' } },
  'GET /users/:user/addresses': {},
  'POST /users/:user/addresses': { body: { address: 'evil@example.com' } },
  'GET /users/:user/addresses/:address': {},
  'PUT /users/:user/addresses/:address': { body: { main: true } },
  'DELETE /users/:user/addresses/:address': {},
  'GET /addresses/resolve/:address': {},
  'POST /authenticate': { body: { username: 'bob', password: 'not-bobs-password', token: true } },
  'DELETE /authenticate': {},
  'GET /users/:user/asps': {},
  'POST /users/:user/asps': { body: { description: 'walk', scopes: ['imap'] } },
  'GET /users/:user/asps/:asp': {},
  'DELETE /users/:user/asps/:asp': {},
  'GET /users/:user/mailboxes': { query: 'counters=true' },
  'POST /users/:user/mailboxes': { body: { path: 'Walked' } },
  'GET /users/:user/mailboxes/:mailbox': {},
  'PUT /users/:user/mailboxes/:mailbox': { body: { path: 'Walked/Renamed', subscribed: false } },
  'DELETE /users/:user/mailboxes/:mailbox': { query: 'force=true' },
  'GET /users/:user/mailboxes/:mailbox/messages': {},
  'GET /users/:user/mailboxes/:mailbox/messages/:message': { query: 'markAsSeen=true' },
  'GET /users/:user/mailboxes/:mailbox/messages/:message/message.eml': {},
  'GET /users/:user/mailboxes/:mailbox/messages/:message/attachments/:attachment': {},
  'PUT /users/:user/mailboxes/:mailbox/messages/:message': { body: { seen: false, flagged: true } },
  'PUT /users/:user/mailboxes/:mailbox/messages': { body: { message: '1:*', deleted: true } },
  'DELETE /users/:user/mailboxes/:mailbox/messages/:message': {},
  'DELETE /users/:user/mailboxes/:mailbox/messages': {},
  'POST /users/:user/mailboxes/:mailbox/messages': { body: { raw: aliceMessage } },
  'GET /users/:user/search': { query: `q=${SECRET}` },
  'POST /users/:user/submit': { body: { to: [{ address: 'x@example.net' }], subject: 'walk', text: 'walk', isDraft: true } },
  'POST /users/:user/mailboxes/:mailbox/messages/:message/submit': { body: { deleteDraft: true } },
  'GET /users/:user/updates': {},
  'GET /users/:user/filters': {},
  'POST /users/:user/filters': { body: { name: 'walk', query: { from: 'x' }, action: { seen: true } } },
  'GET /users/:user/filters/:filter': {},
  'PUT /users/:user/filters/:filter': { body: { name: 'walked', disabled: true } },
  'DELETE /users/:user/filters/:filter': {},
  'GET /users/:user/autoreply': {},
  'PUT /users/:user/autoreply': { body: { status: true, subject: 'walk', text: 'walk' } },
  'DELETE /users/:user/autoreply': {},
};

/** Routes a user token may call whatever the ids: what each must (not) do is checked in step 1. */
const OPEN_TO_ANY_CALLER = new Set(['GET /health', 'GET /openapi.json', 'POST /authenticate', 'DELETE /authenticate']);

describe('HTTP API: a user token never reaches another user', () => {
  let t: HttpTestApp;
  let alice: string;
  let bob: string;
  let aliceToken: string;
  let bobToken: string;
  /** bob's ids by path parameter name */
  const bobIds: Record<string, string> = {};
  const aliceIds: Record<string, string> = {};
  const seen: ApiResponse[] = [];

  const asAlice = async (method: string, path: string, sample: { body?: unknown; query?: string } = {}, token = aliceToken) => {
    const url = sample.query ? `${path}?${sample.query}` : path;
    const res = await t.request(method, url, { token, body: method === 'GET' ? undefined : (sample.body ?? {}) });
    seen.push(res);
    return res;
  };

  /** Everything of bob's, read with the root token. */
  const snapshot = async () => {
    const get = async (path: string) => {
      const res = await t.request('GET', path);
      assert.equal(res.status, 200, path);
      return res.body;
    };
    const mailboxes = await get(`/users/${bob}/mailboxes?counters=true&sizes=true`);
    const messages: Record<string, unknown> = {};
    for (const box of mailboxes.results) messages[box.id] = (await get(`/users/${bob}/mailboxes/${box.id}/messages?limit=250`)).results;
    return {
      user: await get(`/users/${bob}`),
      addresses: await get(`/users/${bob}/addresses`),
      asps: await get(`/users/${bob}/asps`),
      mailboxes,
      messages,
      filters: await get(`/users/${bob}/filters`),
      autoreply: await get(`/users/${bob}/autoreply`),
    };
  };

  before(async () => {
    t = await bootHttpTestApp();
    const create = async (username: string) => {
      const res = await t.request('POST', '/users', { body: { username, password: `${username}-pass`, address: `${username}@example.com` } });
      assert.equal(res.status, 200);
      return res.body.id as string;
    };
    alice = await create('alice');
    bob = await create('bob');
    const token = async (username: string) => (await t.request('POST', '/authenticate', { token: null, body: { username, password: `${username}-pass`, token: true } })).body.token as string;
    aliceToken = await token('alice');
    bobToken = await token('bob');

    // bob's things, made by root
    const boxes = (await t.request('GET', `/users/${bob}/mailboxes`)).body.results as Array<{ id: string; path: string; specialUse: string | null }>;
    const inbox = boxes.find((b) => b.path === 'INBOX')!;
    const drafts = boxes.find((b) => b.specialUse === '\\Drafts')!;
    const folder = await t.request('POST', `/users/${bob}/mailboxes`, { body: { path: `Projects ${SECRET}` } });
    assert.equal(folder.status, 200);
    const upload = await t.request('POST', `/users/${bob}/mailboxes/${inbox.id}/messages`, { body: { raw: bobMessage, unseen: true } });
    assert.equal(upload.status, 200);
    const draft = await t.request('POST', `/users/${bob}/mailboxes/${drafts.id}/messages`, {
      body: { raw: `From: bob@example.com\r\nTo: carol@example.org\r\nSubject: ${SECRET} draft\r\n\r\nDraft.\r\n`, draft: true },
    });
    assert.equal(draft.status, 200);
    const address = await t.request('POST', `/users/${bob}/addresses`, { body: { address: 'bob.second@example.com' } });
    assert.equal(address.status, 200);
    const asp = await t.request('POST', `/users/${bob}/asps`, { body: { description: `${SECRET} phone`, scopes: ['imap'] } });
    assert.equal(asp.status, 200);
    const filter = await t.request('POST', `/users/${bob}/filters`, { body: { name: `${SECRET} filter`, query: { from: 'carol' }, action: { mailbox: folder.body.id } } });
    assert.equal(filter.status, 200);
    assert.equal((await t.request('PUT', `/users/${bob}/autoreply`, { body: { status: true, subject: `${SECRET} away`, text: 'Away.' } })).status, 200);
    const attachments = await t.request('GET', `/users/${bob}/mailboxes/${inbox.id}/messages/${upload.body.message.id}`);
    assert.equal(attachments.body.attachments.length, 1);
    Object.assign(bobIds, {
      user: bob,
      username: 'bob',
      mailbox: inbox.id,
      message: String(upload.body.message.id),
      attachment: attachments.body.attachments[0].id,
      address: address.body.id,
      asp: asp.body.id,
      filter: filter.body.id,
      folder: folder.body.id,
      drafts: drafts.id,
      draft: String(draft.body.message.id),
    });

    // alice's own things, for the requests that name bob's ids inside them
    const aliceBoxes = (await t.request('GET', `/users/${alice}/mailboxes`)).body.results as Array<{ id: string; path: string }>;
    aliceIds.mailbox = aliceBoxes.find((b) => b.path === 'INBOX')!.id;
    const mine = await t.request('POST', `/users/${alice}/mailboxes/${aliceIds.mailbox}/messages`, { body: { raw: aliceMessage } });
    aliceIds.message = String(mine.body.message.id);
    aliceIds.filter = (await t.request('POST', `/users/${alice}/filters`, { body: { name: 'mine', query: { from: 'x' }, action: { seen: true } } })).body.id;
  });
  after(() => t.close());

  it('has a sample request for every route', () => {
    const missing = apiRoutes()
      .map(routeKey)
      .filter((key) => !(key in SAMPLES));
    assert.deepEqual(missing, [], 'add the new route to SAMPLES (and think about who may call it)');
  });

  it("refuses every route on bob's data with alice's token, and leaves bob's data as it was", async () => {
    const before = await snapshot();
    const routes = apiRoutes();
    const fill = (path: string, ids: Record<string, string>) =>
      path.replace(/:(\w+)/g, (_m, name: string) => {
        const value = name === 'address' && path.startsWith('/addresses/') ? 'bob@example.com' : ids[name];
        assert.ok(value, `no id of bob's for :${name} in ${path}: add one to the walk`);
        return encodeURIComponent(value);
      });

    // 1. bob's ids everywhere
    for (const r of routes) {
      const key = routeKey(r);
      if (key === 'DELETE /authenticate') continue; // revokes the caller's own token: last, below
      const res = await asAlice(r.method, fill(r.path, bobIds), SAMPLES[key]);
      if (!OPEN_TO_ANY_CALLER.has(key)) {
        assert.equal(res.status, 403, `${key}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, 'MissingPrivileges', key);
        continue;
      }
      if (key === 'POST /authenticate') {
        assert.equal(res.status, 403, 'a token only for the right password');
        assert.equal(res.body.token, undefined);
      } else {
        assert.equal(res.status, 200, key);
        const text = JSON.stringify(res.body);
        assert.ok(!text.includes('bob@example.com') && !text.includes(SECRET), `${key} shows nothing of bob's`);
      }
    }

    // 2. alice's own user, bob's sub-resource ids
    for (const r of routes) {
      const names = [...r.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
      if (r.access !== 'owner' || names.length < 2) continue;
      const key = routeKey(r);
      const res = await asAlice(r.method, fill(r.path, { ...bobIds, user: 'me' }), SAMPLES[key]);
      assert.ok(res.status === 404 || res.status === 403, `${key} with bob's ids under /users/me: ${res.status} ${JSON.stringify(res.body)}`);
      assert.notEqual(res.body?.success, true, key);
    }

    // 3. bob's ids inside alice's own requests
    const own = `/users/me/mailboxes/${aliceIds.mailbox}/messages`;
    const crossing: Array<[string, string, { body?: unknown; query?: string }]> = [
      ['PUT', `${own}/${aliceIds.message}`, { body: { moveTo: bobIds.folder } }],
      ['PUT', own, { body: { message: '1:*', moveTo: bobIds.folder } }],
      ['GET', '/users/me/search', { query: `mailbox=${bobIds.mailbox}` }],
      ['GET', '/users/me/mailboxes/resolve', { query: `path=${encodeURIComponent(`Projects ${SECRET}`)}` }],
      ['POST', '/users/me/submit', { body: { to: [{ address: 'x@example.net' }], text: 'hi', reference: { mailbox: bobIds.mailbox, id: Number(bobIds.message), action: 'reply' } } }],
      ['POST', '/users/me/submit', { body: { to: [{ address: 'x@example.net' }], text: 'hi', reference: { mailbox: bobIds.mailbox, id: Number(bobIds.message), action: 'forward' } } }],
      ['POST', '/users/me/submit', { body: { to: [{ address: 'x@example.net' }], text: 'hi', isDraft: true, mailbox: bobIds.drafts } }],
      ['POST', '/users/me/submit', { body: { to: [{ address: 'x@example.net' }], text: 'hi', uploadOnly: true, mailbox: bobIds.folder } }],
      ['POST', '/users/me/submit', { body: { to: [{ address: 'x@example.net' }], text: 'hi', isDraft: true, draft: { mailbox: bobIds.drafts, id: Number(bobIds.draft) } } }],
      ['POST', '/users/me/filters', { body: { query: { from: 'x' }, action: { mailbox: bobIds.folder } } }],
      ['PUT', `/users/me/filters/${aliceIds.filter}`, { body: { action: { mailbox: bobIds.folder } } }],
    ];
    for (const [method, path, sample] of crossing) {
      const res = await asAlice(method, path, sample);
      assert.ok(res.status === 404 || res.status === 403, `${method} ${path} ${JSON.stringify(sample)}: ${res.status} ${JSON.stringify(res.body)}`);
    }

    // the caller's own token, last
    const spare = (await t.request('POST', '/authenticate', { token: null, body: { username: 'alice', password: 'alice-pass', token: true } })).body.token as string;
    assert.equal((await asAlice('DELETE', '/authenticate', {}, spare)).status, 200);
    assert.equal((await t.request('GET', '/users/me', { token: spare })).status, 401, 'only the token it carried is revoked');

    assert.deepEqual(await snapshot(), before, "bob's data is unchanged");
    assert.equal((await t.request('GET', '/users/me', { token: bobToken })).status, 200, "bob's token still works");
    for (const res of seen) assert.ok(!JSON.stringify(res.body).includes(SECRET), `no answer to alice carries bob's data: ${JSON.stringify(res.body).slice(0, 200)}`);
  });
});
