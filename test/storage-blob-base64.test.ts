/** Base64 lines stored decoded (storage/blob-base64.ts) inside the blob codec (storage/blob-codec.ts, version 3). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { BlobFormatError, bytesSource, decodeRange, encodeBlob, encodeBlobSync, readLayout } from '../storage/blob-codec.ts';
import { decodeBase64Lines, encodeBase64Lines } from '../storage/blob-base64.ts';
import { concatBytes } from '../storage/bytes.ts';
import { noise } from './helpers/storage-contract.ts';

/** `n` random bytes as base64 in lines of `line` characters ending with `eol` (no line end after the last line). */
function base64Lines(n: number, line = 76, eol = '\r\n', seed = 1): Uint8Array {
  const text = Buffer.from(noise(n, seed)).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += line) lines.push(text.slice(i, i + line));
  return new Uint8Array(Buffer.from(lines.join(eol), 'latin1'));
}

async function decodeAll(encoded: Uint8Array, start?: number, end?: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of decodeRange(bytesSource(encoded), start, end)) parts.push(p.slice());
  return concatBytes(parts);
}

const version = (encoded: Uint8Array) => new DataView(encoded.buffer, encoded.byteOffset).getUint32(encoded.byteLength - 24, true);

describe('blob codec: base64 lines', () => {
  it('stores an attachment body decoded, a third smaller, and gives back every byte', async () => {
    const body = base64Lines(300_000);
    const encoded = await encodeBlob(body);
    const layout = await readLayout(bytesSource(encoded));
    assert.ok(layout.chunks.every((c) => c.codec === 'base64'), layout.chunks.map((c) => c.codec).join());
    assert.ok(encoded.byteLength < body.byteLength * 0.74, `ratio ${encoded.byteLength / body.byteLength}`);
    assert.equal(version(encoded), 3);
    assert.deepEqual(await decodeAll(encoded), body);
    // ranges across chunk and line boundaries
    for (const [s, e] of [[0, 1], [65530, 65545], [77, 79], [131071, 200000], [body.length - 5, body.length]] as const) {
      assert.deepEqual(await decodeAll(encoded, s, e), body.subarray(s, e), `range ${s}-${e}`);
    }
  });

  it('round-trips line lengths, line ends, padding and chunk boundaries inside a line end', async () => {
    for (const [line, eol] of [[76, '\r\n'], [64, '\n'], [72, '\r\n'], [4, '\r\n'], [76, '\n']] as const) {
      for (const n of [3000, 3001, 3002, 10_000]) {
        const body = base64Lines(n, line, eol, n);
        for (const chunkSize of [1024, 1025, 4096, 65536]) {
          const encoded = await encodeBlob(body, { chunkSize });
          assert.deepEqual(await decodeAll(encoded), body, `line ${line} eol ${JSON.stringify(eol)} n ${n} chunk ${chunkSize}`);
        }
      }
    }
    // a body ending in a line end, and one whose last whole line carries the padding
    for (const extra of ['\r\n', '']) {
      const text = Buffer.from(noise(57 * 40 - 1, 9)).toString('base64'); // 40 lines of 76, the last ending in '='
      const body = new Uint8Array(Buffer.from(text.replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '') + extra, 'latin1'));
      const encoded = await encodeBlob(body, { chunkSize: 1024 });
      assert.deepEqual(await decodeAll(encoded), body);
    }
  });

  it('leaves anything that would not come back identical to the general codecs', async () => {
    const good = base64Lines(20_000);
    const cases: Array<[string, (b: Uint8Array) => void]> = [
      ['a stray character', (b) => (b[500] = 0x2a)],
      ['a space', (b) => (b[500] = 0x20)],
      ['padding inside', (b) => (b[500] = 0x3d)],
      ['a lost line end', (b) => (b[78 * 5 + 77] = 0x41)],
      ['an 8-bit byte', (b) => (b[1000] = 0xe9)],
    ];
    for (const [name, spoil] of cases) {
      const body = good.slice();
      spoil(body);
      assert.equal(encodeBase64Lines(body.subarray(0, 4096)), null, name);
      const encoded = await encodeBlob(body, { chunkSize: 4096 });
      assert.notEqual((await readLayout(bytesSource(encoded))).chunks[0]!.codec, 'base64', name);
      assert.deepEqual(await decodeAll(encoded), body, name);
    }
    // lines of a length that is not a multiple of 4, text, noise: not this form
    assert.equal(encodeBase64Lines(base64Lines(5000, 75)), null);
    assert.equal(encodeBase64Lines(new Uint8Array(Buffer.from('hello world\r\n'.repeat(400), 'latin1'))), null);
    assert.equal(encodeBase64Lines(noise(4096)), null);
  });

  it('survives random damage to base64 text byte for byte', async () => {
    const good = base64Lines(12_000, 76, '\r\n', 3);
    let x = 12345;
    const rand = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    const alphabet = Buffer.from('AZaz09+/=\r\n -.\x00\xff', 'latin1');
    for (let round = 0; round < 60; round++) {
      const body = good.slice();
      for (let k = 0; k <= rand(4); k++) body[rand(body.length)] = alphabet[rand(alphabet.length)]!;
      const encoded = await encodeBlob(body, { chunkSize: 2048 });
      assert.deepEqual(await decodeAll(encoded), body, `round ${round}`);
    }
  });

  it('writes the same bytes synchronously, and version 2 when no chunk is base64', async () => {
    const body = concatBytes([base64Lines(70_000), new Uint8Array(Buffer.from('plain text\r\n'.repeat(6000), 'latin1'))]);
    const sync = concatBytes(encodeBlobSync([body.subarray(0, 1000), body.subarray(1000)]));
    assert.deepEqual(sync, await encodeBlob(body));
    assert.deepEqual(await decodeAll(sync), body);
    const text = new Uint8Array(Buffer.from('plain text\r\n'.repeat(6000), 'latin1'));
    assert.equal(version(await encodeBlob(text)), 2);
  });

  it('refuses a malformed stored chunk', async () => {
    assert.throws(() => decodeBase64Lines(new Uint8Array(5)), RangeError);
    const stored = encodeBase64Lines(base64Lines(3000))!;
    assert.throws(() => decodeBase64Lines(stored.subarray(0, stored.length - 1)), RangeError);
    const encoded = await encodeBlob(base64Lines(3000), { chunkSize: 4096 });
    const broken = encoded.slice();
    broken[8] = 0; // line length 0
    broken[9] = 0;
    await assert.rejects(decodeAll(broken), BlobFormatError);
  });
});
