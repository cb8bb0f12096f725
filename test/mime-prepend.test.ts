/**
 * withHeaderPrefix (storage/mime/prepend.ts): a message ingested once, with trace header fields put in front, is what
 * ingesting those fields followed by the message gives: the same MIME tree and offsets, segments, search headers,
 * search text, envelope, size and identity hash. Checked on every fixture, with a small blob threshold so that
 * parts become blobs, and the bytes reassembled from it are the prefixed message's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { DEFAULT_MAX_HEADER_SIZE } from '../storage/mime/splitter.ts';
import { readMessage } from '../storage/mime/reassemble.ts';
import { withHeaderPrefix } from '../storage/mime/prepend.ts';
import { collectBytes, concatBytes } from '../storage/bytes.ts';
import type { IngestedMessage } from '../storage/ports.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture, fixtureNames } from './helpers/mime-fixtures.ts';

const head = new TextEncoder().encode('Return-Path: <s@r.example>\r\nDelivered-To: =?utf-8?q?J=C3=BCrgen?= jürgen+x@exämple.com\r\n');

/** Everything but the staged blob handles, which are compared by hash. */
function comparable(message: IngestedMessage) {
  const { blobs, ...rest } = message;
  return { ...rest, blobs: blobs.map((b) => `${b.hash}:${b.size}`) };
}

describe('withHeaderPrefix', () => {
  for (const name of fixtureNames()) {
    it(`equals a fresh ingest of the prefixed message, or declines: ${name}`, async () => {
      const body = fixture(name);
      const blobs = new MemoryBlobs();
      const options = { blobThreshold: 512 };
      const once = await ingestMessage(body, blobs, options);
      const prefixed = withHeaderPrefix(once, head, DEFAULT_MAX_HEADER_SIZE);
      if (name === 'body-only.eml') {
        // no header block: prefixed, its first lines would be read as header fields
        assert.equal(prefixed, null);
        return;
      }
      assert.ok(prefixed);
      const fresh = await ingestMessage(concatBytes([head, body]), blobs, options);
      assert.deepEqual(comparable(prefixed), comparable(fresh));
      assert.deepEqual(await collectBytes(readMessage(prefixed.content, blobs)), concatBytes([head, body]));
      // the original is left as it was (it serves the next recipient)
      assert.deepEqual(comparable(once), comparable(await ingestMessage(body, blobs, options)));
    });
  }

  it('declines when the header block would grow past the header size limit, and is exact right below it', async () => {
    const body = new TextEncoder().encode('Subject: limits\r\nX-Pad: ' + 'p'.repeat(200) + '\r\n\r\nbody\r\n');
    const blobs = new MemoryBlobs();
    const headerSize = new TextDecoder().decode(body).indexOf('\r\n\r\n') + 4; // the header block with its empty line
    for (const max of [headerSize + head.length - 1, headerSize + head.length]) {
      const once = await ingestMessage(body, blobs, { maxHeaderSize: max });
      const prefixed = withHeaderPrefix(once, head, max);
      if (max < headerSize + head.length) {
        assert.equal(prefixed, null);
        continue;
      }
      assert.ok(prefixed);
      assert.deepEqual(comparable(prefixed), comparable(await ingestMessage(concatBytes([head, body]), blobs, { maxHeaderSize: max })));
    }
  });
});
