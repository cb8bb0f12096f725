import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MimeNode } from '../storage/ports.ts';
import { contentHash, contentSize, ingestMessage, readAll, readBody, readHeader, readMessage, readNode } from '../storage/mime/index.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { chunked, fixture, fixtureNames, prng, sha256 } from './helpers/mime-fixtures.ts';

function* nodes(node: MimeNode): Generator<MimeNode> {
  yield node;
  for (const child of node.children ?? []) yield* nodes(child);
  if (node.message) yield* nodes(node.message.root);
}

function checkOffsets(node: MimeNode, from: number, to: number): void {
  assert.ok(from <= node.headerStart && node.headerStart <= node.bodyStart, `part ${node.part} header`);
  assert.ok(node.bodyStart <= node.bodyEnd && node.bodyEnd <= to, `part ${node.part} body`);
  assert.equal(node.size, node.bodyEnd - node.bodyStart);
  let last = node.bodyStart;
  for (const child of node.children ?? []) {
    assert.ok(child.headerStart >= last, `part ${child.part} after previous`);
    checkOffsets(child, node.bodyStart, node.bodyEnd);
    last = child.bodyEnd;
  }
  if (node.message) {
    assert.equal(node.message.root.headerStart, node.bodyStart);
    checkOffsets(node.message.root, node.bodyStart, node.bodyEnd);
  }
}

for (const name of fixtureNames()) {
  describe(`fixture ${name}`, () => {
    const original = fixture(name);

    for (const blobThreshold of [16 * 1024, 64]) {
      it(`reassembles byte for byte (blobThreshold ${blobThreshold})`, async () => {
        const blobs = new MemoryBlobs();
        const message = await ingestMessage(original, blobs, { blobThreshold });
        assert.equal(message.size, original.length);
        assert.equal(message.sha256, contentHash(message.content));
        assert.equal(contentSize(message.content), original.length);
        const back = await readAll(readMessage(message.content, blobs));
        assert.equal(sha256(back), sha256(original));
        assert.deepEqual(back, original);
        for (const segment of message.content.segments) {
          if (segment.blob) assert.ok(segment.length > blobThreshold, 'only bodies over the threshold go to blobs');
        }
        assert.deepEqual(
          message.blobs.map((blob) => blob.hash),
          message.content.segments.filter((segment) => segment.blob).map((segment) => segment.blob),
        );
      });
    }

    it('serves random byte ranges', async () => {
      const blobs = new MemoryBlobs();
      const message = await ingestMessage(original, blobs, { blobThreshold: 64 });
      const random = prng(original.length);
      for (let i = 0; i < 25; i++) {
        const start = random(original.length + 1);
        const end = start + random(original.length - start + 1);
        const got = await readAll(readMessage(message.content, blobs, start, end));
        assert.deepEqual(got, original.slice(start, end), `range ${start}-${end}`);
      }
      assert.deepEqual(await readAll(readMessage(message.content, blobs, original.length, original.length + 10)), new Uint8Array(0));
    });

    it('gives every part exact offsets, sizes and slices', async () => {
      const blobs = new MemoryBlobs();
      const message = await ingestMessage(original, blobs, { blobThreshold: 64 });
      checkOffsets(message.mime, 0, original.length);
      assert.equal(message.mime.headerStart, 0);
      assert.equal(message.mime.bodyEnd, original.length);
      for (const node of nodes(message.mime)) {
        const body = original.slice(node.bodyStart, node.bodyEnd);
        assert.deepEqual(await readAll(readBody(message.content, blobs, node)), body, `body of ${node.part}`);
        assert.deepEqual(await readAll(readHeader(message.content, blobs, node)), original.slice(node.headerStart, node.bodyStart));
        assert.deepEqual(await readAll(readNode(message.content, blobs, node)), original.slice(node.headerStart, node.bodyEnd));
        const lf = body.filter((byte) => byte === 0x0a).length;
        assert.equal(node.lines, body.length === 0 ? 0 : lf + (body[body.length - 1] === 0x0a ? 0 : 1), `lines of ${node.part}`);
      }
    });

    it('builds the same result whatever the chunk size', async () => {
      const whole = await ingestMessage(original, new MemoryBlobs());
      for (const size of original.length > 50000 ? [1000, 4093] : [1, 7, 1000]) {
        const blobs = new MemoryBlobs();
        const streamed = await ingestMessage(chunked(original, size), blobs);
        assert.deepEqual(streamed.mime, whole.mime, `chunk size ${size}`);
        assert.deepEqual(streamed.content.segments, whole.content.segments);
        assert.equal(streamed.searchText, whole.searchText);
        assert.deepEqual(await readAll(readMessage(streamed.content, blobs)), original);
      }
    });
  });
}
