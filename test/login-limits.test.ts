/**
 * Failed-login limits (plugins/login-limits.ts, always loaded) through the authenticate() pipeline on the real
 * stack (on the backend under test; its ephemeral counters): attempts reserved before the password check per resolved
 * account (every name of it), per client address and per network, refusal once a limit is reached (even with
 * the right password), successes giving their reservation back, the window running out, the answer delay;
 * plus the plaintext-password policy helper and the counter keys. The attacks over IMAP, POP3 and HTTP are in
 * test/login-attacks.test.ts.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp, deadlineMs } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { silentLogger } from '../hooks/log.ts';
import { createContext, createSession, internalContext } from '../hooks/context.ts';
import { authenticate } from '../hooks/pipeline/index.ts';
import { printHooks } from '../hooks/print-hooks.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { accountKey, ipKey, networkKey, userKey } from '../plugins/login-limits.ts';
import { findUser } from '../storage/users.ts';
import { plaintextAuthAllowed } from '../protocols/net/auth-policy.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function boot(failedLogins: { perUser?: number; perIp?: number; perNetwork?: number; windowSeconds?: number; delayMs?: number; maxWaitMs?: number }): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-login-'));
  dirs.push(dataDir);
  // the hook's time limit is a deadline for logins that must finish
  const config = resolveConfig({ dataDir, hooks: { timeoutMs: deadlineMs(10_000) }, auth: { failedLogins: { delayMs: 0, ...failedLogins } } });
  const app = await bootTestApp(config, silentLogger);
  for (const username of ['alice', 'bob']) await createUser(app.storage, config, { username, password: `${username}-pw`, addresses: [`${username}@example.com`] });
  return app;
}

const from = (app: App, remoteAddress: string) => createContext(createSession(app.log, { protocol: 'imap', remoteAddress, remotePort: 40000 }));
const login = async (app: App, remoteAddress: string, username: string, password: string) => {
  const result = await authenticate(app, from(app, remoteAddress), { username, password, method: 'LOGIN' });
  return result.ok ? 'ok' : `${result.verdict.action} ${result.verdict.code}`;
};

describe('failed-login limits', () => {
  it('counts failures per account and refuses every name of it from any address once the limit is reached', async () => {
    const app = await boot({ perUser: 3, perIp: 100 });
    try {
      const alice = accountKey((await findUser(app.storage, 'alice'))!.id);
      for (let i = 0; i < 3; i++) assert.equal(await login(app, '127.0.0.2', 'alice', 'wrong'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await app.storage.ephemeral.get(alice), 3, 'counted in the ephemeral store, per account');
      assert.equal(await app.storage.ephemeral.get(ipKey('127.0.0.2')!), 3);
      assert.equal(await app.storage.ephemeral.get(networkKey('127.0.0.2')!), 3);
      assert.equal(await login(app, '127.0.0.2', 'alice', 'alice-pw'), 'deny LIMIT', 'refused even with the right password');
      assert.equal(await login(app, '127.0.0.3', 'ALICE', 'alice-pw'), 'deny LIMIT', 'from another address, any letter case');
      assert.equal(await login(app, '127.0.9.3', 'alice@example.com', 'alice-pw'), 'deny LIMIT', 'by address: the same account');
      assert.equal(await login(app, '127.0.9.3', 'Alice+tag@EXAMPLE.com', 'alice-pw'), 'deny LIMIT', 'by +tag address');
      assert.equal(await login(app, '127.0.0.2', 'bob', 'bob-pw'), 'ok', 'other users are not affected');
      assert.equal(await app.storage.ephemeral.get(alice), 3, 'refused attempts are not counted again');
    } finally {
      await app.close();
    }
  });

  it('gives one budget to all names of an account (aliases, +tags, letter case)', async () => {
    const app = await boot({ perUser: 4, perIp: 100 });
    try {
      const names = ['alice', 'alice@example.com', 'alice+1@example.com', 'ALICE+2@Example.COM'];
      for (const [i, name] of names.entries()) assert.equal(await login(app, `127.0.${i}.2`, name, `guess-${i}`), 'deny AUTHENTICATIONFAILED');
      for (const name of [...names, 'alice+3@example.com']) assert.equal(await login(app, '127.0.8.2', name, 'alice-pw'), 'deny LIMIT', name);
    } finally {
      await app.close();
    }
  });

  it('counts logins that name no account per login name', async () => {
    const app = await boot({ perUser: 2, perIp: 100 });
    try {
      for (let i = 0; i < 2; i++) assert.equal(await login(app, '127.0.0.2', 'nobody', 'x'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await app.storage.ephemeral.get(userKey('Nobody')), 2);
      assert.equal(await login(app, '127.0.0.2', 'NOBODY', 'x'), 'deny LIMIT');
      assert.equal(await login(app, '127.0.0.2', 'somebody', 'x'), 'deny AUTHENTICATIONFAILED', 'another name has its own budget');
    } finally {
      await app.close();
    }
  });

  it('counts per client network (IPv4 /24, IPv6 /64) across addresses', async () => {
    const app = await boot({ perUser: 100, perIp: 100, perNetwork: 3 });
    try {
      for (const host of [2, 3, 4]) assert.equal(await login(app, `127.0.5.${host}`, 'nobody', 'x'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await login(app, '127.0.5.99', 'bob', 'bob-pw'), 'deny LIMIT', 'another address of the /24');
      assert.equal(await login(app, '127.0.6.2', 'bob', 'bob-pw'), 'ok', 'another /24');
      for (const host of ['1', '2', '3']) assert.equal(await login(app, `2001:db8:1:2::${host}`, 'nobody', 'x'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await login(app, '2001:db8:1:2:ffff::9', 'bob', 'bob-pw'), 'deny LIMIT', 'another address of the /64');
      assert.equal(await login(app, '2001:db8:1:3::1', 'bob', 'bob-pw'), 'ok', 'another /64');
    } finally {
      await app.close();
    }
  });

  it('reserves attempts before checking: of concurrent attempts only perUser reach the password check', async () => {
    // attempts over the budget wait for the ten in progress to finish (however long scrypt takes on a loaded
    // machine) rather than being told to try again later
    const app = await boot({ perUser: 10, perIp: 1000, perNetwork: 1000, maxWaitMs: 120_000 });
    try {
      const attempts = Array.from({ length: 100 }, (_, i) => login(app, '127.0.0.2', 'alice', i === 99 ? 'alice-pw' : `wrong-${i}`));
      const results = await Promise.all(attempts);
      assert.equal(results.filter((r) => r === 'deny AUTHENTICATIONFAILED').length, 10, 'ten passwords checked');
      assert.equal(results.filter((r) => r === 'deny LIMIT').length, 90);
      assert.equal(results[99], 'deny LIMIT', 'the right password, arriving once the budget is spent, is refused');
    } finally {
      await app.close();
    }
  });

  it('lets concurrent correct logins beyond the budget wait for the ones in progress instead of refusing them', async () => {
    const app = await boot({ perUser: 3, perIp: 100 });
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => login(app, `127.0.${i}.2`, i % 2 ? 'alice' : 'alice@example.com', 'alice-pw')));
      assert.deepEqual(results, new Array(12).fill('ok'));
    } finally {
      await app.close();
    }
  });

  it('answers "try again later" when attempts in progress hold the budget longer than maxWaitMs', async () => {
    const app = await boot({ perUser: 1, perIp: 100, maxWaitMs: 150 });
    try {
      const alice = accountKey((await findUser(app.storage, 'alice'))!.id);
      // an attempt in progress elsewhere (another connection, another server instance)
      assert.equal(await app.storage.ephemeral.reserve([{ key: alice, limit: 1 }], 60_000), -1);
      assert.equal(await login(app, '127.0.0.2', 'alice', 'alice-pw'), 'tempfail LIMIT');
      const waiting = login(app, '127.0.0.2', 'alice', 'alice-pw');
      setTimeout(() => void app.storage.ephemeral.release(alice, 1), 30);
      assert.equal(await waiting, 'ok', 'goes ahead once the attempt in progress is done');
    } finally {
      await app.close();
    }
  });

  it("gives a success's reservation back, so a user's own logins never lock the user out", async () => {
    const app = await boot({ perUser: 2, perIp: 2, perNetwork: 2 });
    try {
      const alice = accountKey((await findUser(app.storage, 'alice'))!.id);
      assert.equal(await login(app, '127.0.0.2', 'alice', 'wrong'), 'deny AUTHENTICATIONFAILED');
      for (let i = 0; i < 10; i++) assert.equal(await login(app, '127.0.0.2', 'alice', 'alice-pw'), 'ok');
      const burst = await Promise.all([login(app, '127.0.0.2', 'alice', 'alice-pw'), login(app, '127.0.1.3', 'bob', 'bob-pw')]);
      assert.deepEqual(burst, ['ok', 'ok']);
      assert.equal(await app.storage.ephemeral.get(alice), 1, 'only the failure stays counted');
      assert.equal(await app.storage.ephemeral.get(ipKey('127.0.0.2')!), 1);
    } finally {
      await app.close();
    }
  });

  it('counts failures per client address across login names', async () => {
    const app = await boot({ perUser: 100, perIp: 3 });
    try {
      for (const name of ['alice', 'bob', 'nobody']) assert.equal(await login(app, '127.0.0.4', name, 'guess'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await login(app, '127.0.0.4', 'bob', 'bob-pw'), 'deny LIMIT');
      assert.equal(await login(app, '127.0.0.5', 'bob', 'bob-pw'), 'ok', 'another address still logs in');
      assert.equal(await login(app, '127.0.0.4', 'alice', 'alice-pw'), 'deny LIMIT');
      // internal callers have no address: per-user counting only
      const internal = await authenticate(app, internalContext(app.log), { username: 'alice', password: 'alice-pw', method: 'LOGIN' });
      assert.ok(internal.ok);
    } finally {
      await app.close();
    }
  });

  it('lets logins through again once the window has passed', async () => {
    // the window runs from the first attempt: 3 s leaves room for two password hashes on a loaded machine
    const app = await boot({ perUser: 2, windowSeconds: 3 });
    try {
      const started = Date.now();
      assert.equal(await login(app, '127.0.0.6', 'alice', 'x'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await login(app, '127.0.0.6', 'alice', 'y'), 'deny AUTHENTICATIONFAILED');
      assert.equal(await login(app, '127.0.0.6', 'alice', 'alice-pw'), 'deny LIMIT');
      await new Promise((r) => setTimeout(r, Math.max(0, started + 3100 - Date.now())));
      assert.equal(await login(app, '127.0.0.6', 'alice', 'alice-pw'), 'ok');
    } finally {
      await app.close();
    }
  });

  it('answers failed and refused attempts only after the delay', async () => {
    const app = await boot({ perUser: 1, delayMs: 60 });
    try {
      let started = performance.now();
      assert.equal(await login(app, '127.0.0.7', 'alice', 'wrong'), 'deny AUTHENTICATIONFAILED');
      assert.ok(performance.now() - started >= 55, 'failed attempt delayed');
      started = performance.now();
      assert.equal(await login(app, '127.0.0.7', 'alice', 'alice-pw'), 'deny LIMIT');
      assert.ok(performance.now() - started >= 55, 'refused attempt delayed');
    } finally {
      await app.close();
    }
  });

  it('is always loaded and shows up in print-hooks', async () => {
    const app = await boot({});
    try {
      assert.ok(app.plugins.some((p) => p.name === 'login-limits' && p.origin === 'host'));
      const text = printHooks(app);
      assert.match(text, /auth\.beforeAuthenticate\s+bail\n\s+1\. login-limits\s+GUARD \(-300\)/);
      assert.match(text, /auth\.failed\s+series\n\s+1\. login-limits\s+DEFAULT \(0\)/);
      const dataDir = mkdtempSync(join(tmpdir(), 'wd-login-'));
      dirs.push(dataDir);
      await assert.rejects(bootTestApp(resolveConfig({ dataDir, plugins: ['login-limits'] }), silentLogger), /loaded by the server itself/);
    } finally {
      await app.close();
    }
  });
});

describe('login-limit keys and the plaintext policy', () => {
  it('keys accounts by id, unknown login names case-insensitively, addresses and networks', () => {
    assert.equal(accountKey('42'), 'login-fail:account:42');
    assert.equal(userKey(' Alice@Example.com '), 'login-fail:user:alice@example.com');
    assert.match(userKey('x'.repeat(500)), /^login-fail:user:sha256:[0-9a-f]{64}$/);
    assert.equal(ipKey('127.0.0.1'), 'login-fail:ip:127.0.0.1');
    assert.equal(ipKey('::ffff:127.0.0.1'), 'login-fail:ip:127.0.0.1');
    assert.equal(ipKey('2001:DB8::1'), 'login-fail:ip6:2001:db8:0:0:0:0:0:1');
    assert.equal(networkKey('192.0.2.77'), 'login-fail:net:192.0.2.0/24');
    assert.equal(networkKey('::ffff:192.0.2.77'), 'login-fail:net:192.0.2.0/24');
    assert.equal(networkKey('2001:db8:1:2:aaaa::1'), 'login-fail:net6:2001:db8:1:2::/64');
    assert.equal(networkKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee'), 'login-fail:net6:2001:db8:1:2::/64');
    assert.equal(networkKey('2001:db8::1'), 'login-fail:net6:2001:db8:0:0::/64');
    assert.equal(networkKey('::1'), 'login-fail:net6:0:0:0:0::/64');
    assert.equal(ipKey(''), null);
    assert.equal(networkKey(''), null);
  });

  it('allows plaintext passwords over TLS, from loopback, or when the admin allows it', () => {
    const strict = resolveConfig({});
    const lax = resolveConfig({ auth: { allowPlaintext: true } });
    assert.equal(plaintextAuthAllowed(strict, { secure: true, isLoopback: false }), true);
    assert.equal(plaintextAuthAllowed(strict, { secure: false, isLoopback: true }), true);
    assert.equal(plaintextAuthAllowed(strict, { secure: false, isLoopback: false }), false);
    assert.equal(plaintextAuthAllowed(lax, { secure: false, isLoopback: false }), true);
  });
});
