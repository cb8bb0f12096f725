/** The shared compressed blob framing (storage/blob-codec.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { BlobEncoder, BlobFormatError, bytesSource, decodeRange, deflateIfSmaller, encodeBlob, encodeBlobSync, inflate, readLayout } from '../storage/blob-codec.ts';
import { concatBytes } from '../storage/bytes.ts';
import type { BlobSource } from '../storage/blob-codec.ts';

function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function decodeAll(source: BlobSource, start?: number, end?: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of decodeRange(source, start, end)) parts.push(p.slice());
  return concatBytes(parts);
}

/** Counts the bytes a decode reads from its source. */
function countingSource(bytes: Uint8Array): BlobSource & { bytesRead: number } {
  const s = {
    size: bytes.length,
    bytesRead: 0,
    read: async (offset: number, length: number) => {
      s.bytesRead += length;
      return bytes.subarray(offset, offset + length);
    },
  };
  return s;
}

describe('blob codec', () => {
  it('round-trips sizes around chunk boundaries', async () => {
    for (const n of [0, 1, 1023, 1024, 1025, 4096, 5000]) {
      const data = noise(n, n + 1);
      data.fill(7, 0, Math.floor(n / 2));
      const encoded = await encodeBlob(data, { chunkSize: 1024 });
      const layout = await readLayout(bytesSource(encoded));
      assert.equal(layout.rawSize, n);
      assert.equal(layout.chunks.length, Math.ceil(n / 1024));
      assert.deepEqual(await decodeAll(bytesSource(encoded)), data, `size ${n}`);
    }
  });

  it('keeps incompressible chunks raw and compresses the rest', async () => {
    const data = new Uint8Array(3 * 65536);
    data.set(noise(65536, 5), 0);
    data.fill(65, 65536); // two compressible chunks
    const encoded = await encodeBlob(data);
    const layout = await readLayout(bytesSource(encoded));
    assert.deepEqual(layout.chunks.map((c) => c.codec), ['raw', 'brotli', 'brotli']);
    assert.equal(layout.chunks[0].length, 65536);
    assert.ok(encoded.length < 65536 + 2000);
    assert.deepEqual(await decodeAll(bytesSource(encoded)), data);
  });

  it('decodes a range reading only the chunks it overlaps', async () => {
    const data = noise(10 * 4096, 3);
    const encoded = await encodeBlob(data, { chunkSize: 4096 });
    for (const [a, b] of [
      [0, 1],
      [4095, 4097],
      [8192, 12288],
      [10_000, 30_000],
      [40_959, 40_960],
      [40_000, 1e9],
      [100, 100],
      [50_000, 60_000],
    ]) {
      assert.deepEqual(await decodeAll(bytesSource(encoded), a, b), data.slice(a, b), `range ${a}-${b}`);
    }
    const layout = await readLayout(bytesSource(encoded));
    const src = countingSource(encoded);
    await decodeAll(src, 8192 + 10, 8192 + 20);
    const indexAndFooter = layout.chunks.length * 4 + 24;
    assert.equal(src.bytesRead, indexAndFooter + layout.chunks[2].length, 'footer, index and one chunk read, nothing else');
  });

  it('streams: many small writes give the same encoding as one', async () => {
    const data = noise(20_000, 9);
    const parts: Uint8Array[] = [];
    const enc = new BlobEncoder({ write: async (b) => void parts.push(b.slice()) }, { chunkSize: 4096 });
    for (let o = 0; o < data.length; o += 777) await enc.write(data.subarray(o, o + 777));
    const result = await enc.finish();
    const streamed = concatBytes(parts);
    assert.equal(result.rawSize, data.length);
    assert.equal(result.storedSize, streamed.length);
    assert.deepEqual(streamed, await encodeBlob(data, { chunkSize: 4096 }));
    await assert.rejects(enc.write(data));
  });

  it('the synchronous encoder writes the same bytes as the streaming one', async () => {
    const data = noise(70_000, 4);
    data.fill(66, 20_000, 50_000);
    const parts = [data.subarray(0, 1000), data.subarray(1000, 60_000), data.subarray(60_000)];
    assert.deepEqual(concatBytes(encodeBlobSync(parts, { chunkSize: 4096 })), await encodeBlob(data, { chunkSize: 4096 }));
    assert.deepEqual(await decodeAll(bytesSource(concatBytes(encodeBlobSync([])))), new Uint8Array(0));
  });

  it('still reads version 1 blobs (deflate and raw chunks)', async () => {
    const text = new TextEncoder().encode('version one '.repeat(700)).subarray(0, 8192); // two full chunks
    const random = noise(1000, 11);
    const chunks = [deflateRawSync(text.subarray(0, 4096)), deflateRawSync(text.subarray(4096)), random];
    const index = [chunks[0]!.length, chunks[1]!.length, (random.length | 0x80000000) >>> 0];
    const tail = new Uint8Array(index.length * 4 + 24);
    const view = new DataView(tail.buffer);
    index.forEach((e, i) => view.setUint32(i * 4, e, true));
    const f = index.length * 4;
    const raw = text.length + random.length;
    // as the old encoder wrote it: two deflated chunks of text, then a short raw chunk of noise
    view.setUint32(f, 1, true);
    view.setUint32(f + 4, 4096, true);
    view.setUint32(f + 8, 3, true);
    view.setUint32(f + 12, raw, true);
    tail.set([0x57, 0x44, 0x42, 0x5a], f + 20);
    const blob = concatBytes([...chunks.map((c) => new Uint8Array(c)), tail]);
    const layout = await readLayout(bytesSource(blob));
    assert.deepEqual(layout.chunks.map((c) => c.codec), ['deflate', 'deflate', 'raw']);
    assert.deepEqual(await decodeAll(bytesSource(blob)), concatBytes([text, random]));
    assert.deepEqual(await decodeAll(bytesSource(blob), 4000, 8500), concatBytes([text, random]).slice(4000, 8500));
  });

  it('rejects what is not a blob', async () => {
    await assert.rejects(readLayout(bytesSource(new Uint8Array(10))), BlobFormatError);
    await assert.rejects(readLayout(bytesSource(new Uint8Array(100))), BlobFormatError);
    const encoded = await encodeBlob(noise(5000), { chunkSize: 1024 });
    await assert.rejects(readLayout(bytesSource(encoded.subarray(10))), BlobFormatError);
  });

  it('deflates single values only when that helps', async () => {
    const text = new TextEncoder().encode('abc '.repeat(1000));
    const d = await deflateIfSmaller(text);
    assert.equal(d.deflated, true);
    assert.deepEqual(await inflate(d.data), text);
    const random = noise(1000);
    assert.equal((await deflateIfSmaller(random)).deflated, false);
    assert.equal((await deflateIfSmaller(new Uint8Array(10))).deflated, false);
  });
});
