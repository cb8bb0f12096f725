import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterHeaderFields, parseFetch, renderFetch } from '../protocols/imap/fetch.ts';
import type { FetchPlan } from '../protocols/imap/fetch.ts';
import { ImapSyntaxError } from '../protocols/imap/types.ts';
import type { ImapToken } from '../protocols/imap/types.ts';
import { ingestMessage } from '../storage/mime/index.ts';
import type { IngestOptions } from '../storage/mime/index.ts';
import type { MessageIndexEntry, MessageRecord } from '../storage/ports.ts';
import { atom, atoms, flatten, list, str } from './helpers/imap-tokens.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture, latin1 } from './helpers/mime-fixtures.ts';

const INTERNAL_DATE = Date.UTC(2024, 0, 2, 10, 0, 0);

async function load(name: string, options: IngestOptions = {}) {
  const blobs = new MemoryBlobs();
  const original = fixture(name);
  const message = await ingestMessage(original, blobs, options);
  const entry: MessageIndexEntry = { uid: 42, modseq: 7, flags: ['\\Seen'], size: message.size, internalDate: INTERNAL_DATE };
  const record: MessageRecord = {
    id: '1',
    userId: 'u',
    mailboxId: 'm',
    uid: 42,
    modseq: 7,
    flags: entry.flags,
    internalDate: INTERNAL_DATE,
    size: message.size,
    messageId: message.messageId,
    threadId: 't',
    headerDate: message.headerDate ?? INTERNAL_DATE,
    subject: message.subject,
    envelope: message.envelope,
    mime: message.mime,
    hasAttachments: message.hasAttachments,
  };
  const text = latin1(original);
  const fetch = async (args: ImapToken[], uid = false, extra: { recent?: boolean; flagsChanged?: boolean } = {}) => {
    const plan = parseFetch(args, { uid });
    return flatten(await renderFetch(plan, { seq: 3, entry, record, content: message.content, blobs, ...extra }));
  };
  return { blobs, message, entry, record, text, fetch };
}

const body = (section: ImapToken[], partial?: { start: number; length: number | null }) => atom('BODY', section, partial);
const peek = (section: ImapToken[], partial?: { start: number; length: number | null }) => atom('BODY.PEEK', section, partial);

