/**
 * LMTP transcripts over an in-memory connection, on the real stack (SQLite, MIME ingest, plugins): multi-recipient
 * delivery with mixed results, pipelining, oversize, unknown users, duplicate suppression, and what was stored.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { serveLmtp } from '../protocols/lmtp.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';

const MAX = 64 * 1024;

describe('LMTP', () => {
  let dataDir: string;
  let app: App;
  const users: Record<string, string> = {};

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-lmtp-'));
    const config = resolveConfig({ dataDir, limits: { maxMessageSize: MAX }, plugins: ['quota'], lmtp: { maxRecipients: 5 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    for (const [name, quota] of [['alice', null], ['bob', null], ['carol', 10], ['dave', null]] as const) {
      const { user } = await createUser(app.storage, config, { username: name, password: 'pw', addresses: [`${name}@example.com`], quota: { storage: quota } });
      users[name] = user.id;
    }
    await createUser(app.storage, config, { username: 'jüri', password: 'pw', addresses: ['jüri@bücher.example'] });
    await app.storage.users.update(users.dave!, { disabled: true });
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function connect(): { client: TranscriptClient; done: Promise<void> } {
    const { client, server } = memoryPair();
    const done = serveLmtp(app, memoryConnection(server), { hostname: 'mx.test' });
    return { client: new TranscriptClient(client), done };
  }

  async function inbox(user: string) {
    const box = (await app.storage.mailboxes.getByPath(users[user]!, 'INBOX'))!;
    return { box, index: await app.storage.messages.index(box.id) };
  }

  async function text(user: string, uid: number): Promise<string> {
    const { box } = await inbox(user);
    const record = (await app.storage.messages.get(box.id, uid))!;
    return new TextDecoder().decode(await readAll(readMessage((await app.storage.messages.content(record.id))!, app.storage.blobs)));
  }

  it('greets, answers LHLO with its extensions, refuses HELO', async () => {
    const { client, done } = connect();
    assert.equal(await client.line(), '220 mx.test LMTP ready');
    client.cmd('HELO x');
    assert.match((await client.line())!, /^500 5\.5\.1/);
    client.cmd('MAIL FROM:<a@b.c>');
    assert.match((await client.line())!, /^503 5\.5\.1/);
    client.cmd('LHLO client.test');
    assert.deepEqual(await client.reply(), ['250-mx.test', '250-PIPELINING', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-SMTPUTF8', `250 SIZE ${MAX}`]);
    client.cmd('NOOP');
    assert.equal(await client.line(), '250 2.0.0 OK');
    client.cmd('QUIT');
    assert.equal(await client.line(), '221 2.0.0 Bye');
    assert.equal(await client.line(), null);
    await done;
  });

  it('four recipients: unknown gets 550 at RCPT; after DATA 250, 250 and 452 for the one over quota', async () => {
    const before = { alice: (await inbox('alice')).index.length, bob: (await inbox('bob')).index.length };
    const { client, done } = connect();
    await client.line();
    client.cmd('LHLO client.test');
    await client.reply();
    client.cmd('MAIL FROM:<sender@remote.example> SIZE=200 BODY=8BITMIME');
    assert.equal(await client.line(), '250 2.1.0 Sender OK');
    client.cmd('RCPT TO:<Alice@Example.COM>');
    assert.equal(await client.line(), '250 2.1.5 Recipient OK');
    client.cmd('RCPT TO:<nobody@example.com>');
    assert.match((await client.line())!, /^550 5\.1\.1 /);
    client.cmd('RCPT TO:<bob+lists@example.com>');
    assert.equal(await client.line(), '250 2.1.5 Recipient OK');
    client.cmd('RCPT TO:<carol@example.com>');
    assert.equal(await client.line(), '250 2.1.5 Recipient OK');
    client.cmd('DATA');
    assert.match((await client.line())!, /^354 /);
    client.send('From: sender@remote.example\r\nSubject: four\r\nMessage-ID: <four@remote.example>\r\n\r\nHello\r\n..leading dot\r\n.\r\n');
    const replies = await client.lines(3);
    assert.match(replies[0]!, /^250 2\.0\.0 <Alice@Example\.COM> Delivered/);
    assert.match(replies[1]!, /^250 2\.0\.0 <bob\+lists@example\.com> Delivered/);
    assert.match(replies[2]!, /^452 4\.2\.2 /);
    client.cmd('QUIT');
    assert.equal(await client.line(), '221 2.0.0 Bye');
    await done;

    const alice = await inbox('alice');
    assert.equal(alice.index.length, before.alice + 1);
    const stored = await text('alice', alice.index.at(-1)!.uid);
    assert.ok(stored.startsWith('Return-Path: <sender@remote.example>\r\nDelivered-To: Alice@Example.COM\r\nFrom: sender@remote.example\r\n'), stored);
    assert.ok(stored.endsWith('\r\n\r\nHello\r\n.leading dot\r\n'), 'dot-unstuffed, final CRLF kept');
    const bob = await inbox('bob');
    assert.equal(bob.index.length, before.bob + 1);
    assert.match(await text('bob', bob.index.at(-1)!.uid), /^Return-Path: <sender@remote\.example>\r\nDelivered-To: bob\+lists@example\.com\r\n/);
    assert.equal((await inbox('carol')).index.length, 0);
  });

  it('answers every pipelined command when the held-back replies outgrow the socket buffer', async () => {
    const { client, done } = connect();
    await client.line();
    const n = 3000; // 3000 x "250 2.0.0 OK\r\n": 42 KB of replies held back while the next NOOP waits
    client.send('NOOP\r\n'.repeat(n) + 'QUIT\r\n');
    const lines = await client.lines(n + 1);
    assert.equal(lines.filter((l) => l === '250 2.0.0 OK').length, n);
    assert.equal(lines.at(-1), '221 2.0.0 Bye');
    await done;
  });

  it('handles a pipelined transaction, RSET and a second transaction on one connection', async () => {
    const { client, done } = connect();
    await client.line();
    client.send(
      'LHLO pipelined\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<ghost@example.com>\r\nRCPT TO:<dave@example.com>\r\nDATA\r\n' +
        'Subject: piped\r\n\r\nbody\r\n.\r\nRSET\r\nMAIL FROM:<x@y.z>\r\nRSET\r\nNOOP\r\nQUIT\r\n',
    );
    const lines = await client.lines(6 + 5);
    assert.equal(lines[0], '250-mx.test');
    const rest = lines.slice(lines.indexOf(`250 SIZE ${MAX}`) + 1);
    assert.equal(rest[0], '250 2.1.0 Sender OK');
    assert.equal(rest[1], '250 2.1.5 Recipient OK');
    assert.match(rest[2]!, /^550 5\.1\.1/);
    assert.match(rest[3]!, /^550 5\.7\.1 Mailbox disabled/);
    assert.match(rest[4]!, /^354/);
    const tail = await client.lines(6);
    assert.match(tail[0]!, /^250 2\.0\.0 <alice@example\.com> Delivered/);
    assert.deepEqual(tail.slice(1), ['250 2.0.0 OK', '250 2.1.0 Sender OK', '250 2.0.0 OK', '250 2.0.0 OK', '221 2.0.0 Bye']);
    await done;
    const alice = await inbox('alice');
    assert.match(await text('alice', alice.index.at(-1)!.uid), /^Return-Path: <>\r\nDelivered-To: alice@example\.com\r\nSubject: piped/);
  });

  it('refuses SIZE over the limit at MAIL and an oversized DATA with 552 5.3.4 per recipient, staying in sync', async () => {
    const before = (await inbox('alice')).index.length;
    const { client, done } = connect();
    await client.line();
    client.cmd('LHLO c');
    await client.reply();
    client.cmd(`MAIL FROM:<a@b.example> SIZE=${MAX + 1}`);
    assert.match((await client.line())!, /^552 5\.3\.4/);
    client.cmd('MAIL FROM:<a@b.example>');
    await client.line();
    client.cmd('RCPT TO:<alice@example.com>');
    client.cmd('RCPT TO:<bob@example.com>');
    await client.lines(2);
    client.cmd('DATA');
    await client.line();
    const line = 'x'.repeat(998) + '\r\n';
    client.send('Subject: big\r\n\r\n' + line.repeat(Math.ceil(MAX / 1000) + 5) + '.\r\nNOOP\r\n');
    assert.deepEqual((await client.lines(2)).map((l) => l!.slice(0, 9)), ['552 5.3.4', '552 5.3.4']);
    assert.equal(await client.line(), '250 2.0.0 OK', 'the command after the data is read as a command');
    client.cmd('QUIT');
    await client.line();
    await done;
    assert.equal((await inbox('alice')).index.length, before);
  });

  it('checks syntax and state: bad addresses, parameters, DATA without recipients, too many recipients', async () => {
    const { client, done } = connect();
    await client.line();
    client.cmd('LHLO c');
    await client.reply();
    client.cmd('RCPT TO:<alice@example.com>');
    assert.match((await client.line())!, /^503 /);
    client.cmd('MAIL FROM:alice@example.com');
    assert.match((await client.line())!, /^501 5\.5\.4/);
    client.cmd('MAIL FROM:<a@b.example> BODY=BINARYMIME');
    assert.match((await client.line())!, /^555 /);
    client.cmd('MAIL FROM:<a@b.example> SMTPUTF8');
    assert.equal(await client.line(), '250 2.1.0 Sender OK');
    client.cmd('MAIL FROM:<a@b.example>');
    assert.match((await client.line())!, /^503 5\.5\.1 Nested/);
    client.cmd('DATA');
    assert.match((await client.line())!, /^503 5\.5\.1 No valid recipients/);
    client.cmd('RCPT TO:<not an address>');
    assert.match((await client.line())!, /^553 5\.1\.3/);
    client.cmd('RCPT TO:<jüri@BÜCHER.example>');
    assert.equal(await client.line(), '250 2.1.5 Recipient OK', 'internationalized address, case-insensitive');
    client.cmd('RCPT TO:<jüri@xn--bcher-kva.example>');
    assert.equal(await client.line(), '250 2.1.5 Recipient OK', 'the same domain in punycode');
    for (let i = 0; i < 3; i++) {
      client.cmd('RCPT TO:<alice@example.com>');
      assert.equal(await client.line(), '250 2.1.5 Recipient OK');
    }
    client.cmd('RCPT TO:<alice@example.com>');
    assert.match((await client.line())!, /^452 4\.5\.3/);
    client.cmd('FOO');
    assert.match((await client.line())!, /^500 5\.5\.2/);
    client.cmd('QUIT');
    await client.line();
    await done;
  });

  it('stores one copy per user when the same Message-ID comes again; answers 250 both times', async () => {
    const before = (await inbox('bob')).index.length;
    for (let round = 0; round < 2; round++) {
      const { client, done } = connect();
      await client.line();
      client.send('LHLO c\r\nMAIL FROM:<s@r.example>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<bob+alias@example.com>\r\nDATA\r\n');
      const lines = await client.lines(6 + 4);
      assert.match(lines.at(-1)!, /^354/);
      client.send('Message-ID: <dup-1@r.example>\r\nSubject: dup\r\n\r\nx\r\n.\r\nQUIT\r\n');
      const replies = await client.lines(3);
      assert.match(replies[0]!, round === 0 ? /^250 2\.0\.0 .*Delivered/ : /^250 2\.0\.0 .*Already delivered/);
      assert.match(replies[1]!, /^250 2\.0\.0 .*Already delivered/);
      await done;
    }
    assert.equal((await inbox('bob')).index.length, before + 1);
  });

  it('the same recipient named again (any case, +tag) gets one copy per transaction and one reply per RCPT', async () => {
    const before = (await inbox('alice')).index.length;
    const bobBefore = (await inbox('bob')).index.length;
    const { client, done } = connect();
    await client.line();
    const rcpts = ['alice@example.com', 'Alice@EXAMPLE.com', 'alice+tag@example.com', 'bob@example.com', 'ALICE@example.com'];
    client.send(`LHLO c\r\nMAIL FROM:<s@r.example>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
    const lines = await client.lines(6 + 1 + rcpts.length + 1);
    assert.deepEqual(lines.slice(7, 7 + rcpts.length), rcpts.map(() => '250 2.1.5 Recipient OK'));
    assert.match(lines.at(-1)!, /^354/);
    // no Message-ID: the duplicate window cannot help, only the per-transaction rule
    client.send('Subject: repeated rcpt\r\n\r\nx\r\n.\r\nQUIT\r\n');
    const replies = await client.lines(rcpts.length + 1);
    assert.match(replies[0]!, /^250 2\.0\.0 <alice@example\.com> Delivered/);
    assert.match(replies[1]!, /^250 2\.0\.0 <Alice@EXAMPLE\.com> Already delivered/);
    assert.match(replies[2]!, /^250 2\.0\.0 <alice\+tag@example\.com> Already delivered/);
    assert.match(replies[3]!, /^250 2\.0\.0 <bob@example\.com> Delivered/);
    assert.match(replies[4]!, /^250 2\.0\.0 <ALICE@example\.com> Already delivered/);
    assert.match(replies[5]!, /^221 /);
    await done;
    assert.equal((await inbox('alice')).index.length, before + 1);
    assert.equal((await inbox('bob')).index.length, bobBefore + 1);
  });

  it('1,000 RCPTs of one address: the cap answers 452 4.5.3 past lmtp.maxRecipients, one copy is stored', async () => {
    const before = (await inbox('alice')).index.length;
    const { client, done } = connect();
    await client.line();
    client.send(`LHLO c\r\nMAIL FROM:<s@r.example>\r\n${'RCPT TO:<alice@example.com>\r\n'.repeat(1000)}DATA\r\n`);
    const lines = await client.lines(6 + 1 + 1000 + 1);
    const rcptReplies = lines.slice(7, 1007);
    assert.equal(rcptReplies.filter((l: string | null) => l === '250 2.1.5 Recipient OK').length, 5, 'lmtp.maxRecipients is 5 here');
    assert.equal(rcptReplies.filter((l: string | null) => /^452 4\.5\.3 /.test(l!)).length, 995);
    assert.match(lines.at(-1)!, /^354/);
    client.send('Subject: flood\r\n\r\nx\r\n.\r\nQUIT\r\n');
    const replies = await client.lines(5 + 1);
    assert.equal(replies.filter((l) => /^250 2\.0\.0 .*Delivered/.test(l!)).length, 1);
    assert.equal(replies.filter((l) => /^250 2\.0\.0 .*Already delivered/.test(l!)).length, 4);
    await done;
    assert.equal((await inbox('alice')).index.length, before + 1);
  });

  it('a client that disconnects mid-DATA leaves nothing stored', async () => {
    const before = (await inbox('alice')).index.length;
    const { client, done } = connect();
    await client.line();
    client.send('LHLO c\r\nMAIL FROM:<s@r.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
    await client.lines(6 + 3);
    client.send('Subject: cut\r\n\r\nhalf a mess');
    client.socket.end();
    await done;
    assert.equal((await inbox('alice')).index.length, before);
  });
});
