/**
 * Forwarding and autoreply end to end: messages delivered over LMTP (serveLmtp on the real stack), copies and
 * replies received by a real SMTP server (npm smtp-server) on a loopback port configured as `delivery.relay`.
 * Covers per-user forward targets and filter targets, the hop limit and Delivered-To loop checks, the daily
 * limit, no forwarding of spam or of messages a filter deleted (user targets); autoreply headers, dates, the
 * once-per-interval rule and every suppression rule; and a server without a relay, which sends nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import type { ConfigInput } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { LogFields } from '../hooks/log.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { putFilter, setAutoreply, updateDeliverySettings } from '../storage/delivery-settings.ts';
import type { ForwardingPlugin } from '../plugins/forwarding.ts';
import type { AutoreplyPlugin } from '../plugins/autoreply.ts';
import { lmtpDeliver, mailboxMessages } from './helpers/lmtp-deliver.ts';
import { rawHeader, startTestRelay } from './helpers/relay-server.ts';
import type { TestRelay } from './helpers/relay-server.ts';

const MAX_HOPS = 5;
const DAILY = 3;

function mail(headers: Record<string, string>, body = 'Hello there.\r\n'): string {
  return Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n') + '\r\n\r\n' + body;
}

async function boot(dataDir: string, delivery: ConfigInput['delivery'], logs: LogFields[] = []): Promise<App> {
  const config = resolveConfig({ dataDir, plugins: ['spam-routing'], delivery: { duplicateWindowSeconds: 0, ...delivery } });
  return bootTestApp(config, createLogger({ level: 'info', format: 'json', sink: (_line, entry) => logs.push(entry) }));
}

/** Waits until the forwarding and autoreply plugins have nothing in flight. */
async function settled(app: App): Promise<void> {
  await (app.plugins.find((p) => p.name === 'forwarding')!.plugin as ForwardingPlugin).settled();
  await (app.plugins.find((p) => p.name === 'autoreply')!.plugin as AutoreplyPlugin).settled();
}

