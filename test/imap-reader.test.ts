/**
 * The IMAP command reader on the wire: literals split across packets, LITERAL+, pipelining, and every limit
 * enforced while reading (line length, literal size, APPEND TOOBIG before the literal is read, NUL bytes,
 * invalid UTF-8, deep nesting), plus the spooling of large APPEND literals to the data directory.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { imapTestAppPerSuite, bootImapTestApp, connect, login, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { CommandTokenizer } from '../protocols/imap/tokenizer.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('IMAP tokenizer', () => {
  it('reads atoms, quoted strings, lists, NIL and BODY sections with partials', () => {
    const t = new CommandTokenizer();
    assert.equal(t.feed(bytes(' 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.100> BODY[]) NIL "a\\"b"')), null);
    const args = t.finish();
    assert.deepEqual(args[0], { type: 'atom', value: '1:*' });
    const items = (args[1] as { items: unknown[] }).items;
    assert.deepEqual(items[0], { type: 'atom', value: 'FLAGS' });
    assert.deepEqual(items[1], {
      type: 'atom',
      value: 'BODY.PEEK',
      section: [
        { type: 'atom', value: 'HEADER.FIELDS' },
        {
          type: 'list',
          items: [
            { type: 'atom', value: 'From' },
            { type: 'string', value: 'To', bytes: bytes('To'), literal: false },
          ],
        },
      ],
      partial: { start: 0, length: 100 },
    });
    assert.deepEqual(items[2], { type: 'atom', value: 'BODY', section: [] });
    assert.deepEqual(args[2], { type: 'nil' });
    assert.equal((args[3] as { value: string }).value, 'a"b');
  });

  it('pauses at literal markers and refuses malformed input', () => {
    const t = new CommandTokenizer();
    assert.deepEqual(t.feed(bytes(' INBOX {12}')), { size: 12, sync: true, binary: false });
    assert.deepEqual(new CommandTokenizer().feed(bytes(' {3+}')), { size: 3, sync: false, binary: false });
    for (const bad of [' (a', ' a)', ' "open', ' "a\\x"', ' a{3}b', ' (a)(b)', ' "\u0000"']) {
      assert.throws(() => {
        const tok = new CommandTokenizer();
        tok.feed(bytes(bad));
        tok.finish();
      }, /./, bad);
    }
    assert.throws(() => new CommandTokenizer().feed(new Uint8Array([0x20, 0x22, 0xff, 0xfe, 0x22])), /UTF-8/);
  });
});

describe('IMAP reader limits on the wire', () => {
  const t = imapTestAppPerSuite({ imap: { maxLineLength: 2048, maxLiteralSize: 4096 }, limits: { maxMessageSize: 512 * 1024 } });

  it('assembles literals split across packets and pipelined commands', async () => {
    const { client } = await connect(t.app);
    client.write('A1 LOGIN {5}\r\n');
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write('ali');
    await tick();
    client.write('ce {6+}\r\nsec');
    await tick();
    client.write('ret\r\nA2 NOOP\r\nA3 NOOP\r\n');
    assert.match(await client.line(), /^A1 OK \[CAPABILITY/);
    assert.equal(await client.line(), 'A2 OK NOOP completed');
    assert.equal(await client.line(), 'A3 OK NOOP completed');
  });

  it('refuses an oversized APPEND with TOOBIG before reading the literal, and stays usable', async () => {
    const client = await login(t.app);
    client.write('A1 APPEND INBOX {1073741824}\r\n');
    assert.match(await client.line(), /^A1 NO \[TOOBIG\] Message exceeds the maximum size of 524288 bytes$/);
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
  });

  it('closes the connection after refusing an oversized non-synchronizing APPEND literal', async () => {
    const client = await login(t.app);
    client.write('A1 APPEND INBOX {1073741824+}\r\nxxxxxxxx');
    assert.match(await client.line(), /^A1 NO \[TOOBIG\]/);
    assert.equal(await client.line(), '* BYE Closing connection');
    await client.done;
  });

  it('refuses a literal over imap.maxLiteralSize outside APPEND without a continuation', async () => {
    const { client } = await connect(t.app);
    client.write('A1 LOGIN {5000}\r\n');
    assert.equal(await client.line(), 'A1 BAD Literal too large');
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
  });

  it('answers an endless line with BAD and BYE without reading it all', async () => {
    const { client } = await connect(t.app);
    client.write('A1 NOOP ' + 'x'.repeat(4000));
    assert.equal(await client.line(), '* BAD Command line too long');
    assert.equal(await client.line(), '* BYE Closing connection');
    await client.done;
  });

  it('answers NUL bytes, invalid UTF-8 and deep nesting with BAD and keeps the session', async () => {
    const client = await login(t.app);
    await client.command('SELECT INBOX');
    client.write('A1 LOGIN a\0b c\r\n');
    assert.match(await client.line(), /^A1 BAD/);
    client.write(new Uint8Array([...bytes('A2 SEARCH SUBJECT "'), 0xc3, 0x28, ...bytes('"\r\n')]));
    assert.equal(await client.line(), 'A2 BAD Invalid UTF-8 in command');
    client.write(`A3 SEARCH ${'('.repeat(1000)}ALL${')'.repeat(1000)}\r\n`);
    assert.match(await client.line(), /^A3 BAD/);
    client.write(`A4 SEARCH ${'('.repeat(1000)}\r\n`);
    assert.equal(await client.line(), 'A4 BAD Unterminated list');
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
  });

  it('skips the literal of a bad command sent with LITERAL+', async () => {
    const { client } = await connect(t.app);
    client.write('A1 LOGIN a) {5+}\r\nhello\r\nA2 NOOP\r\n');
    assert.match(await client.line(), /^A1 BAD/);
    assert.equal(await client.line(), 'A2 OK NOOP completed');
  });

  it('spools a large APPEND literal to dataDir/tmp, stores it exactly, and removes the spool file', async () => {
    const client = await login(t.app);
    await client.command('CREATE Big');
    const body = ('0123456789abcdef'.repeat(4) + '\r\n').repeat(4000); // ~264 KB
    const text = message('big', body);
    const size = Buffer.byteLength(text);
    client.write(`A1 APPEND Big {${size}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    for (let i = 0; i < text.length; i += 50_000) {
      client.write(text.slice(i, i + 50_000));
      await tick();
    }
    client.write('\r\n');
    assert.match(await client.line(), /^A1 OK \[APPENDUID \d+ 1\]/);
    const tmp = join(t.dataDir, 'tmp');
    const spooled = () => (existsSync(tmp) ? readdirSync(tmp).length : 0);
    for (let i = 0; i < 100 && spooled() > 0; i++) await tick(); // removed right after the tagged response
    assert.equal(spooled(), 0, 'spool file removed');
    await client.command('SELECT Big');
    assert.deepEqual(await client.command('FETCH 1 RFC822.SIZE'), [`* 1 FETCH (RFC822.SIZE ${size})`, 'TAG OK FETCH completed']);
    const fetched = await client.raw('FETCH 1 BODY.PEEK[]', 'F1');
    assert.ok(fetched.includes(`{${size}}\r\n${text})`));
  });

  it('says BYE after imap.maxBadCommands consecutive BAD responses', async () => {
    const { client } = await connect(t.app);
    for (let i = 0; i < 19; i++) assert.match(await client.status('BOGUS'), /^BAD/);
    client.write('A99 BOGUS\r\n');
    assert.equal(await client.line(), 'A99 BAD Unknown command BOGUS');
    assert.equal(await client.line(), '* BYE Too many bad commands');
    await client.done;
  });
});

describe('IMAP LITERAL+ and LITERAL- (RFC 7888, imap.literalMinus)', () => {
  const capabilities = async (t: ImapTestApp) => (await connect(t.app)).greeting.replace(/^\* OK \[CAPABILITY ([^\]]*)\].*$/, '$1').split(' ');
  const x = (n: number) => 'x'.repeat(n);

  it('LITERAL+ (the default): announced, and a non-synchronizing literal up to imap.maxLiteralSize is taken', async () => {
    const t = await bootImapTestApp();
    try {
      const caps = await capabilities(t);
      assert.ok(caps.includes('LITERAL+') && !caps.includes('LITERAL-'));
      const client = await login(t.app);
      await client.command('SELECT INBOX');
      client.write(`A1 SEARCH SUBJECT {5000+}\r\n${x(5000)}\r\n`);
      assert.deepEqual((await client.untilTagged('A1')).split('\r\n'), ['* SEARCH', 'A1 OK SEARCH completed', '']);
    } finally {
      await t.close();
    }
  });

  describe('LITERAL-', () => {
    let t: ImapTestApp;
    before(async () => {
      t = await bootImapTestApp({ imap: { literalMinus: true, maxLiteralSize: 16384 } });
    });
    after(() => t.close());

    it('announces LITERAL- instead of LITERAL+', async () => {
      const caps = await capabilities(t);
      assert.ok(caps.includes('LITERAL-') && !caps.includes('LITERAL+'));
      const client = await login(t.app);
      const [line] = await client.command('CAPABILITY');
      assert.match(line!, /^\* CAPABILITY .* LITERAL- /);
      assert.ok(!line!.includes('LITERAL+'));
    });

    it('takes non-synchronizing literals of up to 4096 bytes', async () => {
      const client = await login(t.app);
      await client.command('SELECT INBOX');
      client.write(`A1 SEARCH SUBJECT {4096+}\r\n${x(4096)} BODY {3+}\r\nabc\r\n`);
      assert.deepEqual((await client.untilTagged('A1')).split('\r\n'), ['* SEARCH', 'A1 OK SEARCH completed', '']);
      client.write(`A2 APPEND INBOX {${message('small').length}+}\r\n${message('small')}\r\n`);
      assert.match(await client.untilTagged('A2'), /\r\nA2 OK \[APPENDUID \d+ 1\]/);
    });

    it('answers a larger one BAD [TOOBIG], discards it (and the rest of the command) and goes on', async () => {
      const client = await login(t.app);
      await client.command('SELECT INBOX');
      client.write(`A1 SEARCH SUBJECT {4097+}\r\n${x(4097)} BODY {3+}\r\nabc\r\nA2 NOOP\r\n`);
      assert.equal(await client.line(), 'A1 BAD [TOOBIG] Non-synchronizing literals are limited to 4096 bytes (LITERAL-)');
      assert.equal(await client.line(), 'A2 OK NOOP completed');
      const text = message('big', x(5000) + '\r\n');
      client.write(`A3 APPEND INBOX {${text.length}+}\r\n${text}\r\nA4 NOOP\r\n`);
      assert.match(await client.line(), /^A3 BAD \[TOOBIG\]/);
      assert.equal(await client.line(), 'A4 OK NOOP completed');
      assert.equal((await t.app.storage.messages.index((await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!.id)).length, 1, 'nothing appended');
      // the same message with a synchronizing literal is fine
      client.write(`A5 APPEND INBOX {${text.length}}\r\n`);
      assert.equal(await client.line(), '+ Ready for literal data');
      client.write(text + '\r\n');
      assert.match(await client.untilTagged('A5'), /\r\nA5 OK \[APPENDUID \d+ 2\]/);
    });

    it('closes the session instead of reading one over imap.maxLiteralSize', async () => {
      const client = await login(t.app);
      client.write('A1 APPEND INBOX {1073741824+}\r\nxxxxxxxx');
      assert.match(await client.line(), /^A1 BAD \[TOOBIG\]/);
      assert.equal(await client.line(), '* BYE Closing connection');
      await client.done;
    });
  });
});
