import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageTooLargeError, contentHash, findPart, ingestMessage, readAll, readBody, readMessage } from '../storage/mime/index.ts';
import type { MimeNode } from '../storage/ports.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { sha256 } from './helpers/mime-fixtures.ts';

const encoder = new TextEncoder();
const CHUNK = 64 * 1024;

/** One line-wrapped base64 block, repeated to make a large attachment body. */
function base64Block(): Uint8Array {
  const raw = new Uint8Array(57 * 1024);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 131 + 7) & 0xff;
  let text = '';
  for (let i = 0; i < raw.length; i += 57) text += btoa(String.fromCharCode(...raw.subarray(i, i + 57))) + '\r\n';
  return encoder.encode(text);
}

const head = encoder.encode(
  'From: big@example.com\r\nTo: rcpt@example.com\r\nSubject: big attachment\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n' +
    '--big\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n' +
    '--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
);
const tail = encoder.encode('--big--\r\n');

/** The whole message as 64 KiB chunks, generated on the fly; `onChunk` sees each offset after it is yielded. */
async function* bigMessage(blocks: number, onChunk?: (sent: number) => void): AsyncIterable<Uint8Array> {
  const block = base64Block();
  let pending = new Uint8Array(0);
  let sent = 0;
  const pieces = function* (): Generator<Uint8Array> {
    yield head;
    for (let i = 0; i < blocks; i++) yield block;
    yield tail;
  };
  for (const piece of pieces()) {
    const joined = new Uint8Array(pending.length + piece.length);
    joined.set(pending);
    joined.set(piece, pending.length);
    let offset = 0;
    while (joined.length - offset >= CHUNK) {
      yield joined.slice(offset, offset + CHUNK);
      offset += CHUNK;
      sent += CHUNK;
      onChunk?.(sent);
    }
    pending = joined.slice(offset);
  }
  if (pending.length) yield pending;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  return readAll(source);
}

describe('large messages', () => {
  it('streams a 20 MB attachment into a blob with bounded buffering', async () => {
    const blobs = new MemoryBlobs();
    const blocks = Math.ceil((20 * 1024 * 1024) / (57 * 1024));
    let maxLag = 0;
    const message = await ingestMessage(
      bigMessage(blocks, (sent) => {
        maxLag = Math.max(maxLag, sent - head.length - blobs.bytesWritten);
      }),
      blobs,
    );
    assert.ok(message.size > 27 * 1024 * 1024);
    assert.ok(maxLag <= 3 * CHUNK, `the ingest never held more than a few chunks of the body (lag ${maxLag})`);
    assert.ok(message.content.inline.length < 2048, `inline bytes stay small (${message.content.inline.length})`);
    assert.equal(message.blobs.length, 1);
    const attachment = findPart(message.mime, '2')!;
    assert.equal(message.blobs[0]!.size, attachment.size);
    assert.deepEqual(
      message.content.segments.map((segment) => Boolean(segment.blob)),
      [false, true, false],
    );
    assert.equal(message.hasAttachments, true);
    assert.ok(message.searchText.includes('See attachment.'));

    const whole = await collect(bigMessage(blocks));
    assert.equal(message.sha256, contentHash(message.content), 'the identity hash covers the inline bytes and the blob hashes');
    const back = await collect(readMessage(message.content, blobs));
    assert.equal(sha256(back), sha256(whole));

    blobs.reads = [];
    const start = 10 * 1024 * 1024;
    const slice = await collect(readBody(message.content, blobs, attachment, start, start + 1000));
    assert.deepEqual(slice, whole.slice(attachment.bodyStart + start, attachment.bodyStart + start + 1000));
    assert.deepEqual(blobs.reads, [{ hash: message.blobs[0]!.hash, start, end: start + 1000 }], 'only the needed blob range is read');
  });

  it('refuses a message past maxSize as soon as the count passes it, discarding staged blobs', async () => {
    const blobs = new MemoryBlobs();
    let sent = 0;
    await assert.rejects(
      ingestMessage(bigMessage(100, (count) => (sent = count)), blobs, { maxSize: 1024 * 1024 }),
      (error: unknown) => error instanceof MessageTooLargeError && error.maxSize === 1024 * 1024 && error.code === 'TOOBIG',
    );
    assert.ok(sent <= 1024 * 1024 + CHUNK, 'stopped reading right after the limit');
    assert.equal(blobs.started, 1);
    assert.equal(blobs.aborted, 1);
    assert.equal(blobs.store.size, 0);
  });

  it('accepts a message of exactly maxSize', async () => {
    const bytes = encoder.encode('Subject: x\r\n\r\nbody\r\n');
    const message = await ingestMessage(bytes, new MemoryBlobs(), { maxSize: bytes.length });
    assert.equal(message.size, bytes.length);
  });

  it('discards finished and open blobs when the source fails', async () => {
    const blobs = new MemoryBlobs();
    const source = async function* (): AsyncIterable<Uint8Array> {
      yield encoder.encode('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n');
      yield encoder.encode('a'.repeat(40000) + '\r\n--b\r\n\r\n');
      yield encoder.encode('b'.repeat(40000));
      throw new Error('connection lost');
    };
    await assert.rejects(ingestMessage(source(), blobs), /connection lost/);
    assert.equal(blobs.started, 2);
    assert.equal(blobs.finished, 1);
    assert.equal(blobs.discarded.length, 1);
    assert.equal(blobs.aborted, 1);
    assert.equal(blobs.store.size, 0);
  });

  it('rethrows a blob write failure after cleaning up', async () => {
    const blobs = new MemoryBlobs();
    blobs.failOnWrite = 3;
    await assert.rejects(ingestMessage(bigMessage(40), blobs), /injected write failure/);
    assert.equal(blobs.store.size, 0);
    assert.equal(blobs.aborted, 1);
  });
});

