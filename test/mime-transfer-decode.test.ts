/**
 * Content-Transfer-Encoding decoders (storage/mime/transfer-decode.ts): base64 and quoted-printable give the same
 * bytes whatever the chunk boundaries, and ingest records each encoded leaf's decoded size (MimeNode.decodedSize).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { Base64Decoder, QuotedPrintableDecoder, canDecode, decodeStream } from '../storage/mime/transfer-decode.ts';
import type { TransferDecoder } from '../storage/mime/transfer-decode.ts';
import { ingestMessage, findPart } from '../storage/mime/index.ts';
import { collectBytes } from '../storage/bytes.ts';
import type { BlobsPort } from '../storage/ports.ts';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const text = (data: Uint8Array) => Buffer.from(data).toString('latin1');

/** Feeds `input` in chunks of `size` bytes. */
function decodeIn(decoder: TransferDecoder, input: Uint8Array, size: number): string {
  let out = '';
  for (let i = 0; i < input.length; i += size) out += text(decoder.push(input.subarray(i, i + size)));
  return out + text(decoder.end());
}

const QP_SOURCE = 'hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo_bar =3D=C3=A9 x=\r\n';
const QP_DECODED = 'hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo_bar =\xc3\xa9 x';

describe('transfer decoding', () => {
  it('quoted-printable: escapes, soft breaks (also with blanks after =), trailing blanks dropped, any chunking', () => {
    for (const size of [1, 2, 3, 5, 7, 64]) {
      assert.equal(decodeIn(new QuotedPrintableDecoder(), bytes(QP_SOURCE), size), QP_DECODED, `chunks of ${size}`);
    }
  });

  it('quoted-printable keeps LF line ends as LF and a malformed = as it is', () => {
    assert.equal(decodeIn(new QuotedPrintableDecoder(), bytes('a=ZZb\nc=4\n'), 3), 'a=ZZb\nc=4\n');
    // an encoded blank at a line end stays; a bare CR is data; blanks before a soft break stay
    for (const size of [1, 2, 50]) assert.equal(decodeIn(new QuotedPrintableDecoder(), bytes('a=20\r\nb \t\r\nc\rd \t=\r\ne \t'), size), 'a \r\nb\r\nc\rd \te');
  });

  it('quoted-printable decodes a line longer than it keeps, across chunks', () => {
    const long = 'x=41'.repeat(40_000); // 160 KB without a line end
    const out = decodeIn(new QuotedPrintableDecoder(), bytes(long + '\r\n'), 4093);
    assert.equal(out, 'xA'.repeat(40_000) + '\r\n');
  });

  it('base64: whitespace and line ends skipped, quanta split across chunks, padding inside', () => {
    const source = '  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n';
    for (const size of [1, 3, 4, 9]) assert.equal(decodeIn(new Base64Decoder(), bytes(source), size), 'hello world');
    assert.equal(decodeIn(new Base64Decoder(), bytes('YQ==Yg=='), 2), 'ab');
    const binary = new Uint8Array(1000).map((_, i) => (i * 7) % 256);
    const encoded = Buffer.from(binary).toString('base64').replace(/.{76}/g, '$&\r\n');
    assert.deepEqual(Buffer.from(decodeIn(new Base64Decoder(), bytes(encoded), 100), 'latin1'), Buffer.from(binary));
  });

  it('knows which encodings it decodes; identity passes through', async () => {
    assert.ok(canDecode('BASE64') && canDecode('quoted-printable') && canDecode('8bit') && canDecode('binary'));
    assert.equal(canDecode('x-uuencode'), false);
    const out = await collectBytes(decodeStream((async function* () { yield bytes('a\0b'); })(), '7bit'));
    assert.equal(text(out), 'a\0b');
  });

  it('ingest records the decoded size of base64 and quoted-printable leaves only', async () => {
    const message = [
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Transfer-Encoding: base64',
      '',
      'aGVsbG8gd29ybGQ=',
      '--b',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'caf=C3=A9=',
      '',
      '--b',
      '',
      'plain',
      '--b--',
      '',
    ].join('\r\n');
    const blobs = { stage: () => assert.fail('no blob for a small message') } as unknown as BlobsPort;
    const ingested = await ingestMessage(bytes(message), blobs);
    assert.equal(findPart(ingested.mime, '1')!.decodedSize, 11);
    assert.equal(findPart(ingested.mime, '2')!.decodedSize, 5);
    assert.equal(findPart(ingested.mime, '3')!.decodedSize, undefined);
  });
});
