/**
 * The whole stack as `wildduck start` composes it: real storage on the backend under test
 * (test/helpers/test-backend.ts), real MIME ingest, the plugin host and the pipeline functions. Covers the
 * foundation's acceptance checks that span modules: the fixture corpus stored through storeMessage reads back byte
 * for byte, and a plugin that throws or hangs in message.beforeStore fails only that one operation, labelled in the
 * log, while the server keeps serving.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp, deadlineMs } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger, type LogFields } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage, authenticate, moveMessages } from '../hooks/pipeline/index.ts';
import { POLICY } from '../hooks/stages.ts';
import type { App } from '../protocols/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { createUser } from '../storage/users.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { fixture, fixtureNames, sha256 } from './helpers/mime-fixtures.ts';

/** Misbehaves on messages whose bytes contain its trigger word, passes everything else. */
function troublemaker(name: string, trigger: string, mode: 'throw' | 'hang'): Plugin {
  return {
    name,
    apply(api) {
      api.hooks.message.beforeStore.tapPromise({ stage: POLICY }, async (_ctx, request) => {
        if (request.declaredSize === trigger.length) {
          if (mode === 'throw') throw new Error(`${name} exploded`);
          await new Promise(() => {}); // never settles
        }
        return undefined;
      });
    },
  };
}

describe('application stack', () => {
  let dataDir: string;
  let app: App;
  const logs: LogFields[] = [];
  let userId: string;
  let inboxId: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-app-'));
    const config = resolveConfig({
      dataDir,
      // how soon the hanging plugin times out, and a deadline for every other tap (the storage's writes among them)
      hooks: { timeoutMs: deadlineMs(200) },
      limits: { maxMessageSize: 4 * 1024 * 1024, blobThreshold: 2048 },
      plugins: [troublemaker('thrower', 'x'.repeat(11), 'throw'), troublemaker('hanger', 'x'.repeat(13), 'hang')],
    });
    const log = createLogger({ level: 'debug', format: 'json', sink: (_line, entry) => logs.push(entry) });
    app = await bootTestApp(config, log);
    const { user } = await createUser(app.storage, config, { username: 'integration', password: 'pw', addresses: ['integration@example.com'] });
    userId = user.id;
    inboxId = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!.id;
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const store = (bytes: Uint8Array, declaredSize = bytes.length) =>
    storeMessage(app, internalContext(app.log), { userId, mailboxId: inboxId, flags: ['\\Seen'], internalDate: Date.now(), source: bytes, declaredSize });

  it('stores every fixture through the pipeline and reads each back byte for byte', async () => {
    const names = fixtureNames();
    assert.ok(names.length >= 15, 'the corpus is there');
    for (const name of names) {
      const original = fixture(name);
      const result = await store(original);
      assert.ok(result.ok, `${name}: ${result.ok ? '' : result.verdict.code}`);
      const record = (await app.storage.messages.get(inboxId, result.value.uid))!;
      assert.equal(record.size, original.length, name);
      assert.deepEqual(record.flags, ['\\Seen']);
      const back = await readAll(readMessage((await app.storage.messages.content(record.id))!, app.storage.blobs));
      assert.equal(sha256(back), sha256(original), `${name} differs after storage`);
    }
    const counters = await app.storage.mailboxes.counters(inboxId);
    assert.equal(counters.messages, names.length);
    assert.equal((await app.storage.users.get(userId))!.storageUsed, names.reduce((s, n) => s + fixture(n).length, 0));
  });

  it('a plugin that throws in message.beforeStore fails that one store as a temporary failure, labelled in the log', async () => {
    const before = (await app.storage.mailboxes.counters(inboxId)).messages;
    const result = await store(new TextEncoder().encode('Subject: t\r\n'), 11);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.verdict.action, 'tempfail');
    assert.ok(!result.ok && !result.verdict.message.includes('exploded'), 'the error text stays in the log');
    const entry = logs.find((e) => e.level === 'error' && e.plugin === 'thrower');
    assert.equal(entry?.hook, 'message.beforeStore');
    assert.match(JSON.stringify(entry?.err), /thrower exploded/);
    assert.equal((await app.storage.mailboxes.counters(inboxId)).messages, before, 'nothing stored');
    // the next operation goes through
    assert.ok((await store(fixture('simple.eml'))).ok);
  });

  it('a plugin that hangs in message.beforeStore times out as a temporary failure, and the server keeps serving', async () => {
    const started = Date.now();
    const result = await store(new TextEncoder().encode('Subject: t\r\n'), 13);
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['tempfail', 'TIMEOUT']);
    const entry = logs.find((e) => e.level === 'error' && e.plugin === 'hanger');
    assert.equal(entry?.hook, 'message.beforeStore');
    const [a, b] = await Promise.all([store(fixture('simple.eml')), store(fixture('nodemailer.eml'))]);
    assert.ok(a.ok && b.ok);
  });

  it('refuses an oversized message with TOOBIG and leaves no staged blob behind', async () => {
    const before = await app.storage.blobs.stats();
    const big = new TextEncoder().encode(
      'Subject: big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' + 'QUFB\r\n'.repeat(800_000),
    );
    const result = await store(big, 100); // declared small, actually larger: caught while streaming
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['deny', 'TOOBIG']);
    await app.storage.blobs.collect();
    assert.deepEqual(await app.storage.blobs.stats(), before);
    const declared = await store(new Uint8Array(10), 5 * 1024 * 1024); // declared too large: refused before reading
    assert.deepEqual(declared.ok ? null : declared.verdict.code, 'TOOBIG');
  });

  it('authenticates by username or address through the storage plugin, and moves through the pipeline', async () => {
    const ctx = internalContext(app.log);
    const good = await authenticate(app, ctx, { username: 'Integration@Example.com', password: 'pw', method: 'PLAIN' });
    assert.ok(good.ok);
    const bad = await authenticate(app, internalContext(app.log), { username: 'integration', password: 'nope', method: 'PLAIN' });
    assert.deepEqual(bad.ok ? null : bad.verdict.code, 'AUTHENTICATIONFAILED');

    const trash = (await app.storage.mailboxes.getBySpecialUse(userId, '\\Trash'))!;
    const uid = (await app.storage.messages.index(inboxId))[0]!.uid;
    const moved = await moveMessages(app, ctx, { userId, mailboxId: inboxId, targetMailboxId: trash.id, uids: [uid] });
    assert.ok(moved.ok, moved.ok ? '' : moved.verdict.code);
    assert.equal(await app.storage.messages.get(inboxId, uid), null);
    assert.equal((await app.storage.messages.index(trash.id)).length, 1);
  });
});
