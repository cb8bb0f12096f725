import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { createUser, setPassword, deleteUser, resolveAddress, checkCredentials, findUser } from '../storage/users.ts';
import { resolveConfig } from '../hooks/config.ts';
import { AddressError } from '../storage/addresses.ts';
import type { StoragePorts } from '../storage/ports.ts';

describe('users and addresses', () => {
  let dataDir: string;
  let storage: StoragePorts;
  const config = resolveConfig({ users: { quota: { storage: 1000, messages: null } } });

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-users-'));
    storage = await openSqliteStorage({ dataDir });
  });
  after(async () => {
    await storage.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates a user with the five default mailboxes and their special-use flags', async () => {
    const { user, addresses } = await createUser(storage, config, {
      username: 'Alice',
      password: 'secret one',
      addresses: ['Alice@Example.com', 'alice@bücher.de'],
    });
    assert.equal(user.username, 'alice');
    assert.equal(user.quota.storage, 1000, 'default quota from config');
    assert.ok(user.passwordHash && !user.passwordHash.includes('secret one'));
    const mailboxes = await storage.mailboxes.list(user.id);
    const byPath = Object.fromEntries(mailboxes.map((m) => [m.path, m.specialUse]));
    assert.deepEqual(byPath, { INBOX: null, Drafts: '\\Drafts', 'Sent Mail': '\\Sent', Trash: '\\Trash', Junk: '\\Junk' });
    assert.ok(mailboxes.every((m) => m.subscribed));
    assert.deepEqual(addresses.map((a) => [a.address, a.main]), [['alice@example.com', true], ['alice@bücher.de', false]]);
  });

  it('resolves addresses case-insensitively, in punycode, and with +tags', async () => {
    const alice = (await findUser(storage, 'ALICE'))!;
    for (const form of ['alice@example.com', 'ALICE@EXAMPLE.COM', 'alice+news@example.com', 'Alice@xn--bcher-kva.de', 'alice+x@BÜCHER.de']) {
      assert.equal((await resolveAddress(storage, form))?.userId, alice.id, form);
    }
    assert.equal(await resolveAddress(storage, 'bob@example.com'), null);
  });

  it('refuses taken usernames and addresses, and leaves nothing behind on failure', async () => {
    await assert.rejects(createUser(storage, config, { username: 'alice', password: 'x' }), { code: 'ALREADYEXISTS' });
    await assert.rejects(createUser(storage, config, { username: 'carol', password: 'x', addresses: ['ALICE@example.com'] }), { code: 'ALREADYEXISTS' });
    assert.equal(await findUser(storage, 'carol'), null, 'the half-created user was removed');
    await assert.rejects(createUser(storage, config, { username: 'dave', password: 'x', addresses: ['not-an-address'] }), AddressError);
    assert.equal(await findUser(storage, 'dave'), null);
  });

  it('checks credentials by username or address and follows password changes', async () => {
    assert.equal((await checkCredentials(storage, 'alice', 'secret one'))?.username, 'alice');
    assert.equal((await checkCredentials(storage, 'Alice@Example.com', 'secret one'))?.username, 'alice');
    assert.equal(await checkCredentials(storage, 'alice', 'wrong'), null);
    assert.equal(await checkCredentials(storage, 'nobody', 'secret one'), null);
    await setPassword(storage, 'alice', 'secret two');
    assert.equal(await checkCredentials(storage, 'alice', 'secret one'), null);
    assert.ok(await checkCredentials(storage, 'alice', 'secret two'));
    const alice = (await findUser(storage, 'alice'))!;
    await storage.users.update(alice.id, { disabled: true });
    assert.equal(await checkCredentials(storage, 'alice', 'secret two'), null, 'disabled users cannot log in');
    await storage.users.update(alice.id, { disabled: false });
  });

  it('deletes a user with mailboxes and addresses', async () => {
    const { user } = await createUser(storage, config, { username: 'erin', password: 'x', addresses: ['erin@example.com'] });
    await deleteUser(storage, 'erin');
    assert.equal(await findUser(storage, 'erin'), null);
    assert.equal(await resolveAddress(storage, 'erin@example.com'), null);
    assert.deepEqual(await storage.mailboxes.list(user.id), []);
    await assert.rejects(deleteUser(storage, 'erin'), { code: 'NONEXISTENT' });
    // the address is free again
    await createUser(storage, config, { username: 'erin2', password: 'x', addresses: ['erin@example.com'] });
  });
});
