/**
 * POP3 transcripts over an in-memory connection on the real stack: CAPA, USER/PASS, AUTH PLAIN, STAT, LIST,
 * UIDL, RETR (dot-stuffed, byte-exact), TOP, DELE, RSET, the UPDATE state at QUIT (\Seen, Trash or expunge),
 * dropped connections, the one-session lock, the newest-messages cap and the plaintext policy.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { servePop3 } from '../protocols/pop3.ts';
import { resolveConfig } from '../hooks/config.ts';
import type { ConfigInput } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';

const MESSAGES = [
  'From: a@example.com\r\nSubject: one\r\n\r\nfirst body\r\n',
  'From: b@example.com\r\nSubject: two\r\n\r\nline 1\r\n.dotted line\r\nline 3\r\nline 4\r\n',
  'From: c@example.com\r\nSubject: three\r\n\r\nno final newline',
];

async function setup(config: ConfigInput) {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-pop3-'));
  const resolved = resolveConfig({ dataDir, ...config });
  const app = await bootTestApp(resolved, createLogger({ level: 'silent' }));
  const { user } = await createUser(app.storage, resolved, { username: 'popper', password: 'secret pw', addresses: ['popper@example.com'] });
  const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
  const trash = (await app.storage.mailboxes.getBySpecialUse(user.id, '\\Trash'))!;
  for (const text of MESSAGES) {
    const r = await storeMessage(app, internalContext(app.log), { userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source: new TextEncoder().encode(text) });
    assert.ok(r.ok);
  }
  return { app, dataDir, userId: user.id, inbox, trash };
}

function connect(app: App, options: { remoteAddress?: string } = {}) {
  const { client, server } = memoryPair();
  const done = servePop3(app, memoryConnection(server, options));
  return { client: new TranscriptClient(client), done };
}

async function login(client: TranscriptClient): Promise<void> {
  assert.match((await client.line())!, /^\+OK/);
  client.cmd('USER popper');
  assert.match((await client.line())!, /^\+OK/);
  client.cmd('PASS secret pw');
  assert.equal(await client.line(), '+OK 3 messages (' + MESSAGES.reduce((s, m) => s + m.length, 0) + ' octets)');
}

describe('POP3', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    if (ctx) {
      await ctx.app.close();
      rmSync(ctx.dataDir, { recursive: true, force: true });
    }
    ctx = await setup({});
  });
  after(async () => {
    await ctx.app.close();
    rmSync(ctx.dataDir, { recursive: true, force: true });
  });

  const flags = async (mailboxId: string) => (await ctx.app.storage.messages.index(mailboxId)).map((e) => [e.uid, e.flags.includes('\\Seen')]);

  it('lists capabilities and the maildrop; RETR is byte-exact and dot-stuffed; TOP gives headers and n lines', async () => {
    const { client, done } = connect(ctx.app);
    assert.match((await client.line())!, /^\+OK WildDuck POP3 ready/);
    client.cmd('CAPA');
    assert.equal(await client.line(), '+OK Capability list follows');
    const caps = await client.multiline();
    for (const c of ['TOP', 'UIDL', 'USER', 'SASL PLAIN', 'RESP-CODES', 'PIPELINING']) assert.ok(caps.includes(c), c);
    assert.ok(caps.some((c) => c.startsWith('IMPLEMENTATION ')));
    client.cmd('STAT');
    assert.match((await client.line())!, /^-ERR/);
    client.cmd('USER popper');
    await client.line();
    client.cmd('PASS secret pw');
    assert.match((await client.line())!, /^\+OK 3 messages/);
    client.cmd('STAT');
    assert.equal(await client.line(), `+OK 3 ${MESSAGES.reduce((s, m) => s + m.length, 0)}`);
    client.cmd('LIST');
    assert.equal(await client.line(), '+OK 3 messages');
    assert.deepEqual(await client.multiline(), MESSAGES.map((m, i) => `${i + 1} ${m.length}`));
    client.cmd('LIST 2');
    assert.equal(await client.line(), `+OK 2 ${MESSAGES[1]!.length}`);
    client.cmd('LIST 9');
    assert.match((await client.line())!, /^-ERR/);
    client.cmd('UIDL');
    await client.line();
    const uidls = await client.multiline();
    assert.deepEqual(uidls, [1, 2, 3].map((n) => `${n} ${ctx.inbox.uidValidity}.${n}`));
    client.cmd('RETR 2');
    assert.equal(await client.line(), `+OK ${MESSAGES[1]!.length} octets`);
    assert.deepEqual(await client.lines(7), ['From: b@example.com', 'Subject: two', '', 'line 1', '..dotted line', 'line 3', 'line 4']);
    assert.equal(await client.line(), '.');
    client.cmd('RETR 3');
    await client.line();
    assert.deepEqual(await client.multiline(), ['From: c@example.com', 'Subject: three', '', 'no final newline']);
    client.cmd('TOP 2 2');
    assert.equal(await client.line(), '+OK');
    assert.deepEqual(await client.multiline(), ['From: b@example.com', 'Subject: two', '', 'line 1', '.dotted line']);
    client.cmd('TOP 1 0');
    await client.line();
    assert.deepEqual(await client.multiline(), ['From: a@example.com', 'Subject: one', '']);
    client.cmd('QUIT');
    assert.match((await client.line())!, /^\+OK Bye/);
    await done;
    // RETR'd messages (2 and 3) are \Seen now; TOP does not count
    assert.deepEqual(await flags(ctx.inbox.id), [[1, false], [2, true], [3, true]]);
  });

  it('DELE marks, RSET unmarks, QUIT moves deleted messages to Trash; UIDLs stay stable', async () => {
    const { client, done } = connect(ctx.app);
    await login(client);
    client.cmd('DELE 1');
    assert.equal(await client.line(), '+OK Message 1 deleted');
    client.cmd('DELE 1');
    assert.match((await client.line())!, /^-ERR/);
    client.cmd('RETR 1');
    assert.match((await client.line())!, /^-ERR/);
    client.cmd('STAT');
    assert.equal(await client.line(), `+OK 2 ${MESSAGES[1]!.length + MESSAGES[2]!.length}`);
    client.cmd('RSET');
    assert.equal(await client.line(), '+OK 3 messages');
    client.send('DELE 1\r\nDELE 3\r\nNOOP\r\nQUIT\r\n');
    assert.deepEqual((await client.lines(4)).map((l) => l!.slice(0, 3)), ['+OK', '+OK', '+OK', '+OK']);
    await done;
    assert.deepEqual((await ctx.app.storage.messages.index(ctx.inbox.id)).map((e) => e.uid), [2]);
    assert.equal((await ctx.app.storage.messages.index(ctx.trash.id)).length, 2);

    const again = connect(ctx.app);
    assert.match((await again.client.line())!, /^\+OK/);
    again.client.send('USER popper\r\nPASS secret pw\r\nUIDL\r\n');
    await again.client.lines(3);
    assert.deepEqual(await again.client.multiline(), [`1 ${ctx.inbox.uidValidity}.2`]);
    again.client.cmd('QUIT');
    await again.client.line();
    await again.done;
  });

  it('a dropped connection applies nothing and releases the lock; a second session meanwhile gets [IN-USE]', async () => {
    const first = connect(ctx.app);
    await login(first.client);
    first.client.send('RETR 1\r\nDELE 2\r\n');
    await first.client.multiline();
    await first.client.line();

    const second = connect(ctx.app);
    await second.client.line();
    second.client.send('USER popper\r\nPASS secret pw\r\n');
    await second.client.line();
    assert.match((await second.client.line())!, /^-ERR \[IN-USE\]/);
    second.client.cmd('QUIT');
    await second.client.line();
    await second.done;

    first.client.socket.end();
    await first.done;
    assert.deepEqual(await flags(ctx.inbox.id), [[1, false], [2, false], [3, false]]);

    const third = connect(ctx.app);
    await login(third.client);
    third.client.cmd('QUIT');
    await third.client.line();
    await third.done;
  });

  it('AUTH PLAIN with an initial response and with a continuation; bad credentials get [AUTH]', async () => {
    const plain = (user: string, pass: string) => Buffer.from(`\u0000${user}\u0000${pass}`).toString('base64');
    const { client, done } = connect(ctx.app);
    await client.line();
    client.cmd(`AUTH PLAIN ${plain('popper', 'wrong')}`);
    assert.match((await client.line())!, /^-ERR \[AUTH\]/);
    client.cmd('AUTH PLAIN');
    assert.equal(await client.line(), '+ ');
    client.cmd('*');
    assert.match((await client.line())!, /^-ERR/);
    client.cmd('AUTH PLAIN');
    await client.line();
    client.cmd(plain('popper', 'secret pw'));
    assert.match((await client.line())!, /^\+OK 3 messages/);
    client.cmd('QUIT');
    await client.line();
    await done;
  });

  it('answers malformed SASL PLAIN responses with -ERR and a reason, and the session goes on (issue 9)', async () => {
    const plain = (authzid: string, user: string, pass: string) => Buffer.from(`${authzid}\u0000${user}\u0000${pass}`).toString('base64');
    const { client, done } = connect(ctx.app);
    await client.line();
    // these ended the session with an internal error before (atob threw on a length that is not 4n)
    for (const response of ['A', 'AAAAA', 'AGZ1enoA=', 'AGZ1enoA===', 'A=AA', '!!!!', 'AAA\u00e9']) {
      client.cmd(`AUTH PLAIN ${response}`);
      assert.equal(await client.line(), '-ERR Invalid base64 in SASL response', response);
    }
    // the same through the continuation
    client.cmd('AUTH PLAIN');
    assert.equal(await client.line(), '+ ');
    client.cmd('AGZ1enoA=');
    assert.equal(await client.line(), '-ERR Invalid base64 in SASL response');
    // valid base64, not a PLAIN message
    client.cmd(`AUTH PLAIN ${Buffer.from('no nuls here').toString('base64')}`);
    assert.equal(await client.line(), '-ERR [AUTH] Invalid SASL PLAIN response');
    client.cmd(`AUTH PLAIN ${plain('', '', 'secret pw')}`);
    assert.equal(await client.line(), '-ERR [AUTH] Invalid SASL PLAIN response');
    client.cmd(`AUTH PLAIN ${plain('someone', 'popper', 'secret pw')}`);
    assert.equal(await client.line(), '-ERR [AUTH] Cannot act as another user');
    client.cmd('AUTH PLAIN =');
    assert.equal(await client.line(), '-ERR [AUTH] Invalid SASL PLAIN response');
    // still the same session, and a good response logs in
    client.cmd(`AUTH PLAIN ${plain('popper', 'popper', 'secret pw')}`);
    assert.match((await client.line())!, /^\+OK 3 messages/);
    client.cmd('QUIT');
    await client.line();
    await done;
  });

  it('refuses passwords over plaintext from a non-loopback client', async () => {
    const { client, done } = connect(ctx.app, { remoteAddress: '192.0.2.7' });
    await client.line();
    client.cmd('CAPA');
    await client.line();
    const caps = await client.multiline();
    assert.ok(!caps.includes('USER') && !caps.includes('SASL PLAIN'));
    client.cmd('USER popper');
    assert.match((await client.line())!, /^-ERR \[AUTH\]/);
    client.cmd('QUIT');
    await client.line();
    await done;
  });
});

describe('POP3 configuration', () => {
  it('lists only the newest pop3.maxMessages and expunges with deleteMode expunge', async () => {
    const ctx = await setup({ pop3: { maxMessages: 2, deleteMode: 'expunge' } });
    try {
      const { client, done } = connect(ctx.app);
      await client.line();
      client.send('USER popper\r\nPASS secret pw\r\nUIDL\r\n');
      await client.line();
      assert.match((await client.line())!, /^\+OK 2 messages/);
      await client.line();
      assert.deepEqual(await client.multiline(), [`1 ${ctx.inbox.uidValidity}.2`, `2 ${ctx.inbox.uidValidity}.3`]);
      client.send('DELE 1\r\nQUIT\r\n');
      await client.lines(2);
      await done;
      assert.deepEqual((await ctx.app.storage.messages.index(ctx.inbox.id)).map((e) => e.uid), [1, 3]);
      assert.equal((await ctx.app.storage.messages.index(ctx.trash.id)).length, 0);
    } finally {
      await ctx.app.close();
      rmSync(ctx.dataDir, { recursive: true, force: true });
    }
  });
});
