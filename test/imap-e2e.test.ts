/**
 * End to end over real loopback sockets with independent clients: imapflow (npm) through STARTTLS and
 * implicit TLS with the generated self-signed certificate, and Python's imaplib in a child process.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { message } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { python } from './helpers/python.ts';

function client(port: number, secure: boolean): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port,
    secure,
    doSTARTTLS: secure ? undefined : true,
    auth: { user: 'alice', pass: 'secret' },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
}

const PYTHON_SESSION = `
import imaplib, json, sys
out = {}
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
out['login'] = m.login('alice', 'secret')[0]
out['list'] = [l.decode() for l in m.list()[1]]
out['append'] = m.append('INBOX', '(\\\\Flagged)', None, b'Subject: from python\\r\\nFrom: py@example.com\\r\\n\\r\\nHi from imaplib\\r\\n')[1][0].decode()
typ, data = m.select('INBOX')
out['select'] = [typ, data[0].decode()]
typ, data = m.search(None, 'SUBJECT', '"from python"')
seq = data[0].decode().split()[-1]
out['search'] = data[0].decode()
typ, data = m.fetch(seq, '(FLAGS BODY.PEEK[TEXT])')
out['fetch'] = [data[0][0].decode(), data[0][1].decode()]
out['store'] = m.store(seq, '+FLAGS', '\\\\Deleted')[0]
out['expunge'] = [x.decode() for x in m.expunge()[1] if x]
out['logout'] = m.logout()[0]
print(json.dumps(out))
`;

describe('IMAP end to end with real clients', () => {
  const t = imapListenerPerSuite({ imap: { tlsPort: 0 } }, { tls: true });

  it('imapflow over STARTTLS: list, append, fetch (whole, part, partial), search, store, copy, move, expunge', async () => {
    const c = client(t.port, false);
    await c.connect();
    assert.ok(c.secureConnection, 'STARTTLS upgraded the connection');
    const list = await c.list();
    assert.deepEqual(list.map((m) => m.path).sort(), ['Drafts', 'INBOX', 'Junk', 'Sent Mail', 'Trash']);
    assert.equal(list.find((m) => m.path === 'Sent Mail')?.specialUse, '\\Sent');
    await c.mailboxCreate('Flow');
    const multipart =
      'From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Parts\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nFirst part text\r\n' +
      '--b1\r\nContent-Type: text/html\r\n\r\n<p>Second</p>\r\n--b1--\r\n';
    const appended = await c.append('Flow', multipart, ['\\Seen']);
    assert.equal(appended && appended.uid, 1);
    await c.append('Flow', message('second'));
    const lock = await c.getMailboxLock('Flow');
    try {
      const messages = [];
      for await (const msg of c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, source: true })) messages.push(msg);
      assert.equal(messages.length, 2);
      assert.equal(messages[0]!.envelope?.subject, 'Parts');
      assert.equal(messages[0]!.source?.toString(), multipart);
      assert.equal(messages[0]!.bodyStructure?.childNodes?.length, 2);
      const part = await c.fetchOne('1', { bodyParts: ['2'] });
      assert.equal(part && part.bodyParts?.get('2')?.toString(), '<p>Second</p>');
      const partial = await c.fetchOne('1', { source: { start: 6, maxLength: 3 } });
      assert.equal(partial && partial.source?.toString(), 'Bob');
      assert.deepEqual(await c.search({ seen: false }), [2]);
      assert.deepEqual(await c.search({ subject: 'parts' }, { uid: true }), [1]);
      assert.ok(await c.messageFlagsAdd('2', ['\\Flagged']));
      const flags = await c.fetchOne('2', { flags: true });
      assert.ok(flags && flags.flags?.has('\\Flagged'));
      const copied = await c.messageCopy('1', 'Trash');
      assert.ok(copied && copied.uidMap && copied.uidMap.size === 1);
      const moved = await c.messageMove('2', 'Drafts');
      assert.ok(moved && moved.uidMap && moved.uidMap.get(2));
      assert.equal(c.mailbox && c.mailbox.exists, 1);
      assert.ok(await c.messageDelete('1'));
      assert.equal(c.mailbox && c.mailbox.exists, 0);
    } finally {
      lock.release();
    }
    const status = await c.status('Drafts', { messages: true });
    assert.equal(status && status.messages, 1);
    await c.logout();
  });

  it('imapflow over implicit TLS hears new mail and expunges while idling', async () => {
    const watcher = client(t.listeners[1]!.port, true);
    const writer = client(t.listeners[1]!.port, true);
    await watcher.connect();
    await writer.connect();
    await watcher.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => watcher.on('exists', (data: { count: number }) => resolve(data.count)));
    const idling = watcher.idle();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writer.append('INBOX', message('idle-news'));
    assert.equal(await Promise.race([exists, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3000))]), 1);
    const expunged = new Promise<number>((resolve) => watcher.on('expunge', (data: { seq: number }) => resolve(data.seq)));
    await writer.mailboxOpen('INBOX');
    await writer.messageDelete('1');
    assert.equal(await Promise.race([expunged, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3000))]), 1);
    await watcher.noop();
    await idling.catch(() => {});
    await writer.logout();
    await watcher.logout();
  });

  it('Python imaplib runs a short session', async () => {
    const result = await python(PYTHON_SESSION, [String(t.port)]);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(out.login, 'OK');
    assert.ok((out.list as string[]).includes('(\\HasNoChildren) "/" "INBOX"'));
    assert.match(out.append as string, /^\[APPENDUID \d+ \d+\] APPEND completed$/);
    assert.equal((out.select as string[])[0], 'OK');
    assert.deepEqual(out.fetch, [`${(out.search as string).split(' ').pop()} (FLAGS (\\Flagged \\Recent) BODY[TEXT] {17}`, 'Hi from imaplib\r\n']);
    assert.equal(out.store, 'OK');
    assert.equal((out.expunge as string[]).length, 1);
    assert.equal(out.logout, 'BYE');
  });
});
