/**
 * One id format (issue 11, part 1): the embedded backend hands out 24-hex-digit ids (storage/sqlite/common.ts),
 * the HTTP API refuses anything else where an object id belongs, and a data directory written before (decimal
 * ids, commit e908207: test/fixtures/sqlite-e908207/) opens migrated with nothing lost.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rowId, toId } from '../storage/sqlite/common.ts';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SqliteStorage } from '../storage/sqlite/index.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { checkCredentials } from '../storage/users.ts';
import { getAutoreply, getDeliverySettings, listFilters } from '../storage/delivery-settings.ts';
import { resolveMailboxPath } from '../plugins/filters.ts';
import { identifyCaller } from '../protocols/http/tokens.ts';
import { legacyId } from '../plugins/junk-notify.ts';
import { resolveConfig } from '../hooks/config.ts';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import { sqliteOnly } from './helpers/test-backend.ts';

const HEX24 = /^[0-9a-f]{24}$/;

describe('object ids: 24 hex digits', () => {
  it('round-trips row ids through toId and rowId', () => {
    for (const n of [1, 9, 10, 11, 255, 4096, 2 ** 32, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
      const id = toId(n);
      assert.match(id, HEX24);
      assert.equal(rowId(id), n);
      assert.equal(rowId(id.toUpperCase()), n, 'either case');
    }
    assert.equal(toId(11), '00000000000000000000000b');
    assert.equal(toId(11n), '00000000000000000000000b');
  });

  it('refuses everything else', () => {
    const refused = [
      '11', // the old decimal form
      '1',
      '0000000000000000000000b', // 23 digits
      '000000000000000000000000b', // 25 digits
      '00000000000000000000000g', // not hex
      ' 00000000000000000000000b',
      '0x000000000000000000000b',
      '000000000000000000000000', // zero
      '000000000020000000000000', // 2^53
      '000000000020000000000001',
      '507f1f77bcf86cd799439011', // an ObjectId made elsewhere: far above 2^53
      'ffffffffffffffffffffffff',
      '',
    ];
    for (const id of refused) assert.equal(rowId(id), null, id);
    assert.equal(rowId(11 as unknown as string), null);
  });

  it('reads a mailbox id queued before the change (junk-notify learn requests) as the same mailbox', () => {
    assert.equal(legacyId('11'), toId(11));
    assert.equal(legacyId(toId(11)), toId(11));
    assert.equal(legacyId('507f1f77bcf86cd799439011'), '507f1f77bcf86cd799439011');
  });
});

describe('HTTP: object ids', () => {
  it('answers 400 InputValidationError for a malformed id, 404 for a well-formed one that names nothing', async () => {
    const t = await bootHttpTestApp();
    try {
      const created = await t.request('POST', '/users', { body: { username: 'idcheck', password: 'secret-pw-1' } });
      assert.equal(created.status, 200);
      const user: string = created.body.id;
      assert.match(user, HEX24);
      const inbox = (await t.request('GET', `/users/${user}/mailboxes`)).body.results.find((m: { path: string }) => m.path === 'INBOX');
      assert.match(inbox.id, HEX24);

      const bad = [
        ['GET', '/users/11'],
        ['GET', `/users/${user}0`],
        ['GET', `/users/${user}/mailboxes/11`],
        ['GET', `/users/${user}/mailboxes/zz${inbox.id.slice(2)}`],
        ['GET', `/users/${user}/addresses/1`],
        ['GET', `/users/${user}/filters/1`],
        ['DELETE', `/users/${user}/asps/1`],
        ['GET', `/users/${user}/search?mailbox=1`],
      ];
      for (const [method, path] of bad) {
        const res = await t.request(method!, path!);
        assert.equal(res.status, 400, `${method} ${path}`);
        assert.equal(res.body.code, 'InputValidationError', `${method} ${path}`);
        assert.equal(typeof res.body.error, 'string');
        assert.match(res.body.details[0].message, /24 hex digits/);
      }
      const moved = await t.request('PUT', `/users/${user}/mailboxes/${inbox.id}/messages/1`, { body: { moveTo: '2' } });
      assert.equal(moved.status, 400);
      assert.equal(moved.body.details[0].path, 'body.moveTo');

      // well-formed: looked up, not found
      assert.equal((await t.request('GET', `/users/${toId(999_999)}`)).body.code, 'UserNotFound');
      assert.equal((await t.request('GET', `/users/${user}/mailboxes/${toId(999_999)}`)).body.code, 'NoSuchMailbox');
      // upper case is the same id; `resolve` still works for mailboxes
      const upper = await t.request('GET', `/users/${user.toUpperCase()}/mailboxes/${inbox.id.toUpperCase()}`);
      assert.equal(upper.status, 200);
      assert.equal(upper.body.id, inbox.id);
      assert.equal((await t.request('GET', `/users/${user}/mailboxes/resolve?path=INBOX`)).body.id, inbox.id);
      const login = await t.request('POST', '/authenticate', { token: null, body: { username: 'idcheck', password: 'secret-pw-1', token: true } });
      assert.equal((await t.request('GET', `/users/${user.toUpperCase()}`, { token: login.body.token })).body.id, user, "a user token's own id in upper case");
    } finally {
      await t.close();
    }
  });
});

// --- migration 13 on a data directory written by e908207 ------------------------------------------------------

const FIXTURE = join(import.meta.dirname, 'fixtures', 'sqlite-e908207');

interface OldMessage {
  id: string;
  uid: number;
  modseq: number;
  flags: string[];
  internalDate: number;
  size: number;
  threadId: string;
  sha256: string;
}
interface OldMailbox {
  id: string;
  path: string;
  specialUse: string | null;
  subscribed: boolean;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  messages: OldMessage[];
}
interface OldUser {
  id: string;
  username: string;
  name: string;
  password: string;
  quota: { storage: number | null; messages: number | null };
  storageUsed: number;
  messagesUsed: number;
  addresses: { id: string; address: string; display: string; main: boolean }[];
  mailboxes: OldMailbox[];
}
interface Manifest {
  goneUserId: string;
  deletedMailboxId: string;
  users: OldUser[];
  filters: { userId: string; id: string; mailbox: string; mailboxPath: string | null }[];
  asp: { userId: string; id: string; password: string };
  token: { userId: string; token: string };
  blobs: { count: number; size: number; storedSize: number };
}

/** The old decimal id in the new form. */
const hex = (decimal: string) => toId(Number(decimal));

