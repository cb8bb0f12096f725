/**
 * HTTP API framework over real HTTP on loopback: routing errors, access tokens (root header and query, user
 * tokens scoped to their user, the loopback exemption), validation details, body limits while reading, the
 * http.request gate, verdict mapping, one log line per request, /metrics and /openapi.json.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { bootHttpTestApp, ROOT_TOKEN } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { deny, tempfail } from '../hooks/verdict.ts';
import type { Plugin } from '../hooks/host.ts';
import { ApiError, verdictToHttp } from '../protocols/http/errors.ts';
import { Router, route } from '../protocols/http/route.ts';

/** The first user's id (alice's, known once she is created), which the gate protects. */
let firstUser: string | null = null;

const gatePlugin: Plugin = {
  name: 'test-gate',
  apply(api) {
    api.hooks.http.request.for('DELETE /users/:user').tap({}, (_ctx, cmd) => {
      const args = cmd.args as { userId: string | null };
      return args.userId === firstUser ? deny('NOPERM', 'The first user is protected') : undefined;
    });
    api.hooks.http.request.for('GET /users/:user/asps').tap({}, () => ({ results: [], fromPlugin: true }));
    api.hooks.http.request.for('GET /users/:user/addresses').tap({}, () => {
      throw new Error('secret internal detail');
    });
  },
};

