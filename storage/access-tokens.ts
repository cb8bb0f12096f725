/**
 * Per-user API access tokens as stored: 40 random hex characters, handed out once, kept as a per-user document of
 * kind 'token' whose lookup key is the token's SHA-256, so a database dump holds no usable token. The storage
 * plugin issues and revokes them (the `account.token` commit); protocols/http/tokens.ts looks them up.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Id, StoragePorts } from './ports.ts';

export const TOKEN_KIND = 'token';

export interface TokenData {
  /** ms since epoch */
  expires: number;
  /** Client address that asked for the token, for the user's own review. */
  remoteAddress: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Stores a new token and drops the user's expired ones; the clear token is in the answer once and nowhere else. */
export async function issueToken(storage: StoragePorts, userId: Id, data: TokenData, now = Date.now()): Promise<{ id: Id; token: string }> {
  const token = randomBytes(20).toString('hex');
  const doc = await storage.documents.put(userId, TOKEN_KIND, data, { key: hashToken(token) });
  for (const old of await storage.documents.list<TokenData>(userId, TOKEN_KIND)) {
    if (old.data.expires <= now) await storage.documents.delete(userId, TOKEN_KIND, old.id);
  }
  return { id: doc.id, token };
}

/** Revokes one token of the user, or every one (`tokenId` null). Returns the ids revoked. */
export async function revokeTokens(storage: StoragePorts, userId: Id, tokenId: Id | null): Promise<Id[]> {
  const ids = tokenId === null ? (await storage.documents.list(userId, TOKEN_KIND)).map((d) => d.id) : [tokenId];
  const revoked: Id[] = [];
  for (const id of ids) if (await storage.documents.delete(userId, TOKEN_KIND, id)) revoked.push(id);
  return revoked;
}
