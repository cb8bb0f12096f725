/**
 * Defect 7 (issue 9): usernames and addresses are one namespace after NFKC and case folding, usernames may not
 * look like another user's (UTS #39 skeleton) nor mix scripts. The attacks: a user named with another user's address,
 * a fullwidth `ａｌｉｃｅ`, a Cyrillic-a `аlice`; then login, `/users/resolve` and the CLI acting on the wrong account.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { sqliteOnly } from './helpers/test-backend.ts';
import { runTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../storage/sqlite/schema.ts';
import { DATABASE_FILE, openSqliteStorage } from '../storage/sqlite/index.ts';
import { toId } from '../storage/sqlite/common.ts';
import { checkCredentials, createUser, findUser } from '../storage/users.ts';
import { AddressError, resolvedScripts, validateNewUsername } from '../storage/addresses.ts';
import { resolveConfig } from '../hooks/config.ts';

describe('login names: one namespace for usernames and addresses', () => {
  it('validateNewUsername refuses mixed scripts but keeps single-script and CJK names', () => {
    for (const name of ['alice', 'jüri', 'иван', 'ωμέγα', '山田たろう', '김철수', 'bob.smith+1', 'ａｌｉｃｅ']) {
      assert.equal(typeof validateNewUsername(name), 'string', name);
    }
    for (const name of ['pаypal', 'иван.petrov', 'Ωmega', 'gοogle']) {
      assert.throws(() => validateNewUsername(name), AddressError, name);
    }
    assert.deepEqual(resolvedScripts('a1.b'), new Set(['Latin']));
  });

  describe('over HTTP, and login', () => {
    let t: HttpTestApp;
    let aliceId: string;
    let bobId: string;
    before(async () => {
      t = await bootHttpTestApp();
      aliceId = (await t.request('POST', '/users', { body: { username: 'alice', password: 'alice-pass', address: 'alice@example.com' } })).body.id;
      bobId = (await t.request('POST', '/users', { body: { username: 'bob', password: 'bob-pass', address: 'bob@example.com' } })).body.id;
      assert.ok(aliceId && bobId);
    });
    after(() => t.close());

    it('refuses a username equal to another user\'s address, its look-alikes and confusables (409 / 400)', async () => {
      const attempts: Array<[Record<string, unknown>, number, string]> = [
        [{ username: 'alice@example.com', emptyAddress: true }, 409, 'UserExistsError'],
        [{ username: 'ALICE@EXAMPLE.COM', emptyAddress: true }, 409, 'UserExistsError'],
        [{ username: 'ａｌｉｃｅ' }, 409, 'UserExistsError'],
        [{ username: 'ＢＯＢ@ｅｘａｍｐｌｅ.ｃｏｍ', emptyAddress: true }, 409, 'UserExistsError'],
        [{ username: 'a1ice' }, 409, 'UserExistsError'],
        [{ username: 'аlice' }, 400, 'InputValidationError'], // Cyrillic а among Latin letters
        [{ username: 'bob@example.com' }, 409, 'AddressExistsError'], // the address defaults to the username
      ];
      for (const [body, status, code] of attempts) {
        const res = await t.request('POST', '/users', { body: { password: 'x1', ...body } });
        assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, code, JSON.stringify(body));
      }
      // a user may still have their own address as username
      const own = await t.request('POST', '/users', { body: { username: 'carol@example.com', password: 'carol-pass' } });
      assert.equal(own.status, 200, JSON.stringify(own.body));
      assert.equal((await t.request('GET', `/users/${own.body.id}`)).body.address, 'carol@example.com');
    });

    it('refuses an address equal (after folding) to another user\'s username or address', async () => {
      const dave = await t.request('POST', '/users', { body: { username: 'dave@example.org', password: 'x1', emptyAddress: true } });
      assert.equal(dave.status, 200);
      for (const address of ['Dave@Example.org', 'ｄａｖｅ@example.org', 'CAROL@example.com']) {
        const res = await t.request('POST', `/users/${bobId}/addresses`, { body: { address } });
        assert.equal(res.status, 409, address);
        assert.equal(res.body.code, 'AddressExistsError', address);
      }
      const mine = await t.request('POST', `/users/${dave.body.id}/addresses`, { body: { address: 'DAVE@example.org' } });
      assert.equal(mine.status, 200, 'dave may add the address his username spells');
    });

    it('/users/resolve and /authenticate land on the one account every written form names', async () => {
      for (const name of ['alice', 'ALICE', 'ａｌｉｃｅ', 'alice@example.com', 'Alice@Example.COM', 'alice+tag@example.com']) {
        const res = await t.request('GET', `/users/resolve/${encodeURIComponent(name)}`);
        assert.equal(res.status, 200, name);
        assert.equal(res.body.id, aliceId, name);
      }
      for (const name of ['ａｌｉｃｅ', 'Alice@Example.COM']) {
        const res = await t.request('POST', '/authenticate', { body: { username: name, password: 'alice-pass' }, token: null });
        assert.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.id, aliceId);
        const wrong = await t.request('POST', '/authenticate', { body: { username: name, password: 'bob-pass' }, token: null });
        assert.equal(wrong.status, 403);
      }
    });
  });

  it('the CLI refuses a look-alike username with a clear message', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-names-cli-'));
    try {
      const env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'data'), WILDDUCK_LOG_FORMAT: 'json' };
      const cli = (args: string[]) => runTs(new URL('../protocols/cli/main.ts', import.meta.url), args, { cwd: dir, env });
      let r = await cli(['user', 'add', 'alice', '--password', 'pw', '--address', 'alice@example.com']);
      assert.equal(r.code, 0, r.stderr);
      r = await cli(['user', 'add', 'ａｌｉｃｅ', '--password', 'pw']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /wildduck: username "ａｌｉｃｅ" is taken/);
      r = await cli(['user', 'add', 'Alice@Example.com', '--password', 'pw']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is taken: it is another user's username or address/);
      r = await cli(['user', 'add', 'pаypal', '--password', 'pw']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /mixes letters of different scripts/);
      r = await cli(['user', 'passwd', 'ＡＬＩＣＥ', '--password', 'new']);
      assert.equal(r.code, 0, `the look-alike name finds alice: ${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the migration keeps existing collisions, reports them, and login still finds each account', { skip: sqliteOnly('migrates a SQLite database file') }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-names-migrate-'));
    try {
      // a database from before migration 5, with a username that is another user's address, and a fullwidth twin
      const db = await openDb(join(dir, DATABASE_FILE));
      for (const m of MIGRATIONS.slice(0, 4)) db.exec(m as string);
      db.exec('PRAGMA user_version = 4');
      db.run("INSERT INTO users (id, username, password_hash, created) VALUES (1, 'alice', NULL, 0), (2, 'ａｌｉｃｅ', NULL, 0), (3, 'alice@example.com', NULL, 0)");
      db.run("INSERT INTO addresses (user_id, address, display, main, created) VALUES (1, 'alice@example.com', 'alice@example.com', 1, 0)");
      db.close();
      const warnings: string[] = [];
      const storage = await openSqliteStorage({ dataDir: dir, warn: (m) => warnings.push(m) });
      try {
        assert.equal(Number((storage.db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version), SCHEMA_VERSION);
        assert.equal(warnings.length, 3, warnings.join('\n'));
        assert.match(warnings.join('\n'), /migration 5: username "ａｌｉｃｅ" \(user 2\) folds to another user's username or address/);
        assert.match(warnings.join('\n'), /address "alice@example.com" \(user 1\) folds to another user's username or address/);
        // exact usernames still reach their (legacy) accounts; the folded key belongs to the oldest holder
        assert.equal((await findUser(storage, 'ａｌｉｃｅ'))?.id, toId(2));
        assert.equal((await findUser(storage, 'ALICE'))?.id, toId(1));
        await assert.rejects(createUser(storage, resolveConfig({ dataDir: dir }), { username: 'Alice', password: null }), { code: 'ALREADYEXISTS' });
        assert.equal(await checkCredentials(storage, 'nobody', 'x'), null);
      } finally {
        await storage.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
