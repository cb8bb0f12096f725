import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  astring,
  byteLength,
  decodeMailboxName,
  decodeModifiedUtf7,
  encodeMailboxName,
  formatInternalDate,
  headerString,
  isInbox,
  literal,
  literalOrQuoted,
  normalizeMailboxPath,
  nstring,
  parseDateTime,
  parseSearchDate,
  quoted,
  renderBodyStructure,
  renderEnvelope,
  renderFlags,
} from '../protocols/imap/render.ts';
import { ImapSyntaxError } from '../protocols/imap/types.ts';
import { ingestMessage } from '../storage/mime/index.ts';
import type { Envelope, MimeNode } from '../storage/ports.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { mimeNode } from '../storage/mime/splitter.ts';
import { fixture } from './helpers/mime-fixtures.ts';

async function ingest(name: string) {
  return ingestMessage(fixture(name), new MemoryBlobs());
}

function leaf(patch: Partial<MimeNode>): MimeNode {
  return mimeNode({ part: '1', type: 'application', subtype: 'octet-stream', ...patch });
}

describe('IMAP strings', () => {
  it('quotes with escapes', () => {
    assert.equal(quoted('a "b" \\c'), '"a \\"b\\" \\\\c"');
    assert.equal(quoted(''), '""');
    assert.throws(() => quoted('a\r\nb'));
  });

  it('chooses a literal for CR/LF, NUL, 8-bit without UTF8=ACCEPT, and long strings', () => {
    assert.equal(literalOrQuoted('plain'), '"plain"');
    assert.equal(literalOrQuoted('a\r\nb'), '{4}\r\na\r\nb');
    // RFC 3501 literals are CHAR8 (no NUL): a NUL goes out as a space, same size
    assert.equal(literalOrQuoted('a\0b'), '{3}\r\na b');
    assert.equal(literalOrQuoted('Grüße'), '{7}\r\nGrüße');
    assert.equal(literalOrQuoted('Grüße', { utf8: true }), '"Grüße"');
    const long = 'x'.repeat(5000);
    assert.equal(literalOrQuoted(long), `{5000}\r\n${long}`);
    assert.equal(literal('😀'), '{4}\r\n😀');
    assert.equal(byteLength('😀a'), 5);
  });

  it('astring uses an atom when it can', () => {
    assert.equal(astring('INBOX'), 'INBOX');
    assert.equal(astring('Sent]Items'), 'Sent]Items');
    assert.equal(astring('Sent Items'), '"Sent Items"');
    assert.equal(astring(''), '""');
    assert.equal(astring('NIL'), '"NIL"');
    assert.equal(astring('a*b'), '"a*b"');
    assert.equal(astring('a%b'), '"a%b"');
    assert.equal(astring('{x'), '"{x"');
  });

  it('nstring and header strings', () => {
    assert.equal(nstring(null), 'NIL');
    assert.equal(nstring('x'), '"x"');
    assert.equal(headerString(null), 'NIL');
    assert.equal(headerString('Grüße'), '"=?UTF-8?B?R3LDvMOfZQ==?="');
    assert.equal(headerString('Grüße', { utf8: true }), '"Grüße"');
  });

  it('renders flag lists', () => {
    assert.equal(renderFlags(['\\Seen', '$Label1']), '(\\Seen $Label1)');
    assert.equal(renderFlags([]), '()');
  });
});

