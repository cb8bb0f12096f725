/** Fixture loading and small byte helpers for the MIME tests. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = new URL('../fixtures/', import.meta.url);

/** Names of every .eml fixture. */
export function fixtureNames(): string[] {
  return readdirSync(fileURLToPath(dir))
    .filter((name) => name.endsWith('.eml'))
    .sort();
}

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, dir)));
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Feeds `bytes` as an async source of `size`-byte chunks. */
export async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.slice(offset, offset + size);
}

/** Deterministic pseudo-random integers in [0, n). */
export function prng(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % n;
  };
}

export function latin1(bytes: Uint8Array): string {
  return new TextDecoder('latin1').decode(bytes);
}
