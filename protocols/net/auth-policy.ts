/**
 * When a protocol may accept a password: over TLS, from a loopback client, or anywhere when the admin set
 * `auth.allowPlaintext`. IMAP answers LOGINDISABLED / `NO [PRIVACYREQUIRED]` when this is false, POP3 hides
 * USER/PASS and AUTH, LMTP never authenticates.
 */
import type { Config } from '../../hooks/config.ts';

export function plaintextAuthAllowed(config: Pick<Config, 'auth'>, conn: { readonly secure: boolean; readonly isLoopback: boolean }): boolean {
  return conn.secure || conn.isLoopback || config.auth.allowPlaintext;
}
