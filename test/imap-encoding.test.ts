/**
 * Header and literal encoding (issue 9, defect 10):
 * - a NUL in a message never goes out raw inside an IMAP literal (RFC 3501: literal = *CHAR8, no NUL); every
 *   FETCH path that sends message bytes or header strings replaces it with a space, keeping sizes;
 * - raw 8-bit header fields are decoded one by one: a Latin-1 Subject next to a UTF-8 From leaves the From
 *   name intact in ENVELOPE (it was decoded as Latin-1 with the whole block before).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import libmime from 'libmime';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { decodeWindows1252, headerText, parseHeaderBlock } from '../storage/mime/headers.ts';
import { literal, withoutNul } from '../protocols/imap/render.ts';
import { servePop3 } from '../protocols/pop3.ts';
import { concatBytes } from '../storage/bytes.ts';
import { bootImapTestApp, login } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

/** UTF-8 From, Latin-1 (8-bit, undeclared) Subject and Comments, NULs in a header and in the body. */
const MIXED = concat(
  utf8('From: Jürgen Müller <jm@example.com>\r\nTo: alice@example.com\r\n'),
  latin1('Subject: caf\xe9 cr\xe8me \x80\r\n'),
  utf8('X-Nul: a\0b\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <mixed@example.com>\r\n\r\nbody \0 with a NUL\r\n'),
);
/** A NUL inside the Subject (an ENVELOPE string). */
const NUL_SUBJECT = utf8('From: bob@example.com\r\nSubject: nul\0here\r\nMessage-ID: <nul@example.com>\r\n\r\nhi\r\n');

describe('header charsets per field', () => {
  it('decodes each field on its own: UTF-8 when valid, else windows-1252', () => {
    const fields = parseHeaderBlock(MIXED.subarray(0, MIXED.indexOf(13, MIXED.indexOf(0x58)) + 2));
    assert.equal(fields.find((f) => f.key === 'from')!.value, 'Jürgen Müller <jm@example.com>');
    assert.equal(fields.find((f) => f.key === 'subject')!.value, 'café crème €');
  });

  it('decodes folded fields as a whole and keeps bytes the charset does not assign', () => {
    const block = concat(utf8('Subject: Grüße\r\n aus Köln\r\n'), latin1('Comments: \xfcber\r\n \xe4rger \x81\x8d\r\n'));
    assert.deepEqual(parseHeaderBlock(block), [
      { key: 'subject', value: 'Grüße aus Köln' },
      { key: 'comments', value: 'über ärger \x81\x8d' },
    ]);
  });

  it('decodes windows-1252 the same way under every runtime', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = decodeWindows1252(all);
    assert.equal(text.length, 256);
    assert.equal(text.slice(0x80, 0xa0), '€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ');
    assert.equal(text.slice(0xa0), latin1Range(0xa0, 0x100));
    assert.equal(headerText(utf8('naïve')), 'naïve');
    assert.equal(headerText(latin1('na\xefve')), 'naïve');
  });
});

function latin1Range(from: number, to: number): string {
  return String.fromCharCode(...Array.from({ length: to - from }, (_, i) => from + i));
}

describe('NUL in literals', () => {
  it('literal() and withoutNul() replace NUL with a space, same size, without touching the source', async () => {
    assert.equal(literal('a\0\0b'), '{4}\r\na  b');
    const stored = utf8('x\0y');
    const out: Uint8Array[] = [];
    async function* source() {
      yield stored;
      yield utf8('plain');
    }
    for await (const chunk of withoutNul(source())) out.push(chunk);
    assert.deepEqual(out.map((c) => new TextDecoder().decode(c)), ['x y', 'plain']);
    assert.equal(stored[1], 0);
  });
});