describe('malformed input limits', () => {
  it('stops parsing a header block past maxHeaderSize but keeps every byte', async () => {
    let text = '';
    for (let i = 0; i < 3000; i++) text += `X-Filler-${i}: ${'v'.repeat(60)}\r\n`;
    const bytes = encoder.encode('Subject: huge header\r\n' + text + '\r\nbody\r\n');
    const blobs = new MemoryBlobs();
    const message = await ingestMessage(bytes, blobs, { maxHeaderSize: 4096, blobThreshold: 1024 });
    assert.ok(message.mime.bodyStart <= 4096);
    assert.equal(message.subject, 'huge header');
    assert.deepEqual(await collect(readMessage(message.content, blobs)), bytes);
    assert.ok(message.content.inline.length < 8192, 'the overflow is body and goes to a blob');
  });

  it('bounds a single enormous header line', async () => {
    const bytes = encoder.encode('X-Long: ' + 'z'.repeat(3 * 1024 * 1024) + '\r\nSubject: after\r\n\r\nbody');
    const blobs = new MemoryBlobs();
    const message = await ingestMessage(bytes, blobs);
    assert.ok(message.mime.bodyStart <= 1024 * 1024);
    assert.deepEqual(await collect(readMessage(message.content, blobs)), bytes);
  });

  it('limits nesting depth', async () => {
    let text = '';
    for (let i = 0; i < 80; i++) text += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    text += 'Content-Type: text/plain\r\n\r\ndeep\r\n';
    const bytes = encoder.encode(text);
    const blobs = new MemoryBlobs();
    const message = await ingestMessage(bytes, blobs, { maxDepth: 10 });
    let depth = 0;
    let node: MimeNode = message.mime;
    while (node.children) {
      node = node.children[0]!;
      depth++;
    }
    assert.equal(depth, 10);
    assert.equal(node.type, 'multipart');
    assert.equal(node.bodyEnd, bytes.length);
    assert.deepEqual(await collect(readMessage(message.content, blobs)), bytes);
    const deep = await ingestMessage(bytes, new MemoryBlobs());
    assert.ok(deep.mime.children);
  });

  it('survives a multipart without boundary and an empty message', async () => {
    const noBoundary = await ingestMessage(encoder.encode('Content-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n'), new MemoryBlobs());
    assert.equal(noBoundary.mime.type, 'multipart');
    assert.equal(noBoundary.mime.children, undefined);
    const empty = await ingestMessage(new Uint8Array(0), new MemoryBlobs());
    assert.equal(empty.size, 0);
    assert.equal(empty.mime.size, 0);
    assert.deepEqual(empty.content.segments, []);
  });
});
