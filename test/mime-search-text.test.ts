import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ingestMessage } from '../storage/mime/index.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture } from './helpers/mime-fixtures.ts';

async function searchText(name: string, options = {}): Promise<string> {
  return (await ingestMessage(fixture(name), new MemoryBlobs(), options)).searchText;
}

/** Header text and body text together: what TEXT searches. */
async function allText(name: string): Promise<string> {
  const message = await ingestMessage(fixture(name), new MemoryBlobs());
  return `${message.searchHeaders.headers}\n${message.searchText}`;
}

describe('searchText', () => {
  const cases: Array<[string, string[]]> = [
    ['iso-2022-jp.eml', ['会議の件', '山田太郎', 'こんにちは世界', '十時からです']],
    ['windows-1251.eml', ['Привет', 'Иван', 'Привет, мир! Встреча в пятницу.']],
    ['gb18030.eml', ['你好', '你好世界，欢迎光临。']],
    ['8bit-no-charset-utf8.eml', ['Grüße aus Köln, schöne Straße.']],
    ['8bit-no-charset-latin1.eml', ['Un café crème à Genève.']],
    ['nested-multipart.eml', ['Alice Müller', 'Carol', 'Quarterly report with a folded subject', 'Straße is fine', 'Quartalsbericht für das Jahr 2024.pdf']],
    ['rfc822-attachment.eml', ['Fwd: Réunion', 'See the forwarded message below.', 'Réunion demain à 10h.']],
    ['nodemailer.eml', ['Sender Name 👻', 'Nodemailer is unicode friendly ✔', 'notes 🕶.txt', 'Hello to myself']],
  ];
  for (const [name, words] of cases) {
    it(`decodes ${name}`, async () => {
      const text = await allText(name);
      for (const word of words) assert.ok(text.includes(word), `${JSON.stringify(word)} in ${JSON.stringify(text.slice(0, 400))}`);
    });
  }

  it('converts HTML to text', async () => {
    const text = await searchText('nested-multipart.eml');
    assert.ok(!text.includes('<p>'));
    assert.ok(!text.includes('cid:logo'));
  });

  it('leaves attachment bodies out', async () => {
    const text = await searchText('no_empty_line_between_text_boundary.eml');
    assert.ok(!text.includes('ZXhhbXBsZQo'));
    assert.ok(!text.includes('example\n'), 'base64 attachment body is not decoded into search text');
  });

  it('is bounded by searchTextLimit', async () => {
    const text = await searchText('append.eml', { searchTextLimit: 1000 });
    assert.ok(text.length <= 1000);
    assert.ok(text.includes('VMware Direct Education Classes'));
    const full = await searchText('nul-bytes.eml');
    assert.ok(full.length <= 256 * 1024);
  });

  it('keeps BODY text to the body, with one alternative of a multipart/alternative', async () => {
    const raw = [
      'From: Header Person <hp@example.com>',
      'Subject: only in the subject',
      'Content-Type: multipart/alternative; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'plain words',
      '--b',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>html-only words</p>',
      '--b--',
      '',
    ].join('\r\n');
    const message = await ingestMessage(new TextEncoder().encode(raw), new MemoryBlobs());
    assert.equal(message.searchText, 'plain words');
    assert.equal(message.searchHeaders.subject, 'only in the subject');
    assert.equal(message.searchHeaders.from, 'Header Person <hp@example.com>');
    const htmlOnly = raw.replace('Content-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n--b\r\n', '');
    assert.equal((await ingestMessage(new TextEncoder().encode(htmlOnly), new MemoryBlobs())).searchText, 'html-only words');
  });
});

describe('searchHeaders', () => {
  it('gives the same addresses with the envelope parse reused as parsed on their own', async () => {
    const { searchHeaders } = await import('../storage/mime/search-headers.ts');
    const { buildEnvelope } = await import('../storage/mime/envelope.ts');
    const { parseHeaderBlock } = await import('../storage/mime/headers.ts');
    const blocks = [
      'From: "Ann Example" <ann@example.com>\r\nTo: bob@example.com, Carol <carol@example.org>\r\nCc: team: dan@example.net, eve@example.net;\r\n',
      'From: <user (comment)@ (comment) domain.org>\r\nTo: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\r\nBcc: undisclosed\r\n',
      'From: a@example.com\r\nFrom: b@example.com (second)\r\nTo:\r\nCc: "quoted (not a comment)" <q@example.com>\r\n',
      'Subject: no addresses\r\n',
    ];
    for (const block of blocks) {
      const fields = parseHeaderBlock(new TextEncoder().encode(block + '\r\n'));
      assert.deepEqual(searchHeaders(fields, buildEnvelope(fields)), searchHeaders(fields), block);
    }
    const fields = parseHeaderBlock(new TextEncoder().encode(blocks[1] + '\r\n'));
    assert.equal(searchHeaders(fields, buildEnvelope(fields)).from, 'user@domain.org');
  });
});
