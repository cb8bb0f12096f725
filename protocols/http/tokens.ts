/**
 * Access tokens. The root token is `config.api.accessToken`; when it is null and `config.api.loopbackIsRoot`
 * is on, requests from a loopback address without a token are root (an embedded install administered from
 * the same host). Per-user tokens are issued by `POST /authenticate` with `token: true`: 40 random hex
 * characters, returned once, stored as a per-user document of kind 'token' whose lookup key is the token's
 * SHA-256, so a database dump holds no usable token (storage/access-tokens.ts). They expire
 * `config.api.tokenTtlSeconds` after issue. Issuing and revoking go through the `account.token` hooks
 * (hooks/pipeline/account-documents.ts changeToken); this module only identifies callers.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../../hooks/config.ts';
import type { StoragePorts } from '../../storage/ports.ts';
import { TOKEN_KIND, hashToken } from '../../storage/access-tokens.ts';
import type { TokenData } from '../../storage/access-tokens.ts';
import { ApiError } from './errors.ts';
import type { Caller } from './route.ts';

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/** The token a request carries: `X-Access-Token` header first, then the `accessToken` query parameter. */
export function requestToken(req: IncomingMessage, url: URL): string | null {
  const header = req.headers['x-access-token'];
  const value = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('accessToken');
  return value ? value.trim() : null;
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/**
 * Who the request comes from. A token that is neither the root token nor a live user token is 401
 * InvalidToken (never silently anonymous), so a typo is not mistaken for "no token".
 */
export async function identifyCaller(config: Config['api'], storage: StoragePorts, token: string | null, remoteAddress: string | undefined, now = Date.now()): Promise<Caller> {
  if (token) {
    if (config.accessToken && sameSecret(token, config.accessToken)) return { kind: 'root', via: 'token' };
    const doc = await storage.documents.findByKey<TokenData>(TOKEN_KIND, hashToken(token));
    if (!doc || doc.data.expires <= now) throw new ApiError('InvalidToken');
    return { kind: 'user', userId: doc.userId, tokenId: doc.id };
  }
  if (!config.accessToken && config.loopbackIsRoot && isLoopback(remoteAddress)) return { kind: 'root', via: 'loopback' };
  return { kind: 'anonymous' };
}