describe('FETCH over IMAP: NUL and mixed header charsets', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp();
    const inbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!;
    for (const source of [MIXED, NUL_SUBJECT]) {
      const stored = await storeMessage(t.app, internalContext(t.app.log), { userId: t.userId, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source });
      assert.ok(stored.ok);
    }
  });
  after(async () => {
    await t.close();
  });

  it('sends no NUL in any body section, and sizes stay those of the stored message', async () => {
    const client = await login(t.app);
    await client.command('SELECT INBOX');
    const items = [
      'BODY.PEEK[]',
      'BODY.PEEK[HEADER]',
      'BODY.PEEK[HEADER.FIELDS (X-Nul)]',
      'BODY.PEEK[HEADER.FIELDS.NOT (From)]',
      'BODY.PEEK[TEXT]',
      'BODY.PEEK[1]',
      'BODY.PEEK[]<0.200>',
      'BODY.PEEK[]<150>',
      'RFC822',
      'RFC822.HEADER',
      'RFC822.TEXT',
      'ENVELOPE',
      'BODYSTRUCTURE',
    ];
    for (const item of items) {
      const text = (await client.command(`FETCH 1:2 (${item})`)).join('\r\n');
      assert.ok(!text.includes('\0'), `${item} carries a NUL: ${JSON.stringify(text.slice(0, 300))}`);
      assert.match(text, /TAG OK/);
    }
    const full = (await client.command('FETCH 1 (RFC822.SIZE BODY.PEEK[])')).join('\r\n');
    const size = Number(/RFC822\.SIZE (\d+)/.exec(full)![1]);
    assert.equal(size, MIXED.length);
    assert.match(full, new RegExp(`BODY\\[\\] \\{${MIXED.length}\\}`));
    assert.ok(full.includes('X-Nul: a b\r\n'), full);
    assert.ok(full.includes('body   with a NUL'), full);
    const fields = (await client.command('FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-Nul)])')).join('\r\n');
    assert.ok(fields.includes('{14}\r\nX-Nul: a b\r\n\r\n'), fields);
    client.end();
  });

  it('keeps a UTF-8 From name intact next to a Latin-1 Subject in ENVELOPE', async () => {
    const client = await login(t.app);
    await client.command('SELECT INBOX');
    const envelope = (await client.command('FETCH 1 (ENVELOPE)'))[0]!;
    const words = [...envelope.matchAll(/"(=\?[^"]+)"/g)].map((m) => libmime.decodeWords(m[1]!));
    assert.ok(words.includes('café crème €'), envelope);
    assert.ok(words.includes('Jürgen Müller'), envelope);
    // with UTF8=ACCEPT the strings go out as UTF-8
    assert.deepEqual(await client.command('ENABLE UTF8=ACCEPT'), ['* ENABLED UTF8=ACCEPT', 'TAG OK ENABLE completed']);
    const raw = (await client.command('FETCH 1 (ENVELOPE)'))[0]!;
    assert.ok(raw.includes('"café crème €"'), raw);
    assert.ok(raw.includes('(("Jürgen Müller" NIL "jm" "example.com"))'), raw);
    const nul = (await client.command('FETCH 2 (ENVELOPE)')).join('\r\n');
    assert.ok(nul.includes('{8}\r\nnul here'), nul);
    client.end();
  });

  it('finds the Latin-1 Subject and the UTF-8 From with SEARCH', async () => {
    const client = await login(t.app);
    await client.command('SELECT INBOX');
    assert.deepEqual(await client.command('SEARCH CHARSET UTF-8 SUBJECT "crème"'), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH CHARSET UTF-8 FROM "Müller"'), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    client.end();
  });

  it('POP3 RETR still sends the stored bytes, NUL included (RFC 1939 has no CHAR8 rule; dot-stuffing is unaffected)', async () => {
    const { client: side, server } = memoryPair();
    const done = servePop3(t.app, memoryConnection(server));
    const client = new TranscriptClient(side);
    await client.line();
    client.cmd('USER alice');
    await client.line();
    client.cmd('PASS secret');
    assert.match((await client.line())!, /^\+OK/);
    client.cmd('RETR 1');
    assert.match((await client.line())!, /^\+OK/);
    const lines = await client.multiline();
    assert.ok(lines.includes('X-Nul: a\0b'), JSON.stringify(lines));
    client.cmd('QUIT');
    await client.line();
    await done;
  });
});
