import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeWords, fileName, findPart, ingestMessage, messageRoot, readAll, readBody, readHeader } from '../storage/mime/index.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture, latin1 } from './helpers/mime-fixtures.ts';

async function load(name: string) {
  const blobs = new MemoryBlobs();
  const message = await ingestMessage(fixture(name), blobs);
  return { blobs, message, original: fixture(name) };
}

const shape = (node: { part: string; type: string; subtype: string; children?: unknown[] }) => `${node.part}:${node.type}/${node.subtype}`;

describe('MIME tree', () => {
  it('numbers nested multiparts and reads their parameters', async () => {
    const { message } = await load('nested-multipart.eml');
    const root = message.mime;
    assert.equal(shape(root), ':multipart/mixed');
    assert.equal(root.params.boundary, 'mixed-boundary-1');
    const alt = findPart(root, '1')!;
    assert.equal(shape(alt), '1:multipart/alternative');
    assert.deepEqual(alt.children!.map(shape), ['1.1:text/plain', '1.2:multipart/related']);
    const related = findPart(root, '1.2')!;
    assert.equal(related.params.type, 'text/html');
    assert.deepEqual(related.children!.map(shape), ['1.2.1:text/html', '1.2.2:image/png']);
    const image = findPart(root, '1.2.2')!;
    assert.equal(image.id, '<logo@example.com>');
    assert.equal(image.encoding, 'base64');
    assert.deepEqual(image.disposition, { type: 'inline', params: {} });
    const plain = findPart(root, '1.1')!;
    assert.equal(plain.encoding, 'quoted-printable');
    assert.equal(plain.params.charset, 'utf-8');
    assert.equal(plain.lines, 3);
    const pdf = findPart(root, '2')!;
    assert.equal(shape(pdf), '2:application/pdf');
    assert.equal(pdf.disposition?.type, 'attachment');
    assert.equal(fileName(pdf), 'Quartalsbericht für das Jahr 2024.pdf');
    assert.equal(decodeWords(pdf.params.name!), 'Quartalsbericht für das Jahr 2024.pdf');
    assert.match(pdf.disposition!.params.filename!, /^[\x20-\x7e]+$/, 'stored parameters stay 7-bit');
    assert.equal(pdf.description, 'Report');
    assert.deepEqual(pdf.language, ['de', 'en']);
    assert.equal(findPart(root, '3'), null);
    assert.equal(findPart(root, '1.2.2.1'), null);
    assert.equal(message.hasAttachments, true);
  });

  it('parses message/rfc822 attachments into their own tree (RFC 3501 numbering)', async () => {
    const { message, blobs } = await load('rfc822-attachment.eml');
    const part = findPart(message.mime, '2')!;
    assert.equal(shape(part), '2:message/rfc822');
    assert.equal(fileName(part), 'meeting.eml');
    const inner = part.message!;
    assert.equal(inner.envelope.subject, "=?ISO-8859-1?Q?R=E9union_d'=E9quipe?=");
    assert.equal(decodeWords(inner.envelope.subject!), "Réunion d'équipe");
    assert.deepEqual(inner.envelope.from, [{ name: 'Organizer', adl: null, mailbox: 'org', host: 'example.net' }]);
    assert.equal(inner.envelope.messageId, '<meeting-1@example.net>');
    assert.equal(shape(inner.root), '2:multipart/alternative');
    assert.deepEqual(inner.root.children!.map(shape), ['2.1:text/plain', '2.2:text/html']);
    assert.equal(findPart(message.mime, '2.2'), inner.root.children![1]);
    assert.equal(messageRoot(part), inner.root);
    const header = latin1(await readAll(readHeader(message.content, blobs, inner.root)));
    assert.ok(header.startsWith('From: Organizer <org@example.net>\r\n'));
    assert.ok(header.endsWith('boundary="inner"\r\n\r\n'));
    const mime = latin1(await readAll(readHeader(message.content, blobs, part)));
    assert.equal(mime, 'Content-Type: message/rfc822; name="meeting.eml"\r\nContent-Disposition: attachment; filename="meeting.eml"\r\n\r\n');
    assert.equal(latin1(await readAll(readBody(message.content, blobs, findPart(message.mime, '2.1')!))), 'R=E9union demain =E0 10h.');
    assert.equal(message.subject, 'Fwd: Réunion');
  });

  it('numbers a single-part message body as part 1', async () => {
    const { message, blobs, original } = await load('8bit-no-charset-utf8.eml');
    assert.equal(message.mime.children, undefined);
    const body = findPart(message.mime, '1')!;
    assert.equal(body, message.mime);
    assert.deepEqual(await readAll(readBody(message.content, blobs, body)), original.slice(message.mime.bodyStart));
    assert.equal(findPart(message.mime, '2'), null);
  });

  it('numbers the mime torture test like IMAP servers do', async () => {
    const { message } = await load('mimetorture.eml');
    assert.equal(message.mime.children!.length, 11);
    const smiley = findPart(message.mime, '10')!.message!.root;
    assert.equal(shape(smiley), '10:multipart/signed');
    assert.equal(shape(findPart(message.mime, '10.1.1.1.2')!), '10.1.1.1.2:text/html');
    assert.equal(shape(findPart(message.mime, '10.2')!), '10.2:application/pgp-signature');
    assert.equal(shape(findPart(message.mime, '3.2.2')!), '3.2.2:application/x-gzip');
    assert.equal(shape(findPart(message.mime, '2.1')!), '2:text/plain', 'body of a single-part encapsulated message');
    assert.equal(fileName(findPart(message.mime, '5.2')!), 'blah1.gz', 'disposition filename wins over name');
  });

  it('defaults digest parts to message/rfc822', async () => {
    const { message } = await load('digest.eml');
    assert.deepEqual(message.mime.children!.map(shape), ['1:text/plain', '2:message/rfc822', '3:message/rfc822']);
    assert.equal(message.mime.children![1]!.message!.envelope.subject, 'first digest message');
    assert.equal(message.mime.children![2]!.message!.root.params.charset, 'utf-8');
    assert.equal(message.mime.children![1]!.headerStart + 2, message.mime.children![1]!.bodyStart, 'empty MIME header');
  });

  it('decodes RFC 2231 and RFC 2047 file names', async () => {
    const { message } = await load('encoded-filenames.eml');
    assert.equal(fileName(findPart(message.mime, '2')!), 'Prüfungsergebnis €.bin');
    assert.equal(fileName(findPart(message.mime, '3')!), 'фото отпуск.jpg');
    assert.equal(message.hasAttachments, true);
    assert.ok(message.searchText.includes('Prüfungsergebnis €.bin'));
    assert.ok(message.searchText.includes('фото отпуск.jpg'));
  });

  it('copes with missing closing boundaries', async () => {
    const { message, original } = await load('broken-boundary.eml');
    assert.deepEqual(message.mime.children!.map(shape), ['1:multipart/alternative', '2:text/plain']);
    const inner = findPart(message.mime, '1.1')!;
    assert.equal(latin1(original.slice(inner.bodyStart, inner.bodyEnd)), 'inner text that is never closed');
    const last = findPart(message.mime, '2')!;
    assert.equal(last.bodyEnd, original.length);
    assert.equal(latin1(original.slice(last.bodyStart, last.bodyEnd)), 'last part, no closing boundary\r\n');
  });

  it('handles a boundary right after the body without an empty line', async () => {
    const { message, original } = await load('no_empty_line_between_text_boundary.eml');
    assert.deepEqual(message.mime.children!.map(shape), ['1:text/plain', '2:text/plain']);
    const attachment = findPart(message.mime, '2')!;
    assert.equal(latin1(original.slice(attachment.bodyStart, attachment.bodyEnd)), 'ZXhhbXBsZQo=\n');
    assert.equal(fileName(attachment), 'example.txt');
  });

  it('treats a message without headers as all body, and one without body as all header', async () => {
    const bodyOnly = (await load('body-only.eml')).message;
    assert.equal(bodyOnly.mime.bodyStart, 0);
    assert.equal(shape(bodyOnly.mime), ':text/plain');
    assert.equal(bodyOnly.mime.lines, 2);
    assert.equal(bodyOnly.envelope.from, null);
    assert.equal(bodyOnly.subject, '');
    const headersOnly = (await load('headers-only.eml')).message;
    assert.equal(headersOnly.mime.bodyStart, fixture('headers-only.eml').length);
    assert.equal(headersOnly.mime.size, 0);
    assert.equal(headersOnly.subject, 'only headers');
  });

  it('keeps NUL bytes, 8-bit garbage and very long lines', async () => {
    const { message, original } = await load('nul-bytes.eml');
    assert.deepEqual(message.mime.children!.map(shape), ['1:text/plain', '2:application/octet-stream']);
    const text = findPart(message.mime, '1')!;
    assert.ok(text.size > 100000);
    assert.equal(text.lines, 3);
    assert.deepEqual(original.slice(findPart(message.mime, '2')!.bodyStart, findPart(message.mime, '2')!.bodyEnd), new Uint8Array([0, 1, 2, 0, 255, 13, 10, 0]));
    assert.equal(message.content.segments.filter((segment) => segment.blob).length, 1, 'the long text body goes to a blob');
  });

  it('keeps bare-LF offsets exact', async () => {
    const { message, original } = await load('bare-lf.eml');
    const plain = findPart(message.mime, '1')!;
    assert.equal(latin1(original.slice(plain.bodyStart, plain.bodyEnd)), 'plain with\nthree\nlines');
    assert.equal(plain.lines, 3);
    assert.equal(latin1(original.slice(plain.headerStart, plain.bodyStart)), 'Content-Type: text/plain\n\n');
    assert.equal(message.messageId, '<lf@example.com>');
  });
});

