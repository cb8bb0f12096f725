/**
 * What a POP3 or LMTP session needs from an accepted connection. The shared TCP listener's Connection
 * (protocols/net/listener.ts: plaintext, implicit TLS, STARTTLS, PROXY protocol, idle timer) provides all of it; tests
 * build a smaller one over an in-memory duplex. Sessions read `socket` again after `upgradeToTls()`, which
 * replaces it with the TLS socket.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../hooks/log.ts';

export interface ClientConnection {
  readonly id: string;
  /** The current socket: the TLS socket once upgraded. */
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly remotePort?: number | null;
  /** True on implicit-TLS ports and after a STARTTLS/STLS upgrade. */
  readonly secure: boolean;
  readonly isLoopback: boolean;
  /** STARTTLS/STLS may be offered now: not secure yet and TLS material loaded. Absent: not offered. */
  readonly canStartTls?: boolean;
  /** Set when the listener will not serve this client (too many connections): say so and return. */
  readonly refused?: string | null;
  /**
   * Goodbye notices: the listener calls them when its idle timer fires or it shuts down, then closes the
   * connection itself. The session sets them; a connection without an idle timer never calls them.
   */
  onIdleTimeout?: ((conn: never) => void | Promise<void>) | null;
  onShutdown?: ((conn: never) => void | Promise<void>) | null;
  /** After login: the listener's idle timeout for logged-in sessions replaces the pre-auth one. */
  useAuthenticatedIdleTimeout?(): void;
  /** STARTTLS/STLS: call after the go-ahead reply; afterwards `socket` is the TLS socket. */
  upgradeToTls?(): Promise<unknown>;
  close(): unknown;
}

/** Whether STARTTLS/STLS can be offered on this connection right now. */
export function canStartTls(conn: ClientConnection): boolean {
  return !conn.secure && conn.canStartTls === true && typeof conn.upgradeToTls === 'function';
}

/** The part of protocols/net/line-reader.ts a TLS upgrade needs. */
export interface UpgradableReader {
  detach(): void;
  discardBuffered(): number;
  attach(socket: Duplex): void;
}

/**
 * STARTTLS/STLS after the go-ahead reply: stops reading the plaintext socket, drops anything the client
 * pipelined after the command (RFC 3207 / RFC 2595: it must not be acted on), upgrades, and reattaches the
 * reader to the TLS socket. Returns the new socket, or null when the handshake failed (the caller closes).
 */
export async function upgradeConnection(conn: ClientConnection, reader: UpgradableReader, log: Logger, verb: string): Promise<Duplex | null> {
  reader.detach();
  const dropped = reader.discardBuffered();
  if (dropped > 0) log.warn(`dropped bytes pipelined after ${verb}`, { bytes: dropped });
  try {
    await conn.upgradeToTls!();
  } catch (err) {
    log.info('TLS handshake failed', { err });
    return null;
  }
  reader.attach(conn.socket);
  return conn.socket;
}