async function withMigratedFixture(fn: (s: SqliteStorage, manifest: Manifest, warnings: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wd-ids-'));
  const warnings: string[] = [];
  try {
    cpSync(join(FIXTURE, 'store'), dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')) as Manifest;
    const s = await openSqliteStorage({ dataDir: dir, changePollMs: 0, warn: (m) => warnings.push(m) });
    try {
      await fn(s, manifest, warnings);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('migration 13: a data directory written by e908207', { skip: sqliteOnly('migrates a SQLite data directory') }, () => {
  it('opens migrated: every id is 24 hex digits and every user, address, mailbox and message is there', async () => {
    await withMigratedFixture(async (s, manifest) => {
      assert.equal(s.db.get<{ v: number }>('SELECT user_version AS v FROM pragma_user_version')!.v >= 13, true);
      const listed = (await s.users.list({ limit: 100 })).items;
      assert.deepEqual(listed.map((u) => u.id).sort(), manifest.users.map((u) => hex(u.id)).sort());
      assert.equal(await s.users.get(hex(manifest.goneUserId)), null);
      for (const old of manifest.users) {
        const user = (await s.users.get(hex(old.id)))!;
        assert.match(user.id, HEX24);
        assert.equal(user.username, old.username);
        assert.equal(user.name, old.name);
        assert.deepEqual(user.quota, old.quota);
        assert.equal(user.storageUsed, old.storageUsed);
        assert.equal(user.messagesUsed, old.messagesUsed);
        assert.equal((await s.users.getByUsername(old.username))!.id, user.id);

        const addresses = await s.users.listAddresses(user.id);
        assert.deepEqual(
          addresses.map((a) => ({ id: a.id, userId: a.userId, address: a.address, display: a.display, main: a.main })),
          old.addresses.map((a) => ({ ...a, id: hex(a.id), userId: user.id })),
        );
        for (const a of addresses) assert.equal((await s.users.resolveAddress(a.address))!.id, a.id);

        const boxes = await s.mailboxes.list(user.id);
        assert.deepEqual(boxes.map((b) => b.id).sort(), old.mailboxes.map((b) => hex(b.id)).sort());
        for (const oldBox of old.mailboxes) {
          const box = (await s.mailboxes.get(hex(oldBox.id)))!;
          assert.equal(box.userId, user.id);
          assert.deepEqual(
            { path: box.path, specialUse: box.specialUse, subscribed: box.subscribed, uidValidity: box.uidValidity, uidNext: box.uidNext, highestModseq: box.highestModseq },
            { path: oldBox.path, specialUse: oldBox.specialUse, subscribed: oldBox.subscribed, uidValidity: oldBox.uidValidity, uidNext: oldBox.uidNext, highestModseq: oldBox.highestModseq },
          );
          assert.equal((await s.mailboxes.getByPath(user.id, oldBox.path))!.id, box.id);
          const index = await s.messages.index(box.id);
          assert.deepEqual(index.map((e) => e.uid), oldBox.messages.map((m) => m.uid));
          for (const oldMessage of oldBox.messages) {
            const record = (await s.messages.get(box.id, oldMessage.uid))!;
            assert.equal(record.id, hex(oldMessage.id));
            assert.equal(record.mailboxId, box.id);
            assert.equal(record.threadId, hex(oldMessage.threadId));
            assert.deepEqual(
              { modseq: record.modseq, flags: record.flags, internalDate: record.internalDate, size: record.size },
              { modseq: oldMessage.modseq, flags: oldMessage.flags, internalDate: oldMessage.internalDate, size: oldMessage.size },
            );
            const bytes = await readAll(readMessage((await s.messages.content(record.id))!, s.blobs));
            assert.equal(createHash('sha256').update(bytes).digest('hex'), oldMessage.sha256, `${oldBox.path} ${oldMessage.uid}`);
            assert.equal((await s.messages.getById(record.id))!.uid, oldMessage.uid);
          }
        }
      }
      assert.deepEqual(await s.blobs.stats(), manifest.blobs);
      // the change log names users and mailboxes in the new form too
      const alice = hex(manifest.users[0]!.id);
      const changes = await s.changes.since(alice, 0);
      assert.ok(changes.length > 0);
      for (const c of changes) {
        assert.equal(c.userId, alice);
        assert.match(c.mailboxId, HEX24);
      }
    });
  });

  it('points filters at the same mailbox under its new id; reports the one that names nothing', async () => {
    await withMigratedFixture(async (s, manifest, warnings) => {
      for (const old of manifest.filters) {
        const userId = hex(old.userId);
        const filter = (await listFilters(s.documents, userId)).find((f) => f.id === old.id)!;
        assert.ok(filter, `filter ${old.id}`);
        const target = filter.data.action.mailbox!;
        if (old.mailboxPath === null) {
          assert.equal(target, old.mailbox, 'a reference that names nothing is left as it is');
          assert.equal(await resolveMailboxPath(s.mailboxes, userId, target), null);
        } else if (/^\d+$/.test(old.mailbox)) {
          assert.equal(target, hex(old.mailbox));
          assert.equal((await s.mailboxes.get(target))!.path, old.mailboxPath);
        } else {
          assert.equal(target, old.mailbox, 'a path stays a path');
        }
        if (old.mailboxPath !== null) assert.equal(await resolveMailboxPath(s.mailboxes, userId, target), old.mailboxPath);
      }
      const dangling = manifest.filters.find((f) => f.mailboxPath === null)!;
      assert.deepEqual(
        warnings.filter((w) => w.startsWith('migration 13:')),
        [`migration 13: filter ${dangling.id} of user ${hex(dangling.userId)} targets mailbox ${manifest.deletedMailboxId}, which names no mailbox of that user; left as it is`],
      );
    });
  });

  it('logs in with the old password, the application password and the API token; keeps autoreply and settings', async () => {
    await withMigratedFixture(async (s, manifest) => {
      for (const old of manifest.users) {
        assert.equal((await checkCredentials(s, old.username, old.password))?.id, hex(old.id));
        assert.equal(await checkCredentials(s, old.username, 'wrong password'), null);
        assert.equal((await checkCredentials(s, old.addresses[0]!.address, old.password))?.id, hex(old.id));
      }
      const alice = manifest.users[0]!;
      assert.equal((await checkCredentials(s, alice.username, manifest.asp.password, 'imap'))?.id, hex(manifest.asp.userId));
      assert.equal(await checkCredentials(s, alice.username, manifest.asp.password, 'pop3'), null, 'scopes kept');
      const caller = await identifyCaller(resolveConfig({}).api, s, manifest.token.token, '192.0.2.1');
      assert.deepEqual(caller.kind === 'user' ? caller.userId : caller, hex(manifest.token.userId));

      const reply = (await getAutoreply(s.documents, hex(alice.id)))!;
      assert.equal(reply.subject, 'Away');
      assert.equal(reply.text, 'Back on Monday.');
      const bob = manifest.users[1]!;
      assert.deepEqual(await getDeliverySettings(s.documents, hex(bob.id)), { forward: ['bob@elsewhere.example'], spamLevel: 40 });
    });
  });

  it('keeps working after the migration: new ids continue above the old ones, never reusing one', async () => {
    await withMigratedFixture(async (s, manifest) => {
      const alice = manifest.users[0]!;
      const userId = hex(alice.id);
      const box = await s.mailboxes.create(userId, { path: 'After' });
      assert.match(box.id, HEX24);
      const highest = Math.max(...manifest.users.flatMap((u) => u.mailboxes.map((b) => Number(b.id))), Number(manifest.deletedMailboxId));
      assert.ok(rowId(box.id)! > highest);
      const inbox = alice.mailboxes.find((b) => b.path === 'INBOX')!;
      const copied = await s.messages.copy(hex(inbox.id), [inbox.messages[0]!.uid], box.id);
      assert.equal(copied.mappings.length, 1);
      const record = (await s.messages.get(box.id, copied.mappings[0]!.destinationUid))!;
      assert.match(record.id, HEX24);
      const oldMessageIds = manifest.users.flatMap((u) => u.mailboxes.flatMap((b) => b.messages.map((m) => Number(m.id))));
      assert.ok(rowId(record.id)! > Math.max(...oldMessageIds));
    });
  });
});
