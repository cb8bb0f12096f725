/**
 * Daily IMAP/POP3 transfer limits (the quota plugin, `users.limits`): IMAP FETCH of bodies and APPEND over the
 * limit get NO [LIMIT] while FLAGS fetches go on, POP3 RETR/TOP get -ERR [SYS/TEMP], the counters start over
 * when their window ends (shortened with the plugin's `transferWindowMs`), and with the default null limits
 * nothing is refused or counted. Also the two transfer hooks against a bare app.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { imapTestAppPerSuite, bootImapTestApp, login, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';
import { makeApp } from './helpers/hooks-app.ts';
import { bootTestApp } from './helpers/test-backend.ts';
import { servePop3 } from '../protocols/pop3.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext, createContext, createSession } from '../hooks/context.ts';
import { checkDownload, reportDownload, storeMessage } from '../hooks/pipeline/index.ts';
import { deny } from '../hooks/verdict.ts';
import type { Plugin } from '../hooks/host.ts';
import { createUser } from '../storage/users.ts';
import { transferKey } from '../plugins/quota.ts';
import type { App } from '../protocols/app.ts';

const WINDOW_MS = 400;
const size = (text: string) => new TextEncoder().encode(text).length;

async function store(app: App, userId: string, text: string): Promise<void> {
  const inbox = (await app.storage.mailboxes.getByPath(userId, 'INBOX'))!;
  const r = await storeMessage(app, internalContext(app.log), { userId, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source: new TextEncoder().encode(text) });
  assert.ok(r.ok);
}

describe('transfer limits: the hooks', () => {
  it('checkDownload runs transfer.beforeDownload (a verdict refuses), reportDownload every afterDownload tap; zero bytes skip both', async () => {
    const seen: string[] = [];
    const plugin: Plugin = {
      name: 'meter',
      apply(api) {
        api.hooks.transfer.beforeDownload.tap('meter', (_ctx, input) => (input.bytes > 100 ? deny('LIMIT', 'too much') : undefined));
        api.hooks.transfer.afterDownload.tap('meter', (_ctx, input) => void seen.push(`${input.protocol}:${input.userId}:${input.bytes}`));
      },
    };
    const t = await makeApp({ config: { plugins: [plugin] } });
    try {
      const ctx = createContext(createSession(t.app.log, { protocol: 'imap' }));
      assert.equal(await checkDownload(t.app, ctx, { userId: 'u1', protocol: 'imap', bytes: 100 }), null);
      assert.equal((await checkDownload(t.app, ctx, { userId: 'u1', protocol: 'imap', bytes: 101 }))?.code, 'LIMIT');
      await reportDownload(t.app, ctx, { userId: 'u1', protocol: 'pop3', bytes: 7 });
      await reportDownload(t.app, ctx, { userId: 'u1', protocol: 'pop3', bytes: 0 });
      assert.deepEqual(seen, ['pop3:u1:7']);
    } finally {
      await t.app.close();
    }
  });
});

describe('transfer limits: IMAP', () => {
  let t: ImapTestApp;
  const first = message('first', 'a'.repeat(300) + '\r\n');
  const second = message('second', 'b'.repeat(300) + '\r\n');
  before(async () => {
    t = await bootImapTestApp({
      users: { limits: { imapDownloadBytesPerDay: size(first) + 100, imapUploadBytesPerDay: size(first) + size(second) - 1 } },
      plugins: [['quota', { transferWindowMs: WINDOW_MS }]],
    });
  });
  after(() => t.close());

  it('refuses APPEND over the daily upload limit with [LIMIT], and again allows it once the window ended', async () => {
    const client = await login(t.app);
    assert.match(await appendMessage(client, 'INBOX', first), /^OK/);
    assert.equal(await t.app.storage.ephemeral.get(transferKey('imap-upload', t.userId)), size(first));
    assert.match(await appendMessage(client, 'INBOX', second), /^NO \[LIMIT\]/);
    assert.equal((await t.app.storage.messages.index((await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!.id)).length, 1);
    await sleep(WINDOW_MS + 100);
    assert.match(await appendMessage(client, 'INBOX', second), /^OK/);
    client.end();
  });

  it('refuses FETCH of bodies over the daily download limit with [LIMIT] while FLAGS works; resets with the window', async () => {
    await sleep(WINDOW_MS + 100); // counters from the upload test are gone
    const client = await login(t.app);
    assert.match(await client.status('SELECT INBOX'), /^OK/);
    const whole = await client.command('FETCH 1 BODY.PEEK[]');
    assert.equal(whole.at(-1), 'TAG OK FETCH completed');
    assert.equal(await t.app.storage.ephemeral.get(transferKey('imap-download', t.userId)), size(first));
    assert.match(await client.status('FETCH 1 BODY.PEEK[]'), /^NO \[LIMIT\]/);
    assert.match(await client.status('UID FETCH 1:* RFC822'), /^NO \[LIMIT\]/);
    // a refused non-PEEK fetch marks nothing read
    assert.match(await client.status('FETCH 1:* BODY[]'), /^NO \[LIMIT\]/);
    assert.ok((await t.app.storage.messages.index((await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!.id)).every((e) => !e.flags.includes('\\Seen')), 'no message was marked \\Seen');
    const flags = await client.command('FETCH 1:* (UID FLAGS RFC822.SIZE)');
    assert.equal(flags.at(-1), 'TAG OK FETCH completed');
    assert.equal(flags.filter((l) => l.startsWith('* ')).length, 2);
    // a small section still fits what is left of the day
    assert.equal((await client.command('FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]')).at(-1), 'TAG OK FETCH completed');
    await sleep(WINDOW_MS + 100);
    assert.equal((await client.command('FETCH 2 BODY.PEEK[]')).at(-1), 'TAG OK FETCH completed');
    client.end();
  });
});

describe('transfer limits: POP3', () => {
  let app: App;
  let dataDir: string;
  const text = 'From: a@example.com\r\nSubject: one\r\n\r\nfirst body\r\n';
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-transfer-'));
    const config = resolveConfig({ dataDir, users: { limits: { pop3DownloadBytesPerDay: size(text) + 5 } }, plugins: [['quota', { transferWindowMs: WINDOW_MS }]] });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    const { user } = await createUser(app.storage, config, { username: 'popper', password: 'secret pw', addresses: ['popper@example.com'] });
    await store(app, user.id, text);
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses RETR and TOP over the daily download limit with -ERR [SYS/TEMP]; STAT and LIST go on; resets with the window', async () => {
    const { client, server } = memoryPair();
    const done = servePop3(app, memoryConnection(server));
    const c = new TranscriptClient(client);
    assert.match((await c.line())!, /^\+OK/);
    c.cmd('USER popper');
    assert.match((await c.line())!, /^\+OK/);
    c.cmd('PASS secret pw');
    assert.match((await c.line())!, /^\+OK 1 messages/);
    c.cmd('RETR 1');
    assert.equal(await c.line(), `+OK ${size(text)} octets`);
    assert.equal((await c.multiline()).join('\r\n') + '\r\n', text);
    c.cmd('RETR 1');
    assert.match((await c.line())!, /^-ERR \[SYS\/TEMP\] Daily POP3 download limit reached/);
    c.cmd('TOP 1 0');
    assert.match((await c.line())!, /^-ERR \[SYS\/TEMP\]/);
    c.cmd('STAT');
    assert.match((await c.line())!, /^\+OK 1 /);
    await sleep(WINDOW_MS + 100);
    c.cmd('TOP 1 0');
    assert.equal(await c.line(), '+OK');
    assert.deepEqual(await c.multiline(), ['From: a@example.com', 'Subject: one', '']);
    c.cmd('QUIT');
    assert.match((await c.line())!, /^\+OK/);
    await done;
  });
});

describe('transfer limits: null (the default) = unlimited', () => {
  const t = imapTestAppPerSuite();

  it('refuses and counts nothing', async () => {
    const client = await login(t.app);
    const big = message('big', 'x'.repeat(20_000) + '\r\n');
    for (let i = 0; i < 3; i++) assert.match(await appendMessage(client, 'INBOX', big), /^OK/);
    assert.match(await client.status('SELECT INBOX'), /^OK/);
    for (let i = 0; i < 3; i++) assert.equal((await client.command('FETCH 1:* BODY.PEEK[]')).at(-1), 'TAG OK FETCH completed');
    for (const kind of ['imap-upload', 'imap-download'] as const) assert.equal(await t.app.storage.ephemeral.get(transferKey(kind, t.userId)), 0);
    client.end();
  });
});
