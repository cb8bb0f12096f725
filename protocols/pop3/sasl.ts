/** SASL PLAIN (RFC 4616) for POP3 AUTH (RFC 5034). */

export interface PlainCredentials {
  readonly username: string;
  readonly password: string;
}

/** Decodes a PLAIN initial response; null when malformed or when it asks to act as another user. */
export function decodePlain(base64: string): PlainCredentials | null {
  const value = base64.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length === 0) return null;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
  const parts = text.split('\u0000');
  if (parts.length !== 3) return null;
  const [authzid, username, password] = parts as [string, string, string];
  if (!username || (authzid && authzid !== username)) return null;
  return { username, password };
}