describe('envelope', () => {
  it('splits addresses and represents groups the IMAP way', async () => {
    const { message } = await load('nested-multipart.eml');
    const envelope = message.envelope;
    assert.equal(envelope.subject, 'Quarterly report with a folded subject');
    assert.equal(envelope.date, 'Tue, 02 Jan 2024 10:00:00 +0000');
    assert.deepEqual(envelope.from, [{ name: '=?UTF-8?Q?Alice_M=C3=BCller?=', adl: null, mailbox: 'alice', host: 'example.com' }]);
    assert.deepEqual(envelope.sender, envelope.from);
    assert.deepEqual(envelope.replyTo, envelope.from);
    assert.deepEqual(envelope.to, [
      { name: 'Bob', adl: null, mailbox: 'bob', host: 'example.org' },
      { name: 'Carol, Q.', adl: null, mailbox: 'carol', host: 'example.net' },
    ]);
    assert.deepEqual(envelope.cc, [
      { name: null, adl: null, mailbox: 'Team', host: null },
      { name: null, adl: null, mailbox: 'dave', host: 'example.com' },
      { name: 'Eve', adl: null, mailbox: 'eve', host: 'example.com' },
      { name: null, adl: null, mailbox: null, host: null },
      { name: null, adl: null, mailbox: 'undisclosed-recipients', host: null },
      { name: null, adl: null, mailbox: null, host: null },
    ]);
    assert.equal(envelope.bcc, null);
    assert.equal(envelope.inReplyTo, '<parent@example.com>');
    assert.equal(envelope.messageId, '<report-2024@example.com>');
  });

  it('gives threading ids, decoded subject and date', async () => {
    const { message } = await load('nested-multipart.eml');
    assert.equal(message.messageId, '<report-2024@example.com>');
    assert.deepEqual(message.references, ['<root@example.com>', '<parent@example.com>']);
    assert.equal(message.headerDate, Date.UTC(2024, 0, 2, 10, 0, 0));
    const jp = (await load('iso-2022-jp.eml')).message;
    assert.equal(jp.subject, '会議の件');
    assert.equal(jp.headerDate, Date.UTC(2024, 0, 4, 3, 0, 0));
    assert.equal((await load('body-only.eml')).message.headerDate, null);
  });
});
