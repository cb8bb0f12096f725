/** The plugin guide's worked example (plugins/README.md), run against the real stack. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger, type LogFields } from '../hooks/log.ts';
import { createApp, type App } from '../protocols/app.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage, copyMessages, createMailbox } from '../hooks/pipeline/index.ts';
import { openStorage } from '../storage/open.ts';
import { bootOnTestBackend } from './helpers/test-backend.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { checkCredentials, createUser } from '../storage/users.ts';
import { PluginError } from '../hooks/host.ts';
import { frozenFolders } from './helpers/example-plugin.ts';

/** An app on the backend under test whose plugin registry holds the example. */
function boot(dataDir: string, plugins: unknown[], logs: LogFields[]): Promise<App> {
  const log = createLogger({ level: 'info', format: 'json', sink: (_l, e) => logs.push(e) });
  return bootOnTestBackend(resolveConfig({ dataDir, plugins }), async (config) => {
    const storage = await openStorage(config);
    try {
      return await createApp({
        config,
        log,
        storage,
        ingest: (source) => ingestMessage(source, storage.blobs),
        checkCredentials: (login, password) => checkCredentials(storage, login, password),
        registry: { 'frozen-folders': frozenFolders },
      });
    } catch (err) {
      await storage.close();
      throw err;
    }
  });
}

describe('plugin guide example: frozen-folders', () => {
  let dataDir: string;
  let app: App;
  const logs: LogFields[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-guide-'));
    app = await boot(dataDir, [['frozen-folders', { prefixes: ['Archive/Legal'] }]], logs);
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses stores and copies into frozen mailboxes and allows everything else', async () => {
    const { user } = await createUser(app.storage, app.config, { username: 'guide', password: null });
    const ctx = internalContext(app.log);
    const legal = await createMailbox(app, ctx, { userId: user.id, path: 'Archive/Legal/2026' });
    assert.ok(legal.ok);
    const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
    const message = new TextEncoder().encode('Subject: hello\r\n\r\nhi\r\n');

    const refused = await storeMessage(app, ctx, { userId: user.id, mailboxId: legal.value.id, flags: [], internalDate: Date.now(), source: message });
    assert.deepEqual(refused.ok ? null : refused.verdict, { action: 'deny', code: 'CANNOT', message: 'This mailbox is frozen' });

    const stored = await storeMessage(app, ctx, { userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source: message });
    assert.ok(stored.ok);
    const copied = await copyMessages(app, ctx, { userId: user.id, mailboxId: inbox.id, targetMailboxId: legal.value.id, uids: [stored.value.uid] });
    assert.equal(copied.ok ? null : copied.verdict.code, 'CANNOT');
    assert.equal((await app.storage.mailboxes.counters(legal.value.id)).messages, 0);
    assert.ok(logs.some((e) => e.plugin === 'frozen-folders' && e.path === 'Archive/Legal/2026'));
  });

  it('fails at boot on bad options, naming the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-guide-bad-'));
    try {
      await assert.rejects(boot(dir, [['frozen-folders', { prefixes: 'Archive' }]], []), (err: unknown) => {
        assert.ok(err instanceof PluginError);
        assert.match(err.message, /plugins\[0\] \(frozen-folders\)\.prefixes/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