describe('ENVELOPE', () => {
  it('simple fixture', async () => {
    const message = await ingest('simple.eml');
    const from = '(("=?UTF-8?Q?Sender_Name_=F0=9F=91=BB?=" NIL "sender" "example.com"))';
    assert.equal(
      renderEnvelope(message.envelope),
      `("Wed, 23 Dec 2015 09:21:57 +0000" "Nodemailer is unicode friendly =?UTF-8?Q?=E2=9C=94?=" ${from} ${from} ${from} ` +
        '(("=?UTF-8?Q?Receiver_Name_=F0=9F=91=A5?=" NIL "receiver" "example.com")) NIL NIL NIL ' +
        '"<1450862517911-ebf3ac1e-e421bda1-4d17b820@example.com>")',
    );
  });

  it('nested fixture: groups, quoted display names, folded subject, In-Reply-To', async () => {
    const message = await ingest('nested-multipart.eml');
    const from = '(("=?UTF-8?Q?Alice_M=C3=BCller?=" NIL "alice" "example.com"))';
    assert.equal(
      renderEnvelope(message.envelope),
      `("Tue, 02 Jan 2024 10:00:00 +0000" "Quarterly report with a folded subject" ${from} ${from} ${from} ` +
        '(("Bob" NIL "bob" "example.org")("Carol, Q." NIL "carol" "example.net")) ' +
        '((NIL NIL "Team" NIL)(NIL NIL "dave" "example.com")("Eve" NIL "eve" "example.com")(NIL NIL NIL NIL)' +
        '(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ' +
        'NIL "<parent@example.com>" "<report-2024@example.com>")',
    );
  });

  it('empty headers are NIL; 8-bit values are downgraded, or sent as UTF-8 after UTF8=ACCEPT', () => {
    const envelope: Envelope = {
      date: null,
      subject: 'Grüße "quoted"',
      from: [{ name: 'Jörg', adl: null, mailbox: 'j', host: 'bücher.example' }],
      sender: null,
      replyTo: null,
      to: null,
      cc: null,
      bcc: null,
      inReplyTo: null,
      messageId: null,
    };
    assert.equal(
      renderEnvelope(envelope),
      '(NIL "=?UTF-8?B?R3LDvMOfZQ==?= \\"quoted\\"" (("=?UTF-8?B?SsO2cmc=?=" NIL "j" "xn--bcher-kva.example")) NIL NIL NIL NIL NIL NIL NIL)',
    );
    assert.equal(
      renderEnvelope(envelope, { utf8: true }),
      '(NIL "Grüße \\"quoted\\"" (("Jörg" NIL "j" "bücher.example")) NIL NIL NIL NIL NIL NIL NIL)',
    );
  });
});

