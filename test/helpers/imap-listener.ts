/**
 * The suite's IMAP app with real TCP listeners on 127.0.0.1 (plaintext on a free port, no implicit-TLS port unless
 * asked), for tests that drive imapflow, Python's imaplib or mbsync over a socket. Started before the suite's first
 * test, closed after its last.
 */
import { after, before } from 'node:test';
import type { ConfigInput } from '../../hooks/config.ts';
import { startImap } from '../../protocols/imap.ts';
import type { TcpListener } from '../../protocols/net/listener.ts';
import { loadTlsContext } from '../../protocols/net/tls.ts';
import { bootImapTestApp } from './imap-harness.ts';
import type { ImapTestApp } from './imap-harness.ts';

export interface ImapListenerSuite extends ImapTestApp {
  /** What `startImap` returned: the plaintext listener first, then the implicit-TLS one when `imap.tlsPort` is set. */
  listeners: TcpListener[];
  /** The plaintext listener's port. */
  readonly port: number;
}

/**
 * Call inside `describe`; read the fields inside the tests (they are filled in when the suite starts). `tls: true`
 * loads the TLS context (the test certificate), so STARTTLS is offered and a `tlsPort` in `overrides` listens too.
 */
export function imapListenerPerSuite(overrides: ConfigInput = {}, options: { tls?: boolean } = {}): ImapListenerSuite {
  const suite = {
    listeners: [] as TcpListener[],
    get port(): number {
      return this.listeners[0]!.port;
    },
  } as ImapListenerSuite;
  before(async () => {
    Object.assign(suite, await bootImapTestApp({ ...overrides, imap: { host: '127.0.0.1', port: 0, tlsPort: null, ...(overrides.imap ?? {}) } }));
    suite.listeners = await startImap(suite.app, options.tls ? await loadTlsContext(suite.app.config, suite.app.log) : null);
  });
  after(async () => {
    for (const l of suite.listeners) await l.close();
    await suite.close?.();
  });
  return suite;
}
