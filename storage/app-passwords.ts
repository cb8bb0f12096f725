/**
 * Application-specific passwords (ASPs): generated 16-letter passwords a user gives one mail client instead of
 * the account password, each limited to scopes (imap, pop3, smtp, or `*` for all three; never `master`, the
 * scope of the HTTP API and account changes). Stored as per-user documents of kind 'asp', hashed.
 *
 * Hash cost: an ASP is 16 random letters (about 75 bits), so guessing it offline is hopeless even with a cheap
 * hash; it gets scrypt with N = 2^10 (about 1 MiB and a couple of milliseconds) rather than the account
 * password's 2^15. That keeps a login that tries a few ASPs fast, and logins whose password does not have the
 * ASP shape never look at ASPs at all (see `checkCredentials` in storage/users.ts).
 */
import { randomInt } from 'node:crypto';
import { hashPassword, verifyPassword } from './passwords.ts';
import type { ScryptParams } from './passwords.ts';
import type { Id, StoragePorts, UserDocument } from './ports.ts';

export const ASP_KIND = 'asp';
export const ASP_SCOPES = ['imap', 'pop3', 'smtp', '*'] as const;
export type AspScope = (typeof ASP_SCOPES)[number];

const ASP_HASH: ScryptParams = { ln: 10, r: 8, p: 1 };
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

export interface AppPasswordData {
  description: string;
  scopes: AspScope[];
  hash: string;
  /** Seconds of validity renewed on every use; null = no expiry. */
  ttl: number | null;
  /** ms since epoch; null = no expiry. */
  expires: number | null;
  lastUse: { time: number; event: string } | null;
}

/** Whitespace removed and lowercased: "abcd efgh ijkl mnop" is the same password as "abcdefghijklmnop". */
export function normalizeAppPassword(password: string): string {
  return password.replace(/\s+/g, '').toLowerCase();
}

/** True when a password has the shape of an ASP (16 latin letters, spaces ignored). */
export function looksLikeAppPassword(password: string): boolean {
  return /^[a-z]{16}$/.test(normalizeAppPassword(password));
}

export function generateAppPassword(): string {
  let out = '';
  for (let i = 0; i < 16; i++) out += LETTERS[randomInt(LETTERS.length)];
  return out;
}

export interface NewAppPassword {
  description: string;
  scopes: AspScope[];
  /** A pregenerated password (16 latin letters); generated when absent. */
  password?: string;
  ttl?: number | null;
}

/** Creates an ASP; the clear password is in the result once and nowhere else. */
export async function createAppPassword(storage: StoragePorts, userId: Id, input: NewAppPassword, now = Date.now()): Promise<{ document: UserDocument<AppPasswordData>; password: string }> {
  const password = input.password ? normalizeAppPassword(input.password) : generateAppPassword();
  if (!/^[a-z]{16}$/.test(password)) throw new RangeError('an application password is 16 latin letters');
  const scopes: AspScope[] = input.scopes.includes('*') ? ['*'] : [...new Set(input.scopes)];
  const ttl = input.ttl ?? null;
  const data: AppPasswordData = {
    description: input.description,
    scopes,
    hash: await hashPassword(password, ASP_HASH),
    ttl,
    expires: ttl ? now + ttl * 1000 : null,
    lastUse: null,
  };
  return { document: await storage.documents.put(userId, ASP_KIND, data), password };
}

function allows(data: AppPasswordData, scope: string): boolean {
  return scope !== 'master' && (data.scopes.includes('*') || data.scopes.includes(scope as AspScope));
}

/**
 * The user's live ASP matching `password` for `scope`, or null. On a match the last use is recorded and a TTL
 * renewed.
 */
export async function matchAppPassword(storage: StoragePorts, userId: Id, password: string, scope: string, now = Date.now()): Promise<UserDocument<AppPasswordData> | null> {
  if (scope === 'master' || !looksLikeAppPassword(password)) return null;
  const candidate = normalizeAppPassword(password);
  for (const doc of await storage.documents.list<AppPasswordData>(userId, ASP_KIND)) {
    const data = doc.data;
    if (!allows(data, scope) || (data.expires !== null && data.expires <= now)) continue;
    if (!(await verifyPassword(data.hash, candidate))) continue;
    const used: AppPasswordData = { ...data, lastUse: { time: now, event: scope }, expires: data.ttl ? now + data.ttl * 1000 : data.expires };
    return storage.documents.put(userId, ASP_KIND, used, { id: doc.id });
  }
  return null;
}