describe('BODY and BODYSTRUCTURE', () => {
  it('simple fixture (nested multipart/alternative, RFC 2231 file name, base64 image)', async () => {
    const message = await ingest('simple.eml');
    assert.equal(
      renderBodyStructure(message.mime, false),
      '((("text" "plain" NIL NIL NIL "7bit" 5 1)("text" "html" NIL NIL NIL "7bit" 12 1) "alternative")' +
        '("text" "plain" ("charset" "utf-8" "name" "notes =?UTF-8?Q?=F0=9F=95=B6=2Etxt?=") NIL NIL "quoted-printable" 41 1)' +
        '("image" "png" ("name" "image.png") NIL NIL "base64" 172) "mixed")',
    );
    assert.equal(
      renderBodyStructure(message.mime, true),
      '((("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)("text" "html" NIL NIL NIL "7bit" 12 1 NIL NIL NIL NIL) ' +
        '"alternative" ("boundary" "----sinikael-?=_2-14508625179060.6947296333964914") NIL NIL NIL)' +
        '("text" "plain" ("charset" "utf-8" "name" "notes =?UTF-8?Q?=F0=9F=95=B6=2Etxt?=") NIL NIL "quoted-printable" 41 1 NIL ' +
        '("attachment" ("filename" "=?UTF-8?Q?notes_=F0=9F=95=B6=2Etxt?=")) NIL NIL)' +
        '("image" "png" ("name" "image.png") NIL NIL "base64" 172 NIL ("attachment" ("filename" "image.png")) NIL NIL) ' +
        '"mixed" ("boundary" "----sinikael-?=_1-14508625179060.6947296333964914") NIL NIL NIL)',
    );
  });

  it('nested multipart fixture (related inside alternative, Content-ID, description, language)', async () => {
    const message = await ingest('nested-multipart.eml');
    assert.equal(
      renderBodyStructure(message.mime, false),
      '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 72 3)' +
        '(("text" "html" ("charset" "utf-8") NIL NIL "7bit" 124 1)("image" "png" NIL "<logo@example.com>" NIL "base64" 98) "related") ' +
        '"alternative")' +
        '("application" "pdf" ("name" "=?UTF-8?Q?Quartalsbericht_f=C3=BCr_das_Jahr_2024=2Epdf?=") NIL "Report" "base64" 1916) "mixed")',
    );
    assert.equal(
      renderBodyStructure(message.mime, true),
      '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 72 3 NIL NIL NIL NIL)' +
        '(("text" "html" ("charset" "utf-8") NIL NIL "7bit" 124 1 NIL NIL NIL NIL)' +
        '("image" "png" NIL "<logo@example.com>" NIL "base64" 98 NIL ("inline" NIL) NIL NIL) ' +
        '"related" ("boundary" "rel-boundary-3" "type" "text/html") NIL NIL NIL) ' +
        '"alternative" ("boundary" "alt-boundary-2") NIL NIL NIL)' +
        '("application" "pdf" ("name" "=?UTF-8?Q?Quartalsbericht_f=C3=BCr_das_Jahr_2024=2Epdf?=") NIL "Report" "base64" 1916 NIL ' +
        '("attachment" ("filename" "=?UTF-8?Q?Quartalsbericht_f=C3=BCr_das_Jahr_2024=2Epdf?=")) ("de" "en") NIL) ' +
        '"mixed" ("boundary" "mixed-boundary-1") NIL NIL NIL)',
    );
  });

  it('message/rfc822: envelope, inner structure and lines', async () => {
    const message = await ingest('rfc822-attachment.eml');
    const innerEnvelope =
      '("Mon, 01 Jan 2024 09:00:00 +0000" "=?ISO-8859-1?Q?R=E9union_d\'=E9quipe?=" (("Organizer" NIL "org" "example.net")) ' +
      '(("Organizer" NIL "org" "example.net")) (("Organizer" NIL "org" "example.net")) ((NIL NIL "fwd" "example.com")) ' +
      'NIL NIL NIL "<meeting-1@example.net>")';
    assert.equal(
      renderBodyStructure(message.mime, false),
      '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 32 1)' +
        `("message" "rfc822" ("name" "meeting.eml") NIL NIL "7bit" 529 ${innerEnvelope} ` +
        '(("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 25 1)' +
        '("text" "html" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 32 1) "alternative") 19) "mixed")',
    );
    assert.equal(
      renderBodyStructure(message.mime, true),
      '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 32 1 NIL NIL NIL NIL)' +
        `("message" "rfc822" ("name" "meeting.eml") NIL NIL "7bit" 529 ${innerEnvelope} ` +
        '(("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 25 1 NIL NIL NIL NIL)' +
        '("text" "html" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 32 1 NIL NIL NIL NIL) ' +
        '"alternative" ("boundary" "inner") NIL NIL NIL) 19 NIL ("attachment" ("filename" "meeting.eml")) NIL NIL) ' +
        '"mixed" ("boundary" "outer") NIL NIL NIL)',
    );
  });

  it('single-part messages and non-text leaves', async () => {
    const message = await ingest('8bit-no-charset-utf8.eml');
    assert.match(renderBodyStructure(message.mime, false), /^\("text" "plain" NIL NIL NIL "8bit" \d+ 1\)$/);
    assert.match(renderBodyStructure(message.mime, true), /^\("text" "plain" NIL NIL NIL "8bit" \d+ 1 NIL NIL NIL NIL\)$/);
  });

  it('extension data: md5, disposition params, languages, location', () => {
    const node = leaf({
      size: 10,
      md5: 'Q2hlY2sgSW50ZWdyaXR5IQ==',
      disposition: { type: 'attachment', params: { filename: 'a b.bin' } },
      language: ['en-US'],
      location: 'http://example.com/a',
    });
    assert.equal(renderBodyStructure(node, false), '("application" "octet-stream" NIL NIL NIL "7bit" 10)');
    assert.equal(
      renderBodyStructure(node, true),
      '("application" "octet-stream" NIL NIL NIL "7bit" 10 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "a b.bin")) ("en-US") "http://example.com/a")',
    );
  });

  it('a multipart without children is rendered as a basic part; rfc822 without parsed message too', () => {
    const empty = leaf({ part: '', type: 'multipart', subtype: 'mixed', params: { boundary: 'x' }, size: 4, lines: 1, children: [] });
    assert.equal(renderBodyStructure(empty, false), '("multipart" "mixed" ("boundary" "x") NIL NIL "7bit" 4)');
    const encoded = leaf({ type: 'message', subtype: 'rfc822', encoding: 'base64', size: 8, lines: 1 });
    assert.equal(renderBodyStructure(encoded, false), '("message" "rfc822" NIL NIL NIL "base64" 8)');
  });

  it('parameter values with 8-bit characters are downgraded unless UTF8=ACCEPT', () => {
    const node = leaf({ type: 'text', subtype: 'plain', params: { name: 'ä.txt' }, size: 1, lines: 1 });
    assert.equal(renderBodyStructure(node, false), '("text" "plain" ("name" "=?UTF-8?B?w6QudHh0?=") NIL NIL "7bit" 1 1)');
    assert.equal(renderBodyStructure(node, false, { utf8: true }), '("text" "plain" ("name" "ä.txt") NIL NIL "7bit" 1 1)');
  });
});