describe('HTTP API framework', () => {
  let t: HttpTestApp;
  let alice: string;
  let bob: string;
  let aliceToken: string;

  before(async () => {
    t = await bootHttpTestApp({ api: { maxBodyBytes: 4096 }, plugins: [gatePlugin] });
    alice = (await t.request('POST', '/users', { body: { username: 'alice', password: 'alice-pass', address: 'alice@example.com' } })).body.id;
    firstUser = alice;
    bob = (await t.request('POST', '/users', { body: { username: 'bob', password: 'bob-pass', address: 'bob@example.com' } })).body.id;
    const auth = await t.request('POST', '/authenticate', { token: null, body: { username: 'alice', password: 'alice-pass', token: true } });
    assert.equal(auth.status, 200);
    aliceToken = auth.body.token;
    assert.match(aliceToken, /^[0-9a-f]{40}$/);
  });
  after(() => t.close());

  it('answers unknown routes 404 and wrong methods 405 with JSON codes', async () => {
    const missing = await t.request('GET', '/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: 'Unknown route', code: 'NotFound' });
    const wrong = await t.request('PATCH', '/users');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.code, 'MethodNotAllowed');
    assert.match(wrong.headers.get('allow') ?? '', /GET/);
  });

  it('prefers literal path segments over parameters', async () => {
    const resolved = await t.request('GET', '/users/resolve/alice');
    assert.deepEqual(resolved.body, { success: true, id: alice });
    const router = new Router([
      route({ method: 'GET', path: '/a/:x', summary: '', tag: 't', access: 'public', handler: async () => ({ which: 'param' }) }),
      route({ method: 'GET', path: '/a/b', summary: '', tag: 't', access: 'public', handler: async () => ({ which: 'literal' }) }),
    ]);
    const hit = router.match('GET', '/a/b');
    assert.ok(hit && 'route' in hit);
    assert.equal(hit.route.path, '/a/b');
    const param = router.match('GET', '/a/%C3%A9');
    assert.ok(param && 'route' in param);
    assert.deepEqual(param.params, { x: 'é' });
    assert.throws(() => new Router([route({ method: 'GET', path: '/x', summary: '', tag: 't', access: 'owner', handler: async () => ({}) })]), /:user/);
  });

  it('requires a token: 401 without one, 401 for an unknown one, root by header or query', async () => {
    const none = await t.request('GET', '/users', { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'AuthRequired');
    const bad = await t.request('GET', '/users', { token: 'not-a-token' });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.code, 'InvalidToken');
    assert.equal((await t.request('GET', '/users', { token: ROOT_TOKEN })).status, 200);
    assert.equal((await t.request('GET', '/users', { token: ROOT_TOKEN, tokenInQuery: true })).status, 200);
    assert.equal((await t.request('GET', '/health', { token: null })).status, 200, 'health is public');
  });

  it('scopes a user token to its own user, with "me" as an alias', async () => {
    const me = await t.request('GET', '/users/me', { token: aliceToken });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, alice);
    assert.equal((await t.request('GET', `/users/${alice}`, { token: aliceToken, tokenInQuery: true })).status, 200);
    for (const [method, path] of [
      ['GET', `/users/${bob}`],
      ['PUT', `/users/${bob}`],
      ['GET', `/users/${bob}/addresses`],
      ['GET', `/users/${bob}/mailboxes`],
      ['POST', `/users/${bob}/mailboxes`],
      ['GET', `/users/${bob}/asps`],
      ['GET', '/users'],
      ['POST', '/users'],
      ['DELETE', `/users/${alice}`],
      ['GET', '/addresses/resolve/bob@example.com'],
      ['GET', '/metrics'],
    ] as const) {
      const res = await t.request(method, path, { token: aliceToken, body: method === 'GET' ? undefined : { path: 'X' } });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.code, 'MissingPrivileges');
    }
    const rootMe = await t.request('GET', '/users/me');
    assert.equal(rootMe.status, 400, 'root has no "me"');
  });

  it('revokes a user token with DELETE /authenticate', async () => {
    const auth = await t.request('POST', '/authenticate', { token: null, body: { username: 'bob', password: 'bob-pass', token: true } });
    const token = auth.body.token as string;
    assert.equal((await t.request('GET', '/users/me', { token })).status, 200);
    assert.deepEqual((await t.request('DELETE', '/authenticate', { token })).body, { success: true });
    assert.equal((await t.request('GET', '/users/me', { token })).body.code, 'InvalidToken');
  });

  it('stores tokens hashed', async () => {
    const docs = await t.app.storage.documents.list(alice, 'token');
    assert.ok(docs.length >= 1);
    for (const d of docs) {
      assert.notEqual(d.key, aliceToken);
      assert.ok(!JSON.stringify(d.data).includes(aliceToken));
    }
  });

  it('validates input with the path of every bad field', async () => {
    const res = await t.request('POST', '/users', { body: { username: 'x', password: 5, quota: -1 } });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'InputValidationError');
    const paths = (res.body.details as Array<{ path: string }>).map((d) => d.path).sort();
    assert.deepEqual(paths, ['body.password', 'body.quota']);
    const query = await t.request('GET', '/users?limit=abc');
    assert.equal(query.status, 400);
    assert.equal(query.body.details[0].path, 'query.limit');
  });

  it('refuses bad JSON, other media types and oversized bodies', async () => {
    const badJson = await t.request('POST', '/users', { raw: { type: 'application/json', data: '{"username":' } });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.code, 'InvalidJson');
    const form = await t.request('POST', '/users', { raw: { type: 'application/x-www-form-urlencoded', data: 'username=x' } });
    assert.equal(form.status, 415);
    const big = await t.request('POST', '/users', { body: { username: 'big', password: 'x'.repeat(5000) } });
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'PayloadTooLarge');
  });

  it('enforces the body limit while reading a chunked body', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${t.base}/users`,
        { method: 'POST', headers: { 'x-access-token': ROOT_TOKEN, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{"username":"chunky","password":"');
      const chunk = 'y'.repeat(1024);
      let n = 0;
      const pump = () => {
        if (n++ < 8 && !req.destroyed) req.write(chunk, () => setTimeout(pump, 5));
      };
      pump();
    });
    assert.equal(status, 413);
    assert.equal(await t.app.storage.users.getByUsername('chunky'), null);
  });

  it('runs the http.request gate: a deny verdict, a plugin answer, a failing tap', async () => {
    const refused = await t.request('DELETE', `/users/${alice}`);
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body, { error: 'The first user is protected', code: 'NOPERM' });
    assert.ok(await t.app.storage.users.get(alice), 'not deleted');
    const answered = await t.request('GET', `/users/${alice}/asps`);
    assert.deepEqual(answered.body, { success: true, results: [], fromPlugin: true });
    const failed = await t.request('GET', `/users/${alice}/addresses`);
    assert.equal(failed.status, 503);
    assert.equal(failed.body.code, 'SERVERBUG');
    assert.ok(!JSON.stringify(failed.body).includes('secret internal detail'), 'internal errors are never shown');
  });

  it('maps verdicts to statuses in one place', () => {
    assert.equal(verdictToHttp(deny('OVERQUOTA')).status, 403);
    assert.equal(verdictToHttp(deny('TOOBIG')).status, 413);
    assert.equal(verdictToHttp(deny('NONEXISTENT')).status, 404);
    assert.equal(verdictToHttp(deny('ALREADYEXISTS')).status, 409);
    assert.equal(verdictToHttp(deny('LIMIT')).status, 429);
    assert.equal(verdictToHttp(tempfail('LIMIT')).status, 429);
    assert.equal(verdictToHttp(tempfail('UNAVAILABLE')).status, 503);
    assert.equal(verdictToHttp(deny('XPLUGIN', 'no')).status, 403);
    const e = verdictToHttp(deny('OVERQUOTA', 'Mailbox is full'));
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'OVERQUOTA');
    assert.equal(e.message, 'Mailbox is full');
  });

  it('writes one structured log line per request', async () => {
    const before = t.logs.length;
    await t.request('GET', `/users/${alice}`);
    const lines = t.logs.slice(before).filter((l) => l.msg === 'request');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.route, '/users/:user');
    assert.equal(lines[0]!.status, 200);
    assert.equal(lines[0]!.method, 'GET');
    assert.equal(typeof lines[0]!.ms, 'number');
    assert.ok(!JSON.stringify(t.logs).includes(aliceToken), 'tokens never reach the log');
  });

  it('serves Prometheus metrics by route and status', async () => {
    await t.request('GET', '/users/0000000000000000000f423f');
    const res = await t.request('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = res.body as string;
    assert.match(text, /^# TYPE wildduck_http_requests_total counter$/m);
    assert.match(text, /^wildduck_http_requests_total\{method="GET",route="\/users\/:user",status="404"\} \d+$/m);
    assert.match(text, /^wildduck_http_request_duration_seconds_bucket\{method="GET",route="\/users\/:user",le="\+Inf"\} \d+$/m);
    assert.match(text, /^wildduck_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+$/m);
    for (const line of text.trim().split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+)$/, line);
    }
  });

  it('publishes an OpenAPI 3.1 document listing every route', async () => {
    const res = await t.request('GET', '/openapi.json', { token: null });
    assert.equal(res.status, 200);
    const doc = res.body;
    assert.equal(doc.openapi, '3.1.0');
    const { apiRoutes } = await import('../protocols/http.ts');
    const routes = apiRoutes();
    for (const r of routes) {
      const path = r.path.replace(/:(\w+)/g, '{$1}');
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${r.path} documented`);
      assert.ok(op.responses['200'] && op.responses.default);
      for (const name of path.match(/\{(\w+)\}/g) ?? []) {
        assert.ok(op.parameters.some((p: { name: string; in: string }) => p.in === 'path' && `{${p.name}}` === name), `${path} documents ${name}`);
      }
    }
    const ids = Object.values(doc.paths).flatMap((ops: any) => Object.values(ops).map((o: any) => o.operationId));
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    const create = doc.paths['/users'].post;
    assert.deepEqual(create.requestBody.content['application/json'].schema.required.sort(), ['password', 'username']);
    assert.ok(doc.paths['/users'].get.parameters.some((p: { name: string }) => p.name === 'limit'));
  });
});

describe('HTTP API loopback exemption', () => {
  it('treats loopback requests without a token as root when no root token is set and the exemption is on', async () => {
    const t = await bootHttpTestApp({ api: { accessToken: null, loopbackIsRoot: true } });
    try {
      assert.equal((await t.request('GET', '/users', { token: null })).status, 200);
      assert.equal((await t.request('GET', '/users', { token: 'wrong' })).status, 401, 'a wrong token is never ignored');
    } finally {
      await t.close();
    }
    const off = await bootHttpTestApp({ api: { accessToken: null, loopbackIsRoot: false } });
    try {
      assert.equal((await off.request('GET', '/users', { token: null })).status, 401);
    } finally {
      await off.close();
    }
  });
});
