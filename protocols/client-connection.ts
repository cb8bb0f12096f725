/**
 * What a protocol session needs from an accepted connection. The TCP/TLS listener provides it (plain, implicit
 * TLS, PROXY protocol); tests build one over an in-memory duplex. Sessions read `socket` again after
 * `upgradeToTls()`, which replaces it with the TLS socket.
 */
import type { Duplex } from 'node:stream';

export interface ClientConnection {
  readonly id: string;
  /** The current socket: the TLS socket once upgraded. */
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly remotePort?: number | null;
  /** True on implicit-TLS ports and after a STARTTLS/STLS upgrade. */
  readonly secure: boolean;
  readonly isLoopback: boolean;
  /** STARTTLS/STLS may be offered now; when absent, whether `upgradeToTls` exists decides. */
  readonly canStartTls?: boolean;
  /** Set when the listener will not serve this client (too many connections): say so and return. */
  readonly refused?: string | null;
  /**
   * Present when the listener runs the idle timer: it calls this to let the protocol say goodbye, then closes.
   * Without it the session watches idleness itself.
   */
  onIdleTimeout?: ((conn: never) => void | Promise<void>) | null;
  /** STARTTLS/STLS: call after the go-ahead reply; afterwards `socket` is the TLS socket. */
  upgradeToTls?(): Promise<unknown>;
  close(): unknown;
}

/** Whether STARTTLS/STLS can be offered on this connection right now. */
export function canStartTls(conn: ClientConnection): boolean {
  if (conn.secure) return false;
  return conn.canStartTls ?? typeof conn.upgradeToTls === 'function';
}

/** The socket to use after `upgradeToTls()` resolved: what it returned when that is a stream, else `conn.socket`. */
export function socketAfterUpgrade(conn: ClientConnection, upgraded: unknown): Duplex {
  if (upgraded && typeof upgraded === 'object' && typeof (upgraded as Duplex).write === 'function' && typeof (upgraded as Duplex).on === 'function') {
    return upgraded as Duplex;
  }
  return conn.socket;
}