describe('parseFetch', () => {
  it('expands macros', () => {
    assert.deepEqual(parseFetch([atom('FAST')], { uid: false }).items.map((item) => item.type), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
    assert.deepEqual(parseFetch([atom('all')], { uid: false }).items.map((item) => item.type), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']);
    const full = parseFetch([atom('FULL')], { uid: false });
    assert.deepEqual(full.items.map((item) => item.type), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']);
    assert.equal(full.needsRecord, true);
    assert.equal(full.needsContent, false);
  });

  it('single items and lists; UID first for UID FETCH, not duplicated', () => {
    const plan = parseFetch([list(...atoms('FLAGS UID'))], { uid: true });
    assert.deepEqual(plan.items.map((item) => item.type), ['UID', 'FLAGS']);
    assert.equal(plan.needsRecord, false);
    assert.equal(plan.needsContent, false);
    assert.deepEqual(parseFetch([atom('flags')], { uid: false }).items, [{ type: 'FLAGS' }]);
  });

  it('accepts a leading sequence set', () => {
    const plan = parseFetch([atom('1:*'), atom('FLAGS')], { uid: false });
    assert.equal(plan.sequence, '1:*');
    assert.deepEqual(plan.items, [{ type: 'FLAGS' }]);
  });

  it('body sections: PEEK, partial, HEADER.FIELDS lists, nested part numbers', () => {
    const plan = parseFetch(
      [list(peek([atom('HEADER.FIELDS'), list(atom('From'), str('To'))], { start: 0, length: 100 }), body([atom('1.2.TEXT')]), body([]))],
      { uid: false },
    );
    assert.deepEqual(plan.items, [
      { type: 'section', name: 'BODY', peek: true, section: { part: '', kind: 'HEADER.FIELDS', fields: ['From', 'To'] }, partial: { start: 0, length: 100 } },
      { type: 'section', name: 'BODY', peek: false, section: { part: '1.2', kind: 'TEXT', fields: [] }, partial: null },
      { type: 'section', name: 'BODY', peek: false, section: { part: '', kind: 'full', fields: [] }, partial: null },
    ]);
    assert.equal(plan.needsContent, true);
    assert.equal(plan.needsRecord, true);
    assert.equal(plan.setsSeen, true);
  });

  it('BODY[] alone needs content but no record; PEEK does not set \\Seen', () => {
    const plan = parseFetch([peek([])], { uid: false });
    assert.equal(plan.needsContent, true);
    assert.equal(plan.needsRecord, false);
    assert.equal(plan.setsSeen, false);
    assert.deepEqual(plan.parts, { content: true });
  });

  it('reads only the parts the items need: ENVELOPE no MIME tree or bytes, BODYSTRUCTURE no envelope', () => {
    assert.deepEqual(parseFetch([list(...atoms('UID ENVELOPE'))], { uid: true }).parts, { envelope: true });
    assert.deepEqual(parseFetch([atom('BODYSTRUCTURE')], { uid: false }).parts, { mime: true });
    assert.deepEqual(parseFetch([atom('FULL')], { uid: false }).parts, { envelope: true, mime: true });
    assert.deepEqual(parseFetch([atom('RFC822.HEADER')], { uid: false }).parts, { content: true, mime: true });
    assert.deepEqual(parseFetch([atom('FAST')], { uid: false }).parts, {});
  });

  it('RFC822 items: RFC822 and RFC822.TEXT set \\Seen, RFC822.HEADER does not', () => {
    assert.equal(parseFetch([atom('RFC822')], { uid: false }).setsSeen, true);
    assert.equal(parseFetch([atom('RFC822.TEXT')], { uid: false }).setsSeen, true);
    const header = parseFetch([atom('RFC822.HEADER')], { uid: false });
    assert.equal(header.setsSeen, false);
    assert.equal(header.needsRecord, true);
    assert.equal(parseFetch([atom('RFC822.SIZE')], { uid: false }).needsContent, false);
  });

  it('CHANGEDSINCE implies MODSEQ and enables CONDSTORE', () => {
    const plan = parseFetch([list(atom('FLAGS')), list(atom('CHANGEDSINCE'), atom('12345'))], { uid: true });
    assert.equal(plan.changedSince, 12345);
    assert.deepEqual(plan.items.map((item) => item.type), ['UID', 'FLAGS', 'MODSEQ']);
    assert.equal(plan.enablesCondstore, true);
    assert.equal(parseFetch([atom('MODSEQ')], { uid: false }).enablesCondstore, true);
    assert.equal(parseFetch([atom('FLAGS')], { uid: false }).enablesCondstore, false);
    const condstore = parseFetch([atom('FLAGS')], { uid: false, condstore: true });
    assert.deepEqual(condstore.items.map((item) => item.type), ['FLAGS', 'MODSEQ']);
  });

  const invalid: Array<[string, ImapToken[]]> = [
    ['nothing', []],
    ['unknown item', [atom('FOO')]],
    ['empty list', [list()]],
    ['macro inside a list', [list(atom('ALL'))]],
    ['BODY.PEEK without section', [atom('BODY.PEEK')]],
    ['section on FLAGS', [atom('FLAGS', [])]],
    ['MIME without part', [body([atom('MIME')])]],
    ['HEADER.FIELDS without list', [body([atom('HEADER.FIELDS')])]],
    ['HEADER.FIELDS with empty list', [body([atom('HEADER.FIELDS'), list()])]],
    ['HEADER with a list', [body([atom('HEADER'), list(atom('From'))])]],
    ['part 0', [body([atom('0')])]],
    ['part 1.0', [body([atom('1.0.TEXT')])]],
    ['unknown section', [body([atom('1.FOO')])]],
    ['trailing dot', [body([atom('1.')])]],
    ['partial of length 0', [body([], { start: 0, length: 0 })]],
    ['partial without section', [atom('BODY', undefined, { start: 0, length: 1 })]],
    ['unknown modifier', [atom('FLAGS'), list(atom('VANISHED'))]],
    ['CHANGEDSINCE without value', [atom('FLAGS'), list(atom('CHANGEDSINCE'))]],
    ['CHANGEDSINCE not a number', [atom('FLAGS'), list(atom('CHANGEDSINCE'), atom('x1'))]],
    ['string as item', [str('FLAGS')]],
    ['too many arguments', [atom('FLAGS'), list(atom('CHANGEDSINCE'), atom('1')), atom('X')]],
  ];
  for (const [name, args] of invalid) {
    it(`rejects ${name}`, () => assert.throws(() => parseFetch(args, { uid: false }), ImapSyntaxError));
  }
});

describe('renderFetch: simple data items', () => {
  it('FAST with UID FETCH', async () => {
    const { fetch, message } = await load('simple.eml');
    assert.equal(
      await fetch([atom('FAST')], true),
      `* 3 FETCH (UID 42 FLAGS (\\Seen) INTERNALDATE "02-Jan-2024 10:00:00 +0000" RFC822.SIZE ${message.size})`,
    );
  });

  it('MODSEQ, \\Recent, and FLAGS added when \\Seen changed', async () => {
    const { fetch } = await load('simple.eml');
    assert.equal(await fetch([atom('FLAGS'), list(atom('CHANGEDSINCE'), atom('1'))], true, { recent: true }), '* 3 FETCH (UID 42 FLAGS (\\Seen \\Recent) MODSEQ (7))');
    assert.equal(await fetch([atom('UID')], false, { flagsChanged: true }), '* 3 FETCH (UID 42 FLAGS (\\Seen))');
  });

  it('ENVELOPE, BODY and BODYSTRUCTURE come from the record', async () => {
    const { fetch } = await load('rfc822-attachment.eml');
    const out = await fetch([list(...atoms('ENVELOPE BODY BODYSTRUCTURE'))]);
    assert.match(out, /^\* 3 FETCH \(ENVELOPE \("Wed, 03 Jan 2024 08:30:00 \+0100" "Fwd: =\?ISO-8859-1\?Q\?R=E9union\?=" /);
    assert.match(out, / BODY \(\("text" "plain" \("charset" "us-ascii"\) NIL NIL "7bit" 32 1\)\("message" "rfc822" /);
    assert.match(out, / BODYSTRUCTURE \(.* "mixed" \("boundary" "outer"\) NIL NIL NIL\)\)$/);
  });

  it('throws (a caller bug) when the plan needs a record it did not get', async () => {
    const { entry, blobs } = await load('simple.eml');
    const plan = parseFetch([atom('ENVELOPE')], { uid: false });
    await assert.rejects(renderFetch(plan, { seq: 1, entry, blobs }));
  });
});

describe('renderFetch: body sections', () => {
  it('BODY[] / RFC822 stream the stored bytes; RFC822.SIZE agrees', async () => {
    const { fetch, text, message } = await load('nested-multipart.eml');
    assert.equal(text.length, message.size);
    assert.equal(await fetch([list(atom('RFC822.SIZE'), body([]))]), `* 3 FETCH (RFC822.SIZE ${text.length} BODY[] {${text.length}}\r\n${text})`);
    assert.equal(await fetch([atom('RFC822')]), `* 3 FETCH (RFC822 {${text.length}}\r\n${text})`);
  });

  it('reads through blob segments too', async () => {
    const { fetch, text, blobs } = await load('nested-multipart.eml', { blobThreshold: 64 });
    assert.ok(blobs.store.size > 0);
    assert.equal(await fetch([peek([])]), `* 3 FETCH (BODY[] {${text.length}}\r\n${text})`);
    const start = text.indexOf('JVBERi0x') + 5;
    assert.equal(await fetch([peek([], { start, length: 30 })]), `* 3 FETCH (BODY[]<${start}> {30}\r\n${text.slice(start, start + 30)})`);
  });

  it('partial boundaries', async () => {
    const { fetch, text } = await load('simple.eml');
    const size = text.length;
    assert.equal(await fetch([peek([], { start: 0, length: 10 })]), `* 3 FETCH (BODY[]<0> {10}\r\n${text.slice(0, 10)})`);
    assert.equal(await fetch([peek([], { start: size - 5, length: 100 })]), `* 3 FETCH (BODY[]<${size - 5}> {5}\r\n${text.slice(-5)})`);
    assert.equal(await fetch([peek([], { start: size, length: 10 })]), `* 3 FETCH (BODY[]<${size}> "")`);
    assert.equal(await fetch([peek([], { start: size + 100, length: 10 })]), `* 3 FETCH (BODY[]<${size + 100}> "")`);
    assert.equal(await fetch([peek([], { start: size - 1, length: 1 })]), `* 3 FETCH (BODY[]<${size - 1}> {1}\r\n${text.slice(-1)})`);
    assert.equal(await fetch([peek([], { start: 3, length: null })]), `* 3 FETCH (BODY[]<3> {${size - 3}}\r\n${text.slice(3)})`);
    const bodyStart = text.indexOf('\r\n\r\n') + 4;
    assert.equal(await fetch([peek([atom('TEXT')], { start: 2, length: 4 })]), `* 3 FETCH (BODY[TEXT]<2> {4}\r\n${text.slice(bodyStart + 2, bodyStart + 6)})`);
  });

  it('HEADER and TEXT of the message', async () => {
    const { fetch, text } = await load('nested-multipart.eml');
    const split = text.indexOf('\r\n\r\n') + 4;
    const header = text.slice(0, split);
    assert.equal(await fetch([peek([atom('HEADER')])]), `* 3 FETCH (BODY[HEADER] {${header.length}}\r\n${header})`);
    assert.equal(await fetch([atom('RFC822.HEADER')]), `* 3 FETCH (RFC822.HEADER {${header.length}}\r\n${header})`);
    const rest = text.slice(split);
    assert.equal(await fetch([body([atom('TEXT')])]), `* 3 FETCH (BODY[TEXT] {${rest.length}}\r\n${rest})`);
    assert.equal(await fetch([atom('RFC822.TEXT')]), `* 3 FETCH (RFC822.TEXT {${rest.length}}\r\n${rest})`);
  });

  it('HEADER.FIELDS keeps folded lines, matches names case-insensitively, ends with the blank line', async () => {
    const { fetch } = await load('nested-multipart.eml');
    const expected = 'Subject: Quarterly report\r\n with a folded subject\r\nReferences: <root@example.com>\r\n <parent@example.com>\r\n\r\n';
    assert.equal(
      await fetch([peek([atom('HEADER.FIELDS'), list(atom('references'), str('SUBJECT'), atom('X-Missing'))])]),
      `* 3 FETCH (BODY[HEADER.FIELDS (references SUBJECT X-Missing)] {${expected.length}}\r\n${expected})`,
    );
    const partial = await fetch([peek([atom('HEADER.FIELDS'), list(atom('Subject'))], { start: 9, length: 7 })]);
    assert.equal(partial, '* 3 FETCH (BODY[HEADER.FIELDS (Subject)]<9> {7}\r\nQuarter)');
    assert.equal(await fetch([peek([atom('HEADER.FIELDS'), list(atom('X-None'))])]), '* 3 FETCH (BODY[HEADER.FIELDS (X-None)] {2}\r\n\r\n)');
  });

  it('HEADER.FIELDS.NOT drops the named fields with their continuation lines', async () => {
    const { fetch, text } = await load('nested-multipart.eml');
    const header = text.slice(0, text.indexOf('\r\n\r\n') + 4);
    const expected = header
      .replace(/Received:.*\r\n\t.*\r\n\t.*\r\n/, '')
      .replace('Subject: Quarterly report\r\n with a folded subject\r\n', '')
      .replace(/Return-Path: .*\r\n/, '');
    assert.ok(expected.length < header.length - 100);
    assert.equal(
      await fetch([peek([atom('HEADER.FIELDS.NOT'), list(...atoms('Received SUBJECT return-path'))])]),
      `* 3 FETCH (BODY[HEADER.FIELDS.NOT (Received SUBJECT return-path)] {${expected.length}}\r\n${expected})`,
    );
  });

  it('nested part numbers, MIME headers, nonexistent parts', async () => {
    const { fetch } = await load('nested-multipart.eml');
    const plain = 'Hello Bob,\r\n\r\nthe quarterly numbers are attached. Stra=C3=9Fe is fine.\r\n';
    assert.equal(await fetch([peek([atom('1.1')])]), `* 3 FETCH (BODY[1.1] {${plain.length}}\r\n${plain})`);
    const mime = 'Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.com>\r\nContent-Disposition: inline\r\n\r\n';
    assert.equal(await fetch([peek([atom('1.2.2.MIME')])]), `* 3 FETCH (BODY[1.2.2.MIME] {${mime.length}}\r\n${mime})`);
    assert.equal(await fetch([peek([atom('9')])]), '* 3 FETCH (BODY[9] "")');
    assert.equal(await fetch([peek([atom('1.2.2.1')])]), '* 3 FETCH (BODY[1.2.2.1] "")');
    // HEADER / TEXT of a part that is not message/rfc822
    assert.equal(await fetch([peek([atom('2.HEADER')])]), '* 3 FETCH (BODY[2.HEADER] "")');
    assert.equal(await fetch([peek([atom('2.TEXT')])]), '* 3 FETCH (BODY[2.TEXT] "")');
  });

  it('message/rfc822 parts: the whole message, its HEADER, TEXT, MIME and inner parts', async () => {
    const { fetch, text } = await load('rfc822-attachment.eml');
    const mimeStart = text.indexOf('Content-Type: message/rfc822');
    const innerStart = text.indexOf('From: Organizer');
    // RFC 2046: the CRLF before `--outer--` belongs to that delimiter, so the part ends at `--inner--`
    const innerEnd = text.lastIndexOf('\r\n--outer--');
    const inner = text.slice(innerStart, innerEnd);
    assert.equal(await fetch([peek([atom('2')])]), `* 3 FETCH (BODY[2] {${inner.length}}\r\n${inner})`);
    const mime = text.slice(mimeStart, innerStart);
    assert.equal(await fetch([peek([atom('2.MIME')])]), `* 3 FETCH (BODY[2.MIME] {${mime.length}}\r\n${mime})`);
    const innerSplit = inner.indexOf('\r\n\r\n') + 4;
    const innerHeader = inner.slice(0, innerSplit);
    assert.equal(await fetch([peek([atom('2.HEADER')])]), `* 3 FETCH (BODY[2.HEADER] {${innerHeader.length}}\r\n${innerHeader})`);
    const innerText = inner.slice(innerSplit);
    assert.equal(await fetch([peek([atom('2.TEXT')])]), `* 3 FETCH (BODY[2.TEXT] {${innerText.length}}\r\n${innerText})`);
    assert.equal(
      await fetch([peek([atom('2.HEADER.FIELDS'), list(atom('Message-ID'))])]),
      '* 3 FETCH (BODY[2.HEADER.FIELDS (Message-ID)] {39}\r\nMessage-ID: <meeting-1@example.net>\r\n\r\n)',
    );
    assert.equal(await fetch([peek([atom('2.1')])]), '* 3 FETCH (BODY[2.1] {25}\r\nR=E9union demain =E0 10h.)');
    assert.equal(await fetch([peek([atom('1')])]), '* 3 FETCH (BODY[1] {32}\r\nSee the forwarded message below.)');
  });

  it('single-part message: BODY[1] is the body', async () => {
    const { fetch, text } = await load('8bit-no-charset-utf8.eml');
    const rest = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.equal(await fetch([peek([atom('1')])]), `* 3 FETCH (BODY[1] {${rest.length}}\r\n${rest})`);
    assert.equal(await fetch([peek([atom('2')])]), '* 3 FETCH (BODY[2] "")');
  });

  it('several sections in one response, literals between text', async () => {
    const { blobs, entry, record, message } = await load('simple.eml');
    const plan: FetchPlan = parseFetch([list(atom('UID'), peek([atom('1.1')]), atom('FLAGS'), peek([atom('1.2')]))], { uid: true });
    const pieces = await renderFetch(plan, { seq: 1, entry, record, content: message.content, blobs });
    assert.deepEqual(
      pieces.map((piece) => (typeof piece === 'string' ? piece : piece.size)),
      ['* 1 FETCH (UID 42 BODY[1.1] ', 5, ' FLAGS (\\Seen) BODY[1.2] ', 12, ')'],
    );
    assert.equal(await flatten(pieces), '* 1 FETCH (UID 42 BODY[1.1] {5}\r\nhello FLAGS (\\Seen) BODY[1.2] {12}\r\n<p>hello</p>)');
  });
});

describe('filterHeaderFields', () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

  it('handles bare LF, a header without final newline, and garbage lines', () => {
    assert.equal(decode(filterHeaderFields(encode('A: 1\nB: 2\n  more\nC: 3\n\n'), ['b'], false)), 'B: 2\n  more\n\r\n');
    assert.equal(decode(filterHeaderFields(encode('A: 1\r\nB: 2'), ['B'], false)), 'B: 2\r\n\r\n');
    assert.equal(decode(filterHeaderFields(encode('garbage\r\nA: 1\r\n\r\n'), ['a'], true)), 'garbage\r\n\r\n');
    assert.equal(decode(filterHeaderFields(encode('A : spaced\r\n\r\n'), ['a'], false)), 'A : spaced\r\n\r\n');
  });
});