describe('delivery: forwarding and autoreply through a real SMTP relay', () => {
  let dataDir: string;
  let relay: TestRelay;
  let app: App;
  const ids: Record<string, string> = {};

  /** Delivers over LMTP, waits for outbound sends, returns what the relay received meanwhile. */
  async function deliver(from: string, to: string, message: string) {
    const before = relay.messages.length;
    const [reply] = await lmtpDeliver(app, from, [to], message);
    assert.match(reply!, /^250 /, 'the delivery itself succeeds');
    await settled(app);
    return relay.messages.slice(before);
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-outbound-'));
    relay = await startTestRelay();
    app = await boot(dataDir, { relay: { host: '127.0.0.1', port: relay.port }, maxHops: MAX_HOPS, forwardLimitPerDay: DAILY, autoreplyIntervalSeconds: 3600 });
    const config = app.config;
    for (const name of ['ann', 'cat', 'dan', 'eve', 'fay']) {
      ids[name] = (await createUser(app.storage, config, { username: name, password: null, name: name === 'eve' ? 'Eve Example' : '', addresses: [`${name}@example.com`] })).user.id;
    }
    await updateDeliverySettings(app.storage.documents, ids.ann!, { forward: ['Ann.Elsewhere@Remote.example'] });
    await putFilter(app.storage.documents, ids.ann!, { query: { subject: 'drop me' }, action: { delete: true } });
    await putFilter(app.storage.documents, ids.cat!, { query: { subject: 'invoice' }, action: { targets: ['books@remote.example', 'boss@remote.example'] } });
    await putFilter(app.storage.documents, ids.cat!, { query: { from: 'accounts@' }, action: { targets: ['books@remote.example'], seen: true } });
    await updateDeliverySettings(app.storage.documents, ids.dan!, { forward: ['dan@remote.example'] });
    await setAutoreply(app.storage.documents, ids.eve!, { subject: 'Out of office', text: 'Back on Monday.', html: '<p>Back on <b>Monday</b>.</p>' });
  });
  after(async () => {
    await app.close();
    await relay.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('forwards a copy to the user target, enveloped from the original sender, with trace headers; the local copy stays', async () => {
    const got = await deliver('sender@remote.example', 'ann@example.com', mail({ From: 'sender@remote.example', Subject: 'hello ann', 'Message-ID': '<f1@remote.example>' }));
    assert.equal(got.length, 1);
    assert.equal(got[0]!.from, 'sender@remote.example');
    assert.deepEqual(got[0]!.to, ['ann.elsewhere@remote.example']);
    assert.equal(rawHeader(got[0]!.raw, 'Delivered-To'), 'ann@example.com');
    assert.equal(rawHeader(got[0]!.raw, 'X-Forwarded-To'), 'ann.elsewhere@remote.example');
    assert.match(rawHeader(got[0]!.raw, 'Received')!, /with LMTP \(forwarded\) for <ann@example\.com>; .*\+0000$/);
    assert.equal(rawHeader(got[0]!.raw, 'Subject'), 'hello ann');
    assert.match(got[0]!.raw, /\r\n\r\nHello there\.\r\n$/);
    const inbox = await mailboxMessages(app, 'ann', 'INBOX');
    assert.match(inbox.at(-1)!.text, /Subject: hello ann/);
  });

  it('filter targets add up across matching filters, without repeats', async () => {
    const got = await deliver('accounts@remote.example', 'cat@example.com', mail({ From: 'accounts@remote.example', Subject: 'invoice 42' }));
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]!.to, ['books@remote.example', 'boss@remote.example']);
    assert.deepEqual((await mailboxMessages(app, 'cat', 'INBOX')).at(-1)!.flags, ['\\Seen']);
    assert.equal((await deliver('x@remote.example', 'cat@example.com', mail({ From: 'x@remote.example', Subject: 'lunch?' }))).length, 0);
  });

  it('never forwards spam, nor (to user targets) a message a filter deleted', async () => {
    assert.equal((await deliver('s@remote.example', 'ann@example.com', mail({ Subject: 'cheap', 'X-Spam-Status': 'Yes, score=12' }))).length, 0);
    assert.equal((await mailboxMessages(app, 'ann', '\\Junk')).length, 1);
    assert.equal((await deliver('s@remote.example', 'ann@example.com', mail({ Subject: 'drop me' }))).length, 0);
  });

  it('loops: a message with maxHops Received/Delivered-To headers, or already delivered to this user, is not forwarded', async () => {
    const received = Array.from({ length: MAX_HOPS }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Mon, 1 Jan 2024 00:00:0${i} +0000`).join('\r\n');
    const looped = await deliver('s@remote.example', 'ann@example.com', received + '\r\n' + mail({ Subject: 'looping' }));
    assert.equal(looped.length, 0);
    const oneLess = Array.from({ length: MAX_HOPS - 1 }, (_, i) => `Received: from hop${i}.example by x; Mon, 1 Jan 2024 00:00:00 +0000`).join('\r\n');
    assert.equal((await deliver('s@remote.example', 'ann@example.com', oneLess + '\r\n' + mail({ Subject: 'almost' }))).length, 1);
    const back = await deliver('s@remote.example', 'ann@example.com', mail({ 'Delivered-To': 'ann@example.com', Subject: 'came back' }));
    assert.equal(back.length, 0);
    assert.equal((await mailboxMessages(app, 'ann', 'INBOX')).filter((m) => /looping|came back/.test(m.text)).length, 2, 'still stored locally');
  });

  it(`daily limit: at most ${DAILY} forwards per user per day`, async () => {
    const sent: number[] = [];
    for (let i = 0; i < DAILY + 2; i++) sent.push((await deliver('s@remote.example', 'dan@example.com', mail({ Subject: `n${i}` }))).length);
    assert.deepEqual(sent, [1, 1, 1, 0, 0]);
    assert.equal((await mailboxMessages(app, 'dan', 'INBOX')).length, DAILY + 2, 'every message is still delivered');
  });

  it('autoreply: from <>, Auto-Submitted, In-Reply-To and References, the configured subject and text', async () => {
    const got = await deliver(
      'friend@remote.example',
      'eve@example.com',
      mail({ From: 'Friend <friend@remote.example>', Subject: 'lunch?', 'Message-ID': '<q2@remote.example>', References: '<q1@remote.example>' }),
    );
    assert.equal(got.length, 1);
    const reply = got[0]!;
    assert.equal(reply.from, '', 'null envelope sender');
    assert.deepEqual(reply.to, ['friend@remote.example']);
    assert.equal(rawHeader(reply.raw, 'Auto-Submitted'), 'auto-replied');
    assert.equal(rawHeader(reply.raw, 'In-Reply-To'), '<q2@remote.example>');
    assert.equal(rawHeader(reply.raw, 'References'), '<q1@remote.example> <q2@remote.example>');
    assert.equal(rawHeader(reply.raw, 'Subject'), 'Out of office');
    assert.equal(rawHeader(reply.raw, 'From'), 'Eve Example <eve@example.com>');
    assert.match(reply.raw, /Back on Monday\./);
    assert.match(reply.raw, /text\/html/);
  });

  it('autoreply: once per sender per interval', async () => {
    assert.equal((await deliver('friend@remote.example', 'eve@example.com', mail({ Subject: 'again' }))).length, 0);
    assert.equal((await deliver('FRIEND@remote.example', 'eve@example.com', mail({ Subject: 'again' }))).length, 0, 'senders compare case-insensitively');
    assert.equal((await deliver('other@remote.example', 'eve@example.com', mail({ Subject: 'hi' }))).length, 1);
  });

  it('autoreply suppression: bulk, list, auto-submitted, mailer-daemon / noreply senders, null sender, spam', async () => {
    const quiet: Array<[string, Record<string, string>]> = [
      ['a1@remote.example', { Precedence: 'bulk' }],
      ['a2@remote.example', { Precedence: 'list' }],
      ['a3@remote.example', { Precedence: 'junk' }],
      ['a4@remote.example', { 'List-Id': '<l.remote.example>' }],
      ['a5@remote.example', { 'List-Unsubscribe': '<mailto:u@remote.example>' }],
      ['a6@remote.example', { 'Auto-Submitted': 'auto-generated' }],
      ['a7@remote.example', { 'Auto-Submitted': 'auto-replied' }],
      ['a8@remote.example', { 'X-Auto-Response-Suppress': 'OOF, AutoReply' }],
      ['MAILER-DAEMON@remote.example', {}],
      ['noreply@remote.example', {}],
      ['no-reply@remote.example', {}],
      ['a9@remote.example', { 'X-Spam-Status': 'Yes, score=8' }],
      ['', {}],
    ];
    for (const [from, headers] of quiet) {
      const got = await deliver(from, 'eve@example.com', mail({ Subject: 'q', ...headers }));
      assert.equal(got.length, 0, `no reply to ${from || '<>'} ${JSON.stringify(headers)}`);
    }
    assert.equal((await deliver('b1@remote.example', 'eve@example.com', mail({ Subject: 'q', 'Auto-Submitted': 'no' }))).length, 1, 'Auto-Submitted: no is a person');
  });

  it('autoreply dates: nothing before start or after end; off is off', async () => {
    const hour = 3600_000;
    await setAutoreply(app.storage.documents, ids.fay!, { subject: 'Away', text: 'x', start: Date.now() + hour });
    assert.equal((await deliver('c1@remote.example', 'fay@example.com', mail({ Subject: 'q' }))).length, 0);
    await setAutoreply(app.storage.documents, ids.fay!, { subject: 'Away', text: 'x', start: Date.now() - 2 * hour, end: Date.now() - hour });
    assert.equal((await deliver('c2@remote.example', 'fay@example.com', mail({ Subject: 'q' }))).length, 0);
    await setAutoreply(app.storage.documents, ids.fay!, { subject: 'Away', text: 'x', start: Date.now() - hour, end: Date.now() + hour, status: false });
    assert.equal((await deliver('c3@remote.example', 'fay@example.com', mail({ Subject: 'q' }))).length, 0);
    await setAutoreply(app.storage.documents, ids.fay!, { text: 'x', start: Date.now() - hour, end: Date.now() + hour });
    const got = await deliver('c4@remote.example', 'fay@example.com', mail({ Subject: 'the question' }));
    assert.equal(got.length, 1);
    assert.equal(rawHeader(got[0]!.raw, 'Subject'), 'Auto: the question', 'default subject');
  });

  it('a relay that refuses does not fail the delivery', async () => {
    await relay.close();
    const [reply] = await lmtpDeliver(app, 's@remote.example', ['ann@example.com'], mail({ Subject: 'relay down' }));
    assert.match(reply!, /^250 /);
    await settled(app);
    assert.ok((await mailboxMessages(app, 'ann', 'INBOX')).some((m) => m.text.includes('relay down')));
  });
});

describe('delivery: no relay configured', () => {
  it('stores the message, sends nothing and says so once in the log', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-norelay-'));
    const logs: LogFields[] = [];
    const app = await boot(dataDir, {}, logs);
    try {
      const { user } = await createUser(app.storage, app.config, { username: 'gus', password: null, addresses: ['gus@example.com'] });
      await updateDeliverySettings(app.storage.documents, user.id, { forward: ['gus@remote.example'] });
      await setAutoreply(app.storage.documents, user.id, { subject: 'Away', text: 'x' });
      for (const n of [1, 2]) {
        const [reply] = await lmtpDeliver(app, 's@remote.example', ['gus@example.com'], mail({ Subject: `n${n}` }));
        assert.match(reply!, /^250 /);
      }
      await settled(app);
      assert.equal((await mailboxMessages(app, 'gus', 'INBOX')).length, 2);
      assert.equal(logs.filter((e) => /forwarding skipped: no delivery\.relay\.host/.test(String(e.msg))).length, 1);
      assert.equal(logs.filter((e) => /autoreply skipped: no delivery\.relay\.host/.test(String(e.msg))).length, 1);
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