describe('mailbox names', () => {
  it('encodes to modified UTF-7 unless UTF8=ACCEPT', () => {
    assert.equal(encodeMailboxName('Entwürfe', false), 'Entw&APw-rfe');
    assert.equal(encodeMailboxName('A & B', false), 'A &- B');
    assert.equal(encodeMailboxName('日本語/😀', false), '&ZeVnLIqe-/&2D3eAA-');
    assert.equal(encodeMailboxName('Entwürfe', true), 'Entwürfe');
  });

  it('decodes modified UTF-7 and round-trips', () => {
    for (const path of ['Entwürfe', 'A & B', '日本語/😀', '~peter/mail/台北/日本語', 'plain', 'Ünïcödé & more']) {
      assert.equal(decodeModifiedUtf7(encodeMailboxName(path, false)), path);
    }
    assert.equal(decodeMailboxName('&Jjo-!', false), '☺!');
  });

  for (const bad of ['&', '&Jjo', '&Jj-', '&AGE-', '&2D0-', '&3gA-', 'a\u00e4', 'a\tb', '&Jjo=-', '&AOQ']) {
    it(`rejects invalid modified UTF-7 ${JSON.stringify(bad)}`, () => {
      assert.throws(() => decodeMailboxName(bad, false), ImapSyntaxError);
    });
  }

  it('takes UTF-8 names literally after UTF8=ACCEPT', () => {
    assert.equal(decodeMailboxName('Entwu\u0308rfe', true), 'Entwürfe');
    assert.equal(decodeMailboxName('A&B', true), 'A&B');
    assert.throws(() => decodeMailboxName('a\nb', true), ImapSyntaxError);
  });

  it('normalizes INBOX case-insensitively, including as a parent', () => {
    assert.equal(isInbox('iNbOx'), true);
    assert.equal(isInbox('INBOXES'), false);
    assert.equal(normalizeMailboxPath('inbox'), 'INBOX');
    assert.equal(normalizeMailboxPath('Inbox/Sub'), 'INBOX/Sub');
    assert.equal(normalizeMailboxPath('Inboxes/Sub'), 'Inboxes/Sub');
    assert.equal(decodeMailboxName('inbox', false), 'INBOX');
  });
});

describe('dates', () => {
  it('formats INTERNALDATE', () => {
    const time = Date.UTC(2026, 10, 29, 12, 0, 0);
    assert.equal(formatInternalDate(time), '"29-Nov-2026 12:00:00 +0000"');
    assert.equal(formatInternalDate(Date.UTC(1994, 1, 1, 3, 4, 5)), '"01-Feb-1994 03:04:05 +0000"');
    assert.equal(formatInternalDate(time, -420), '"29-Nov-2026 05:00:00 -0700"');
    assert.equal(formatInternalDate(time, 330), '"29-Nov-2026 17:30:00 +0530"');
  });

  it('parses APPEND date-time with zone', () => {
    assert.equal(parseDateTime('17-Jul-1996 02:44:25 -0700'), Date.UTC(1996, 6, 17, 9, 44, 25));
    assert.equal(parseDateTime(' 1-Feb-1994 00:00:00 +0000'), Date.UTC(1994, 1, 1));
    assert.equal(parseDateTime('1-feb-1994 00:00:00 +0100'), Date.UTC(1994, 0, 31, 23));
    for (const bad of ['17-Jul-1996 02:44:25', '32-Jan-2000 00:00:00 +0000', '29-Feb-2023 00:00:00 +0000', '17-Jux-1996 02:44:25 +0000', '17-Jul-1996 24:00:00 +0000', '']) {
      assert.throws(() => parseDateTime(bad), ImapSyntaxError, bad);
    }
    assert.equal(parseDateTime('29-Feb-2024 00:00:00 +0000'), Date.UTC(2024, 1, 29));
  });

  it('parses SEARCH dates', () => {
    assert.equal(parseSearchDate('1-Feb-1994'), Date.UTC(1994, 1, 1));
    assert.equal(parseSearchDate('01-FEB-1994'), Date.UTC(1994, 1, 1));
    for (const bad of ['1-Feb-94', '001-Feb-1994', '31-Apr-2020', 'Feb-1-1994', '1 Feb 1994']) {
      assert.throws(() => parseSearchDate(bad), ImapSyntaxError, bad);
    }
  });
});
