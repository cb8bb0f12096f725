/** SASL PLAIN (RFC 4616) for POP3 AUTH (RFC 5034). */

export interface PlainCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * What a PLAIN response decodes to: the credentials, or why it was refused (the text of the -ERR) with the
 * RFC 2449 response code: AUTH for a readable response with unusable credentials, none for malformed base64
 * (a syntax error, as IMAP answers it with BAD).
 */
export type PlainResult =
  | { readonly ok: true; readonly credentials: PlainCredentials }
  | { readonly ok: false; readonly code: 'AUTH' | null; readonly reason: string };

const INVALID_BASE64: PlainResult = { ok: false, code: null, reason: 'Invalid base64 in SASL response' };
const INVALID_PLAIN: PlainResult = { ok: false, code: 'AUTH', reason: 'Invalid SASL PLAIN response' };

/**
 * Decodes a PLAIN response. Base64 must be RFC 4648 canonical in shape: the base64 alphabet, padded to a
 * multiple of 4 (`A`, `AAAAA`, `AGZ1enoA=` are refused here, before any decoder sees them; `atob` threw on
 * them and the session ended with an internal error). Refused as well: not three NUL-separated parts, an
 * empty user name, and an authorization identity other than the user (acting as another user).
 */
export function decodePlain(base64: string): PlainResult {
  const value = base64.trim();
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return INVALID_BASE64;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  } catch {
    return INVALID_BASE64;
  }
  const parts = new TextDecoder('utf-8', { fatal: false }).decode(bytes).split('\u0000');
  if (parts.length !== 3) return INVALID_PLAIN;
  const [authzid, username, password] = parts as [string, string, string];
  if (!username) return INVALID_PLAIN;
  if (authzid && authzid !== username) return { ok: false, code: 'AUTH', reason: 'Cannot act as another user' };
  return { ok: true, credentials: { username, password } };
}
