/**
 * The rewrite plugin: the header editor and the streaming transform against bare values, then LMTP delivery
 * on the real stack with the rewrite visible in IMAP FETCH, RFC822.SIZE, SEARCH and the quota usage.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootImapTestApp, login, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { lmtpDeliver } from './helpers/lmtp-deliver.ts';
import { headerEditor, transformHeader } from '../plugins/rewrite.ts';
import { collectBytes } from '../storage/bytes.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

async function* chunks(text: string, size: number): AsyncIterable<Uint8Array> {
  const bytes = enc.encode(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const options = {
  remove: ['X-Originating-IP'],
  replace: [{ key: 'X-Mailer', value: 'hidden' }],
  add: [{ key: 'X-Scanned-By', value: 'wildduck' }],
  externalTag: { tag: '[EXT]', internalDomains: ['example.com'] },
};

describe('rewrite: header editor and stream', () => {
  const edit = headerEditor(options);
  it('adds, removes, replaces and tags the subject of external senders only once', () => {
    const header = 'From: Eve <eve@elsewhere.test>\r\nX-Mailer: Foo\r\n 1.0\r\nX-Originating-IP: 1.2.3.4\r\nSubject: hello\r\n';
    assert.equal(edit(header), 'X-Scanned-By: wildduck\r\nFrom: Eve <eve@elsewhere.test>\r\nX-Mailer: hidden\r\nSubject: [EXT] hello\r\n');
    assert.equal(edit('From: a@x.test\r\nSubject: [EXT] hello\r\n'), 'X-Scanned-By: wildduck\r\nFrom: a@x.test\r\nSubject: [EXT] hello\r\nX-Mailer: hidden\r\n');
    assert.ok(!edit('From: Bob <bob@mail.example.com>\r\nSubject: hi\r\n').includes('[EXT]'), 'subdomains of internal domains are internal');
  });

  it('streams: the body passes through unchanged whatever the chunking, 8-bit header bytes survive', async () => {
    const body = 'line\r\n'.repeat(1000);
    const text = 'From: x@y.test\r\nSubject: caf\u00e9\r\n\r\n' + body;
    for (const size of [1, 7, 64, 100_000]) {
      const out = dec.decode(await collectBytes(transformHeader(chunks(text, size), edit, 1024)));
      assert.equal(out, 'X-Scanned-By: wildduck\r\nFrom: x@y.test\r\nSubject: [EXT] caf\u00e9\r\nX-Mailer: hidden\r\n\r\n' + body, `chunk size ${size}`);
    }
    const huge = 'X-Long: ' + 'a'.repeat(5000) + '\r\n\r\nbody';
    assert.equal(dec.decode(await collectBytes(transformHeader(chunks(huge, 100), edit, 1024))), huge, 'oversized header passes untouched');
  });
});

describe('rewrite plugin on LMTP delivery', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ plugins: [['rewrite', options]] });
  });
  after(() => t.close());

  it('stores the rewritten bytes: FETCH, RFC822.SIZE, SEARCH and quota usage reflect them', async () => {
    const original = message('Quarterly report', 'Numbers inside.\r\n', 'X-Originating-IP: 10.0.0.1\r\n').replace('bob@example.com', 'eve@partner.test');
    const [reply] = await lmtpDeliver(t.app, 'eve@partner.test', ['alice@example.com'], original);
    assert.match(reply!, /^250/);
    const [internal] = await lmtpDeliver(t.app, 'bob@example.com', ['alice@example.com'], message('Lunch'));
    assert.match(internal!, /^250/);

    const client = await login(t.app);
    assert.match(await client.status('SELECT INBOX'), /^OK/);
    const fetched = (await client.command('FETCH 1 (RFC822.SIZE BODY.PEEK[HEADER])')).join('\r\n');
    assert.match(fetched, /Subject: \[EXT\] Quarterly report/);
    assert.match(fetched, /X-Scanned-By: wildduck/);
    assert.ok(!fetched.includes('X-Originating-IP'));
    const size = Number(/RFC822\.SIZE (\d+)/.exec(fetched)![1]);
    const inbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!;
    const stored = (await t.app.storage.messages.get(inbox.id, 1))!;
    assert.equal(stored.size, size);
    assert.equal(stored.subject, '[EXT] Quarterly report');
    assert.notEqual(size, enc.encode(original).length);
    const second = (await t.app.storage.messages.get(inbox.id, 2))!;
    assert.equal((await t.app.storage.users.get(t.userId))!.storageUsed, size + second.size);
    assert.equal(second.subject, 'Lunch', 'internal sender not tagged');
    assert.deepEqual(await client.command('SEARCH SUBJECT "[EXT]"'), ['* SEARCH 1', 'TAG OK SEARCH completed']);

    // IMAP APPEND is not a configured way in: stored as sent
    assert.match(await appendMessage(client, 'INBOX', message('Appended').replace('bob@example.com', 'eve@partner.test')), /^OK/);
    assert.equal((await t.app.storage.messages.get(inbox.id, 3))!.subject, 'Appended');
  });

  it('fails at boot on a non-ASCII value, naming the option', async () => {
    await assert.rejects(bootImapTestApp({ plugins: [['rewrite', { add: [{ key: 'X-A', value: 'caf\u00e9' }] }]] }), /plugins\[0\] \(rewrite\)\.add\[0\]\.value/);
  });
});
