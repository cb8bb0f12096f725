/**
 * IMAP4rev1 (RFC 3501) with the extensions real clients rely on, over the hook pipeline. The map:
 *
 *   listeners          plaintext + STARTTLS port, implicit-TLS port (protocols/net/listener.ts, tls.ts)
 *   greeting           * OK [CAPABILITY ...] WildDuck ready
 *   reader             imap/reader.ts      lines, literals, LITERAL+, limits enforced while reading
 *   session            imap/session.ts     state machine, command gate, notifications, one log line per command
 *   commands           imap/cmd-session.ts   CAPABILITY NOOP CHECK LOGOUT ID ENABLE NAMESPACE STARTTLS LOGIN AUTHENTICATE
 *                      imap/cmd-list.ts      LIST LSUB
 *                      imap/cmd-mailboxes.ts CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE STATUS
 *                      imap/cmd-select.ts    SELECT EXAMINE CLOSE UNSELECT EXPUNGE UID EXPUNGE
 *                      imap/cmd-messages.ts  FETCH STORE SEARCH COPY MOVE (and UID forms)
 *                      imap/cmd-append.ts    APPEND
 *                      imap/cmd-idle.ts      IDLE
 *   selected mailbox   imap/selected.ts    sequence numbers, change log → EXISTS / EXPUNGE / FETCH; \Recent (imap/recent.ts)
 *   wire mapping       imap/responses.ts   verdicts → NO [CODE]; internal errors logged, never shown
 *   data codecs        imap/fetch.ts, search.ts, render.ts, sequence.ts
 */
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { App } from './app.ts';
import { startProtocolListeners } from './net/listener.ts';
import type { Connection, SharedSlots, TcpListener } from './net/listener.ts';
import type { TlsMaterial } from './net/tls.ts';
import { ImapSession } from './imap/session.ts';
import type { ImapConnection } from './imap/session.ts';
import { rehearseSelect } from './imap/warm-up.ts';

export type { ImapConnection };

/** Serves one connection until it ends. Works on the listener's Connection or any `duplexConnection`. */
export function handleImapConnection(app: App, conn: ImapConnection): Promise<void> {
  return new ImapSession(app, conn).run();
}

/**
 * Starts the IMAP listeners: `imap.port` (plaintext, STARTTLS offered when `tls` is given) and `imap.tlsPort`
 * (implicit TLS) when set. `tls` comes from protocols/net/tls.ts, loaded once for every protocol by startListeners.
 */
export async function startImap(app: App, tls: TlsMaterial | null, shared: SharedSlots | null = null): Promise<TcpListener[]> {
  await rehearseSelect(app); // before the first client: the process's one-time costs of a first SELECT (imap/warm-up.ts)
  return startProtocolListeners('imap', app.config.imap, tls, app.log, (conn: Connection) => handleImapConnection(app, conn), shared);
}

export interface DuplexConnectionOptions {
  remoteAddress?: string;
  remotePort?: number;
  secure?: boolean;
  isLoopback?: boolean;
  /** Autologout after this long without input (default: no timer). */
  idleTimeoutMs?: number;
}

/**
 * A connection over any Duplex (tests, in-memory transcripts): no TLS upgrade, an optional idle timer that
 * runs `onIdleTimeout` and closes, like the TCP listener does.
 */
export function duplexConnection(socket: Duplex, options: DuplexConnectionOptions = {}): ImapConnection {
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const conn: ImapConnection = {
    id: randomUUID(),
    socket,
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    remotePort: options.remotePort ?? 0,
    secure: options.secure ?? false,
    isLoopback: options.isLoopback ?? true,
    refused: null,
    canStartTls: false,
    get closed() {
      return closed || socket.destroyed;
    },
    onIdleTimeout: null,
    onShutdown: null,
    upgradeToTls: () => Promise.reject(new Error('STARTTLS is not available on this connection')),
    close: async () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      await new Promise<void>((resolve) => {
        if (socket.destroyed || socket.writableFinished) return resolve();
        socket.end(() => resolve());
        setTimeout(resolve, 1000);
      });
      socket.destroy();
    },
  };
  const idleMs = options.idleTimeoutMs;
  if (idleMs) {
    const reset = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        await conn.onIdleTimeout?.(conn as never);
        await conn.close();
      }, idleMs);
    };
    socket.on('data', reset);
    reset();
  }
  return conn;
}
