import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectBytes } from '../storage/bytes.ts';
import { Spool } from '../storage/spool.ts';

/** Deterministic bytes, every value present. */
function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function spoolOf(dir: string, data: Uint8Array, piece: number, memoryLimit: number): Promise<Spool> {
  const spool = new Spool({ dir, memoryLimit });
  for (let offset = 0; offset < data.length; offset += piece) await spool.write(data.subarray(offset, offset + piece));
  await spool.finish();
  return spool;
}

test('a spool gives back exactly what was written, in memory and spilled to a file, to any number of readers', async () => {
  const root = mkdtempSync(join(tmpdir(), 'wd-spool-'));
  try {
    const dir = join(root, 'spool');
    // sizes around the memory limit and the file write/read sizes; pieces of odd sizes like socket reads
    for (const [size, piece, limit] of [
      [0, 1, 1024],
      [1000, 7, 1024],
      [1024, 1024, 1024],
      [1025, 100, 1024],
      [700_000, 65_536, 100_000],
      [600_001, 1_000_003, 1024],
      [300_000, 4093, 0],
    ] as const) {
      const data = bytes(size, size + piece);
      const spool = await spoolOf(dir, data, piece, limit);
      assert.equal(spool.size, size);
      assert.equal(spool.onDisk, size > limit, `size ${size}, limit ${limit}`);
      const [a, b] = await Promise.all([collectBytes(spool.open()), collectBytes(spool.open())]);
      assert.deepEqual(a, data, `size ${size} piece ${piece} limit ${limit}`);
      assert.deepEqual(b, data);
      assert.deepEqual(await collectBytes(spool.open()), data, 'read again after the others');
      await spool.dispose();
      assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'the file is removed on dispose');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a spool recreates its directory when it was removed while the server ran', async () => {
  const root = mkdtempSync(join(tmpdir(), 'wd-spool-'));
  try {
    const dir = join(root, 'spool');
    const data = bytes(5000, 1);
    const first = await spoolOf(dir, data, 1000, 100);
    await first.dispose();
    rmSync(dir, { recursive: true, force: true });
    const second = await spoolOf(dir, data, 1000, 100);
    assert.ok(second.onDisk && existsSync(dir));
    assert.deepEqual(await collectBytes(second.open()), data);
    await second.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a spool writes behind the input and reads ahead, and readers that stop early leave nothing failing behind', async () => {
  const root = mkdtempSync(join(tmpdir(), 'wd-spool-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const dir = join(root, 'spool');
    // more than the writes kept in flight (1 MiB), in socket-sized pieces
    const data = bytes(5_000_000, 3);
    const spool = await spoolOf(dir, data, 65_536, 1024);
    assert.ok(spool.onDisk);
    assert.deepEqual(await collectBytes(spool.open()), data);
    // a header reader takes the first piece only; another stops after the second (one read ahead is left behind)
    for (const stopAfter of [1, 2]) {
      let n = 0;
      let got = 0;
      for await (const piece of spool.open()) {
        got += piece.length;
        if (++n === stopAfter) break;
      }
      assert.equal(got, Math.min(data.length, stopAfter * 256 * 1024));
    }
    await spool.dispose();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(unhandled, []);
    await assert.rejects(collectBytes(spool.open()), /disposed/);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    rmSync(root, { recursive: true, force: true });
  }
});
