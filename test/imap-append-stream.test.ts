/**
 * An APPEND message larger than limits.spoolMemoryBytes is read from the socket while the command runs
 * (protocols/imap/literal-stream.ts): stored byte for byte without a spool file, the next command starts at the right
 * byte whether or not the command read the message, anything after the literal is refused before the message is
 * stored, and a client leaving inside the literal stores nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bootImapTestApp, login, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const big = (subject: string) => message(subject, ('0123456789abcdef'.repeat(4) + '\r\n').repeat(600)); // ~40 KB
const size = (text: string) => Buffer.byteLength(text);

describe('IMAP APPEND of a message read while the command runs', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ limits: { spoolMemoryBytes: 4096 } });
  });
  after(() => t.close());

  const count = async (mailbox: string): Promise<string> => {
    const client = await login(t.app);
    const lines = await client.command(`STATUS ${mailbox} (MESSAGES)`);
    client.end();
    return lines[0]!;
  };

  it('stores a synchronizing literal sent in pieces exactly, with no spool file', async () => {
    const client = await login(t.app);
    await client.command('CREATE Streamed');
    const text = big('streamed');
    client.write(`A1 APPEND Streamed (\\Seen) {${size(text)}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    for (let i = 0; i < text.length; i += 7000) {
      client.write(text.slice(i, i + 7000));
      await tick();
    }
    const tmp = join(t.dataDir, 'tmp');
    assert.equal(existsSync(tmp) ? readdirSync(tmp).filter((f) => !f.endsWith('.stage')).length : 0, 0, 'no spool file');
    client.write('\r\nA2 NOOP\r\n');
    assert.match(await client.line(), /^A1 OK \[APPENDUID \d+ 1\]/);
    assert.equal(await client.line(), 'A2 OK NOOP completed');
    await client.command('SELECT Streamed');
    const fetched = await client.raw('FETCH 1 (FLAGS BODY.PEEK[])', 'F1');
    assert.ok(fetched.includes(`{${size(text)}}\r\n${text})`), 'the same bytes');
    assert.match(fetched, /FLAGS \(\\Seen \\Recent\)/);
  });

  it('takes pipelined LITERAL+ APPENDs back to back', async () => {
    const client = await login(t.app);
    await client.command('CREATE Pipelined');
    const [a, b] = [big('first'), big('second')];
    client.write(`P1 APPEND Pipelined {${size(a)}+}\r\n${a}\r\nP2 APPEND Pipelined {${size(b)}+}\r\n${b}\r\nP3 NOOP\r\n`);
    assert.match(await client.line(), /^P1 OK \[APPENDUID \d+ 1\]/);
    assert.match(await client.line(), /^P2 OK \[APPENDUID \d+ 2\]/);
    assert.equal(await client.line(), 'P3 OK NOOP completed');
  });

  it('skips the unread message of a refused APPEND and goes on with the next command', async () => {
    const client = await login(t.app);
    const text = big('nowhere');
    client.write(`N1 APPEND Nowhere {${size(text)}+}\r\n${text}\r\nN2 NOOP\r\n`);
    assert.match(await client.line(), /^N1 NO \[TRYCREATE\]/);
    assert.equal(await client.line(), 'N2 OK NOOP completed');
    // synchronizing: the continuation was sent, so the client sends the message and the server discards it
    client.write(`N3 APPEND Nowhere {${size(text)}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write(`${text}\r\nN4 NOOP\r\n`);
    assert.match(await client.line(), /^N3 NO \[TRYCREATE\]/);
    assert.equal(await client.line(), 'N4 OK NOOP completed');
  });

  it('refuses data after the literal with BAD and stores nothing', async () => {
    const client = await login(t.app);
    await client.command('CREATE Trailing');
    const text = big('trailing');
    client.write(`T1 APPEND Trailing {${size(text)}+}\r\n${text} EXTRA\r\nT2 NOOP\r\n`);
    assert.match(await client.line(), /^T1 BAD /);
    assert.equal(await client.line(), 'T2 OK NOOP completed');
    // a literal announced after it is read too, not as commands (a bare literal there is a second message: MULTIAPPEND)
    client.write(`T3 APPEND Trailing {${size(text)}+}\r\n${text} EXTRA {5+}\r\nhello\r\nT4 NOOP\r\n`);
    assert.match(await client.line(), /^T3 BAD /);
    assert.equal(await client.line(), 'T4 OK NOOP completed');
    assert.equal(await count('Trailing'), '* STATUS "Trailing" (MESSAGES 0)');
  });

  it('stores nothing when the client leaves inside the literal', async () => {
    const client = await login(t.app);
    await client.command('CREATE Left');
    const text = big('left');
    client.write(`L1 APPEND Left {${size(text)}+}\r\n${text.slice(0, 20_000)}`);
    await tick();
    client.end();
    await client.done;
    assert.equal(await count('Left'), '* STATUS "Left" (MESSAGES 0)');
    assert.ok(!t.logs.some((e) => e.level === 'error'), 'nothing logged as an error');
  });
});
