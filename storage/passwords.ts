/**
 * Password hashing with scrypt (memory-hard, from node:crypto, available on Node and Deno).
 * Encoded as `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>` so parameters can be raised later
 * without invalidating stored hashes. Passwords and hashes are never logged.
 */
import { scrypt, randomBytes, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. 15 → N = 32768, 32 MiB per hash with r = 8. */
  ln: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { ln: 15, r: 8, p: 1 };
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * params.p + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const ENCODED = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

/** Constant-time check of `password` against an encoded hash. Unknown formats never match. */
export async function verifyPassword(encoded: string | null, password: string): Promise<boolean> {
  if (!encoded) return false;
  const m = ENCODED.exec(encoded);
  if (!m) return false;
  const params: ScryptParams = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.ln < 10 || params.ln > 20) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const actual = await derive(password, Buffer.from(m[4]!, 'base64'), params);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** True when a stored hash uses weaker parameters than the current default (rehash on next login). */
export function needsRehash(encoded: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  const m = ENCODED.exec(encoded);
  return !m || Number(m[1]) < params.ln || Number(m[2]) < params.r || Number(m[3]) < params.p;
}
