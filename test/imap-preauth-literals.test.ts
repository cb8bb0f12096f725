/**
 * Issue 9 defect 4: APPEND before login must not be read. The command's state is checked when its literal is
 * announced, before any continuation request or byte of it: a synchronizing literal gets `BAD Log in first`
 * without `+` (and the session goes on), a non-synchronizing one (LITERAL+) is refused and the session closes
 * before its bytes are read (discarded instead when it is within imap.maxPreAuthLiteralSize). Literals of
 * commands allowed before login (LOGIN) are held to that small limit.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bootImapTestApp, connect, login } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';

describe('IMAP literals before login (issue 9, defect 4)', () => {
  let t: ImapTestApp;
  const spooled = () => {
    const dir = join(t.dataDir, 'tmp');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('append-')) : [];
  };
  before(async () => {
    t = await bootImapTestApp({ imap: { maxPreAuthLiteralSize: 1024 }, limits: { maxMessageSize: 64 * 1024 * 1024 } });
  });
  after(() => t.close());

  it('answers an unauthenticated APPEND {20000000} with BAD and no continuation; the session goes on', async () => {
    const { client } = await connect(t.app);
    client.write('a APPEND INBOX {20000000}\r\n');
    assert.equal(await client.line(), 'a BAD Log in first');
    // the client, having seen no "+", sends its next command: it is read as a command, not as literal data
    client.write('b NOOP\r\n');
    assert.equal(await client.line(), 'b OK NOOP completed');
    assert.deepEqual(spooled(), []);
    assert.match(await client.status('LOGIN alice secret'), /^OK /);
  });

  it('refuses an unauthenticated LITERAL+ APPEND before its bytes arrive, and closes without spooling', async () => {
    const { client } = await connect(t.app);
    // only the command line is sent: the answer must not wait for the 20 MB it announces
    client.write('a APPEND INBOX {20000000+}\r\n');
    assert.equal(await client.line(), 'a BAD Log in first');
    assert.equal(await client.line(), '* BYE Closing connection');
    await client.done;
    assert.deepEqual(spooled(), []);
  });

  it('discards a small unauthenticated LITERAL+ APPEND body and stays in sync', async () => {
    const { client } = await connect(t.app);
    client.write('a APPEND INBOX {20+}\r\nSubject: x\r\n\r\nhello\r\n\r\nb NOOP\r\n');
    assert.equal(await client.line(), 'a BAD Log in first');
    assert.equal(await client.line(), 'b OK NOOP completed');
  });

  it('holds LOGIN literals to imap.maxPreAuthLiteralSize: no continuation for a larger one', async () => {
    const { client } = await connect(t.app);
    client.write('a LOGIN {2000}\r\n');
    assert.equal(await client.line(), 'a BAD Literal too large');
    client.write('b LOGIN {5}\r\n');
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write('alice {6}\r\n');
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write('secret\r\n');
    assert.match(await client.line(), /^b OK /);
  });

  it('closes instead of reading an oversized unauthenticated LITERAL+ of an allowed command', async () => {
    const { client } = await connect(t.app);
    client.write('a LOGIN {60000+}\r\n');
    assert.match(await client.line(), /^a BAD \[TOOBIG\] Literal too large$/);
    assert.equal(await client.line(), '* BYE Closing connection');
    await client.done;
  });

  it('refuses a literal of a command not allowed in the selected-only state the same way (FETCH before SELECT)', async () => {
    const client = await login(t.app);
    client.write('a FETCH 1 (BODY[HEADER.FIELDS {4}\r\n');
    assert.equal(await client.line(), 'a BAD No mailbox selected');
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
  });

  it('after login, APPEND literals are taken as before', async () => {
    const client = await login(t.app);
    client.write('a APPEND INBOX {20}\r\n');
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write('Subject: x\r\n\r\nhello\r\n\r\n');
    assert.match(await client.line(), /^a OK \[APPENDUID \d+ \d+\] APPEND completed$/);
  });
  it('a client that closes inside an APPEND literal ends its session quietly: nothing stored, no error logged', async () => {
    const client = await login(t.app);
    const inbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!;
    const before = (await t.app.storage.messages.index(inbox.id)).length;
    client.write('a APPEND INBOX {100}\r\n');
    assert.match(await client.line(), /^\+ /);
    client.write('Subject: cut\r\n');
    client.socket.end();
    await client.done;
    assert.equal((await t.app.storage.messages.index(inbox.id)).length, before, 'the half message is not stored');
    assert.ok(!t.logs.some((e) => e.msg === 'session failed'), 'an ordinary end of input, not a server fault');
  });
});
