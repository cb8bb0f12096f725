/**
 * The TCP listener every line protocol (IMAP, POP3, LMTP) runs on: binding, PROXY protocol, implicit TLS and
 * STARTTLS, per-IP connection limits, the idle timer and graceful shutdown. It knows nothing about any
 * protocol: it hands each accepted client to `onConnection(conn)` as a small `Connection` object, and asks
 * the protocol to say its goodbye (`conn.onIdleTimeout`, `conn.onShutdown`) before it closes a connection
 * itself.
 *
 *   accept ─► connection cap (`maxConnections`, every socket from accept to close, handshaking ones included):
 *             over it, the socket is destroyed at once
 *          ─► per-IP limit, counted at accept from the socket's address (with PROXY protocol the address is
 *             only known after the header, so it is counted right after it, still before any TLS)
 *          ─► PROXY header (when enabled; bad header → close)
 *          ─► TLS handshake (implicit-TLS ports); PROXY header and handshake share one deadline
 *             (`handshakeTimeoutMs`), so a socket that never starts TLS is dropped after it
 *          ─► over the per-IP limit: on an implicit-TLS port the socket is destroyed without a handshake (a
 *             handshake per refused socket is the cost a flood wants to cause); on a plaintext port
 *             `conn.refused` is set, onConnection may write its refusal, then the listener closes the connection
 *          ─► onConnection(conn)
 *
 * A protocol's plaintext and implicit-TLS listeners share one `ConnectionLimits` (startProtocolListeners), so
 * both caps hold for the protocol as a whole, not per port.
 *
 * Both runtimes were checked here: Node 20 and Deno 2 accept server-side TLS over an existing socket (both
 * implicit TLS after a PROXY header and STARTTLS), provided the certificate is one rustls accepts (see tls.ts).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../hooks/log.ts';
import { readProxyHeader } from './proxy-protocol.ts';
import { idleDeadlines, type DeadlineOwner } from './deadlines.ts';

/** A running listener, as the server composition (protocols/server.ts) holds them. */
export interface Listener {
  describe: string;
  close(): Promise<void>;
}

export interface TcpListener extends Listener {
  readonly host: string;
  /** The bound port (useful when the configured port was 0). */
  readonly port: number;
  /** Open connections (refused and handshaking ones not included). */
  connectionCount(): number;
}

export type RefusalReason = 'too-many-connections';

/**
 * Counters several processes share (the workers of one server: the primary's ephemeral store over IPC), so the
 * connection caps hold for the server as a whole. A reservation is atomic and given back on close; the primary
 * gives back the reservations of a worker that dies.
 */
export interface SharedSlots {
  reserve(counters: ReadonlyArray<{ readonly key: string; readonly limit: number }>, ttlMs: number): Promise<number>;
  release(key: string, by: number): Promise<number>;
}

type Slot = { release(): void };

/**
 * Connection counts a protocol's listeners share: every admitted socket holds one slot of the cap and one of its
 * address from accept (or, behind PROXY, from the header) until it closes. Refused sockets hold none. With
 * `shared` (a multi-process server), every slot is also reserved in the shared counters under `name`, so the caps
 * count the sockets of all processes.
 */
export class ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  #total = 0;
  readonly #perIp = new Map<string, number>();
  readonly #shared: { slots: SharedSlots; name: string } | null;

  constructor(limits: { maxConnections: number; maxConnectionsPerIp: number }, shared: { slots: SharedSlots; name: string } | null = null) {
    this.maxConnections = limits.maxConnections;
    this.maxConnectionsPerIp = limits.maxConnectionsPerIp;
    this.#shared = shared;
  }

  /** Sockets holding a slot in this process (handshaking ones included). */
  get total(): number {
    return this.#total;
  }

  countFor(address: string): number {
    return this.#perIp.get(address) ?? 0;
  }

  /** A slot of the cap, or null when it is full; `release` is idempotent. */
  admit(): Promise<Slot | null> {
    if (this.#total >= this.maxConnections) return Promise.resolve(null);
    this.#total++;
    return this.#share(`connections`, this.maxConnections, null);
  }

  /** A slot of `address`'s share, or null when it is full; `release` is idempotent. */
  admitAddress(address: string): Promise<Slot | null> {
    const count = this.countFor(address);
    if (count >= this.maxConnectionsPerIp) return Promise.resolve(null);
    this.#perIp.set(address, count + 1);
    return this.#share(`ip:${address}`, this.maxConnectionsPerIp, address);
  }

  /**
   * `admit()` then `admitAddress(address)` in one step of the shared counters (one round trip to the primary instead
   * of two): `slot` null when the cap is full (and then no share), `share` null when `address`'s share is.
   */
  async admitWithAddress(address: string): Promise<{ slot: Slot | null; share: Slot | null }> {
    const shared = this.#shared;
    if (!shared || this.#total >= this.maxConnections || this.countFor(address) >= this.maxConnectionsPerIp) {
      const slot = await this.admit();
      return { slot, share: slot ? await this.admitAddress(address) : null };
    }
    this.#total++;
    this.#perIp.set(address, this.countFor(address) + 1);
    const cap = `${shared.name}:connections`;
    const ip = `${shared.name}:ip:${address}`;
    let over: number;
    try {
      over = await shared.slots.reserve([{ key: cap, limit: this.maxConnections }, { key: ip, limit: this.maxConnectionsPerIp }], 0);
    } catch {
      over = -1; // the shared store is gone (the worker is stopping): this process's own counts still hold
    }
    if (over < 0) return { slot: new LimitSlot(this, null, shared.slots, cap), share: new LimitSlot(this, address, shared.slots, ip) };
    this.giveBack(address);
    this.giveBack(null);
    // over the cap: nothing; over the address's share: the cap slot alone (the protocol writes its refusal)
    return { slot: over === 0 ? null : await this.admit(), share: null };
  }

  /** Gives back a local slot: one of `address`'s share, or of the cap (null). */
  giveBack(address: string | null): void {
    if (address === null) {
      this.#total--;
      return;
    }
    const n = this.countFor(address) - 1;
    if (n <= 0) this.#perIp.delete(address);
    else this.#perIp.set(address, n);
  }

  /** The local slot (of `address`, or of the cap) is taken; adds the shared reservation when there is one. */
  async #share(key: string, limit: number, address: string | null): Promise<Slot | null> {
    const shared = this.#shared;
    let sharedKey: string | null = null;
    if (shared) {
      const k = `${shared.name}:${key}`;
      let over: number;
      try {
        over = await shared.slots.reserve([{ key: k, limit }], 0);
      } catch {
        over = -1; // the shared store is gone (the worker is stopping): this process's own count still holds
      }
      if (over >= 0) {
        this.giveBack(address);
        return null;
      }
      sharedKey = k;
    }
    return new LimitSlot(this, address, sharedKey === null ? null : shared!.slots, sharedKey);
  }
}

/** One held slot: a small object, not closures over the admitting frame (a context and closures per connection). */
class LimitSlot implements Slot {
  #limits: ConnectionLimits | null;
  readonly #address: string | null;
  readonly #shared: SharedSlots | null;
  readonly #sharedKey: string | null;

  constructor(limits: ConnectionLimits, address: string | null, shared: SharedSlots | null, sharedKey: string | null) {
    this.#limits = limits;
    this.#address = address;
    this.#shared = shared;
    this.#sharedKey = sharedKey;
  }

  /** Idempotent. */
  release(): void {
    const limits = this.#limits;
    if (!limits) return;
    this.#limits = null;
    limits.giveBack(this.#address);
    if (this.#shared && this.#sharedKey) this.#shared.release(this.#sharedKey, 1).catch(() => 0);
  }
}

/**
 * The slots one socket holds, given back when it closes. A class method bound per socket, not a closure over the
 * accept frame, nor a bound module function: under tsx (esbuild keepNames) those carry a renamed target, and
 * binding one gives each bound function its own property table.
 */
class HeldSlots {
  /** The server-wide slot, and the client address's share once admitted: two fields, not an array grown by push. */
  readonly first: Slot;
  second: Slot | null = null;
  constructor(first: Slot) {
    this.first = first;
  }
  release(): void {
    this.first.release();
    this.second?.release();
  }
}

/** A notice the protocol writes before the listener closes the connection (e.g. `* BYE Autologout`). */
export type ConnectionNotice = (conn: Connection) => void | Promise<void>;

export interface Connection {
  /** Random id, for logs and the hook session id. */
  readonly id: string;
  /** The listener's name, e.g. "imap". */
  readonly listener: string;
  /** Current stream to read from and write to; replaced by `upgradeToTls()`. */
  readonly socket: Duplex;
  /** The client's address: from the PROXY header when one gave it, else the socket's (IPv4-mapped IPv6 unwrapped). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** True on implicit-TLS ports and after `upgradeToTls()`. */
  readonly secure: boolean;
  /** The client address is a loopback address (127.0.0.0/8, ::1). */
  readonly isLoopback: boolean;
  /** The address came from a PROXY header. */
  readonly proxied: boolean;
  /**
   * Set when the listener will not serve this client: onConnection still runs so the protocol can write its
   * own refusal (IMAP `* BYE Too many connections`); the listener closes the connection when onConnection
   * returns (or its promise settles), whatever the protocol does.
   */
  readonly refused: RefusalReason | null;
  /** STARTTLS may be offered: not secure yet, TLS material loaded, and the runtime can do it. */
  readonly canStartTls: boolean;
  readonly closed: boolean;
  /** Settles once the connection is fully closed, for whatever reason. */
  readonly whenClosed: Promise<void>;
  /** Called when the idle timer fires; write a goodbye. The listener closes the connection afterwards. */
  onIdleTimeout: ConnectionNotice | null;
  /** Called when the listener shuts down; write a goodbye. The listener closes the connection afterwards. */
  onShutdown: ConnectionNotice | null;
  /** Restarts the idle timer. Every chunk read from the socket restarts it too. */
  resetIdle(): void;
  /** Changes this connection's idle timeout (e.g. while a command waits on the server, or during IDLE). */
  setIdleTimeout(ms: number): void;
  /**
   * Switches to the listener's idle timeout for logged-in sessions (`idleTimeoutSeconds`); until then the
   * shorter `preAuthIdleTimeoutSeconds` applies when the listener has one.
   */
  useAuthenticatedIdleTimeout(): void;
  /** Back to the idle timeout before login (IMAP UNAUTHENTICATE). */
  usePreAuthIdleTimeout(): void;
  /**
   * STARTTLS: call after writing the "go ahead" reply. Plaintext the client sent after its STARTTLS command is
   * discarded (RFC 3207 §4.2 / RFC 2595 §3.1: pipelined plaintext must not be processed as if it came over
   * TLS), every `data`/`readable`/`end` listener on the old socket is removed, and `conn.socket` becomes the
   * TLS socket: attach your reader to it again. Rejects (and closes) if the handshake fails.
   */
  upgradeToTls(): Promise<void>;
  /** Graceful close: ends the stream (flushing what was written); destroys it if still open after the grace period. */
  close(): Promise<void>;
  /** Immediate close. */
  destroy(): void;
}

export interface TcpListenerOptions {
  /** Protocol name for logs and `describe`, e.g. "imap". */
  name: string;
  host: string;
  port: number;
  /** TLS from the first byte (IMAPS, POP3S). */
  implicitTls: boolean;
  /** TLS material (protocols/net/tls.ts); null disables STARTTLS and is an error with implicitTls. */
  tls: { readonly secureContext: SecureContext } | null;
  proxyProtocol: boolean;
  maxConnectionsPerIp: number;
  /** Open sockets (handshaking ones included) this listener admits; default unlimited. Ignored with `limits`. */
  maxConnections?: number;
  /** Counts shared with other listeners (a protocol's plaintext and TLS ports); default: this listener's own. */
  limits?: ConnectionLimits;
  /** Idle timeout of a logged-in session (and of every session when there is no pre-auth one). */
  idleTimeoutSeconds: number;
  /** Idle timeout until the protocol calls `useAuthenticatedIdleTimeout()`; default idleTimeoutSeconds. */
  preAuthIdleTimeoutSeconds?: number;
  log: Logger;
  onConnection(conn: Connection): void | Promise<void>;
  /** Time allowed for the PROXY header and the TLS handshake together. Default 15 s. */
  handshakeTimeoutMs?: number;
  /** Time a goodbye notice and the closing handshake may take before the socket is destroyed. Default 5 s. */
  closeGraceMs?: number;
  /** Overrides idleTimeoutSeconds (tests). */
  idleTimeoutMs?: number;
  /** Overrides preAuthIdleTimeoutSeconds (tests). */
  preAuthIdleTimeoutMs?: number;
}

/** Server-side TLS over an existing socket works in both runtimes this server supports (measured: Node 20, Deno 2). */
export const startTlsSupported = true;

/** `::ffff:10.0.0.1` → `10.0.0.1`; lower case. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}

export function isLoopbackAddress(address: string): boolean {
  const a = normalizeAddress(address);
  return a.startsWith('127.') || a === '::1' || a === '0:0:0:0:0:0:0:1';
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([work, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer));
}

/** Server-side TLS over `socket`; resolves once the handshake is done. */
function wrapTls(socket: Duplex, secureContext: SecureContext, timeoutMs: number): { tls: TLSSocket; secured: Promise<void> } {
  const tls = new TLSSocket(socket as Socket, { isServer: true, secureContext });
  const secured = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error('TLS handshake timed out'));
      tls.destroy();
    }, timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      tls.off('secure', onSecure);
      tls.off('error', onError);
      tls.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onSecure = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('connection closed during the TLS handshake'));
    tls.once('secure', onSecure);
    tls.once('error', onError);
    tls.once('close', onClose);
  });
  secured.catch(() => {});
  return { tls, secured };
}

interface ConnectionInit {
  listener: string;
  raw: Socket;
  socket: Duplex;
  remoteAddress: string;
  remotePort: number;
  proxied: boolean;
  secure: boolean;
  refused: RefusalReason | null;
  tls: SecureContext | null;
  idleMs: number;
  authenticatedIdleMs: number;
  handshakeTimeoutMs: number;
  closeGraceMs: number;
  log: Logger;
  onFinal: (conn: TcpConnection) => void;
}

/**
 * Connection ids: this process's random prefix and a counter, unique in practice across processes and restarts.
 * Not randomUUID(): its text is built from 16 pieces and kept as a rope of them, about 530 bytes per connection.
 */
const ID_PREFIX = randomBytes(6).toString('hex');
let idCounter = 0;

/** The connection each tracked stream (the socket, its TLS layer) belongs to, for the shared stream listeners. */
const LAYERS = new WeakMap<Duplex, TcpConnection>();

class TcpConnection implements Connection, DeadlineOwner {
  readonly id = `${ID_PREFIX}${(++idCounter).toString(36)}`;
  readonly listener: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly isLoopback: boolean;
  readonly proxied: boolean;
  readonly refused: RefusalReason | null;
  readonly whenClosed: Promise<void>;
  onIdleTimeout: ConnectionNotice | null = null;
  onShutdown: ConnectionNotice | null = null;

  #socket: Duplex;
  #secure: boolean;
  #layers: Duplex[];
  #tls: SecureContext | null;
  #idleMs: number;
  readonly #preAuthIdleMs: number;
  readonly #authenticatedIdleMs: number;
  /** The idle timeout, in the process's shared deadline heap (protocols/net/deadlines.ts): DeadlineOwner. */
  deadline = 0;
  queuedAt = 0;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #handshakeTimeoutMs: number;
  #closeGraceMs: number;
  #closed = false;
  #ending = false;
  #upgrading = false;
  #log: Logger;
  #onFinal: (conn: TcpConnection) => void;
  #resolveClosed!: () => void;
  /** Bound, not an arrow field: no property table of its own per connection under tsx (esbuild keepNames). */
  readonly #onData: () => void = this.resetIdle.bind(this);

  constructor(init: ConnectionInit) {
    this.listener = init.listener;
    this.#socket = init.socket;
    this.#layers = [];
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this.localAddress = normalizeAddress(init.raw.localAddress ?? '');
    this.localPort = init.raw.localPort ?? 0;
    this.isLoopback = isLoopbackAddress(init.remoteAddress);
    this.proxied = init.proxied;
    this.#secure = init.secure;
    this.refused = init.refused;
    this.#tls = init.tls;
    this.#idleMs = init.idleMs;
    this.#preAuthIdleMs = init.idleMs;
    this.#authenticatedIdleMs = init.authenticatedIdleMs;
    this.#handshakeTimeoutMs = init.handshakeTimeoutMs;
    this.#closeGraceMs = init.closeGraceMs;
    this.#log = init.log;
    this.#onFinal = init.onFinal;
    this.whenClosed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#track(init.raw);
    if (init.socket !== init.raw) this.#track(init.socket);
    this.#watchActivity(init.socket);
  }

  get socket(): Duplex {
    return this.#socket;
  }
  get secure(): boolean {
    return this.#secure;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get canStartTls(): boolean {
    return startTlsSupported && !this.#secure && this.#tls !== null && !this.#closed && !this.#upgrading;
  }

  /**
   * Restarts the idle timer on every chunk the protocol reads. The 'data' listener is added only once the
   * protocol starts reading (its first 'data' or 'readable' listener), so the stream never starts flowing
   * before a reader is there: an onConnection that awaits something first loses no bytes.
   */
  #watchActivity(socket: Duplex): void {
    const attach = () => queueMicrotask(() => socket.on('data', this.#onData));
    if (socket.listenerCount('data') + socket.listenerCount('readable') > 0) return attach();
    const onNewListener = (event: string | symbol) => {
      if (event !== 'data' && event !== 'readable') return;
      socket.off('newListener', onNewListener);
      attach();
    };
    socket.on('newListener', onNewListener);
  }

  #track(layer: Duplex): void {
    this.#layers.push(layer);
    // shared listeners finding the connection by stream: no closures per connection
    LAYERS.set(layer, this);
    layer.on('error', TcpConnection.#onLayerError);
    layer.on('close', TcpConnection.#onLayerClose);
    if (layer.destroyed) queueMicrotask(() => this.#finalize());
  }

  static #onLayerError(this: Duplex, err: Error): void {
    const conn = LAYERS.get(this);
    if (!conn) return;
    conn.#log.debug('connection error', { conn: conn.id, err: err.message });
    conn.destroy();
  }

  static #onLayerClose(this: Duplex): void {
    const conn = LAYERS.get(this);
    if (conn) conn.#finalize();
  }

  /** Starts the idle timer; the listener calls it once the protocol has the connection. */
  start(): void {
    this.resetIdle();
  }

  resetIdle(): void {
    if (this.#closed || this.#ending) return;
    idleDeadlines.set(this, this.#idleMs);
  }

  /** The idle timeout passed (DeadlineOwner). */
  expire(): void {
    void this.#expire();
  }

  setIdleTimeout(ms: number): void {
    this.#idleMs = ms;
    this.resetIdle();
  }

  useAuthenticatedIdleTimeout(): void {
    this.setIdleTimeout(this.#authenticatedIdleMs);
  }

  usePreAuthIdleTimeout(): void {
    this.setIdleTimeout(this.#preAuthIdleMs);
  }

  async #expire(): Promise<void> {
    if (this.#closed || this.#ending) return;
    this.#log.debug('idle timeout', { conn: this.id });
    await this.notify(this.onIdleTimeout, 'idle');
    await this.close();
  }

  /** Runs a goodbye notice, bounded by the grace period; errors are logged. */
  async notify(notice: ConnectionNotice | null, what: string): Promise<void> {
    if (!notice || this.#closed || this.#ending) return;
    try {
      await withTimeout(Promise.resolve(notice(this)), this.#closeGraceMs);
    } catch (err) {
      this.#log.warn(`${what} notice failed`, { conn: this.id, err });
    }
  }

  async upgradeToTls(): Promise<void> {
    if (!this.canStartTls) throw new Error(this.#secure ? 'connection is already secure' : 'STARTTLS is not available on this connection');
    this.#upgrading = true;
    idleDeadlines.clear(this);
    const old = this.#socket;
    old.pause();
    for (const event of ['data', 'readable', 'end']) old.removeAllListeners(event);
    // plaintext pipelined after STARTTLS must never be read as if it had come over TLS
    while (old.read() !== null) {
      /* discard */
    }
    const { tls, secured } = wrapTls(old, this.#tls!, this.#handshakeTimeoutMs);
    this.#socket = tls;
    this.#track(tls);
    try {
      await secured;
    } catch (err) {
      this.#log.debug('STARTTLS handshake failed', { conn: this.id, err: (err as Error).message });
      this.destroy();
      throw err;
    } finally {
      this.#upgrading = false;
    }
    this.#secure = true;
    this.#watchActivity(tls);
    this.resetIdle();
  }

  close(): Promise<void> {
    if (this.#closed || this.#ending) return this.whenClosed;
    this.#ending = true;
    idleDeadlines.clear(this);
    this.#graceTimer = setTimeout(() => this.destroy(), this.#closeGraceMs);
    const socket = this.#socket;
    try {
      socket.end();
      // Nothing is read from here on. Drain what the client still sends, even if the protocol pauses the stream
      // after this (a reader detaching on its way out): a paused stream never sees the client's FIN, and Deno
      // then keeps the socket open until the grace period runs out.
      socket.on('pause', () => queueMicrotask(() => socket.resume()));
      socket.resume();
    } catch {
      this.destroy();
    }
    return this.whenClosed;
  }

  destroy(): void {
    for (const layer of this.#layers) layer.destroy();
    this.#finalize();
  }

  #finalize(): void {
    if (this.#closed) return;
    this.#closed = true;
    idleDeadlines.clear(this);
    clearTimeout(this.#graceTimer);
    for (const layer of this.#layers) if (!layer.destroyed) layer.destroy();
    this.#onFinal(this);
    this.#resolveClosed();
  }
}

/** The listener settings every line protocol's config section has (`imap`, `pop3`, `lmtp`). */
export interface ProtocolListenerConfig {
  readonly host: string;
  readonly port: number;
  readonly tlsPort: number | null;
  readonly proxyProtocol: boolean;
  readonly maxConnectionsPerIp: number;
  readonly maxConnections: number;
  readonly handshakeTimeoutSeconds: number;
  readonly idleTimeoutSeconds: number;
  /** Idle timeout until the client logs in (IMAP, POP3); the protocol switches to idleTimeoutSeconds then. */
  readonly preAuthIdleTimeoutSeconds?: number;
}

/**
 * Starts one protocol's listeners from its config section: `port` (plaintext, STARTTLS/STLS offered when TLS
 * material is given) and `tlsPort` (implicit TLS) when set. The TLS material is loaded once by the caller
 * (protocols/server.ts) and shared by every protocol. If the second port cannot be bound, the first is closed again.
 */
export async function startProtocolListeners(
  name: string,
  section: ProtocolListenerConfig,
  tls: TcpListenerOptions['tls'],
  log: Logger,
  onConnection: TcpListenerOptions['onConnection'],
  shared: SharedSlots | null = null,
): Promise<TcpListener[]> {
  const common = {
    name,
    host: section.host,
    tls,
    proxyProtocol: section.proxyProtocol,
    maxConnectionsPerIp: section.maxConnectionsPerIp,
    limits: new ConnectionLimits(section, shared ? { slots: shared, name: `listener:${name}` } : null),
    handshakeTimeoutMs: section.handshakeTimeoutSeconds * 1000,
    idleTimeoutSeconds: section.idleTimeoutSeconds,
    ...(section.preAuthIdleTimeoutSeconds !== undefined ? { preAuthIdleTimeoutSeconds: section.preAuthIdleTimeoutSeconds } : {}),
    log,
    onConnection,
  };
  const listeners: TcpListener[] = [];
  try {
    listeners.push(await startTcpListener({ ...common, port: section.port, implicitTls: false }));
    if (section.tlsPort !== null) listeners.push(await startTcpListener({ ...common, port: section.tlsPort, implicitTls: true }));
  } catch (err) {
    for (const listener of listeners) await listener.close().catch(() => {});
    throw err;
  }
  return listeners;
}

/** Binds a TCP listener. Rejects if the port cannot be bound or implicit TLS has no TLS material. */
export function startTcpListener(options: TcpListenerOptions): Promise<TcpListener> {
  const { name, host, implicitTls, proxyProtocol, maxConnectionsPerIp, onConnection } = options;
  const limits = options.limits ?? new ConnectionLimits({ maxConnections: options.maxConnections ?? Infinity, maxConnectionsPerIp });
  if (implicitTls && !options.tls) return Promise.reject(new Error(`${name}: implicit TLS needs TLS material`));
  const log = options.log.child({ listener: `${name}${implicitTls ? 's' : ''}` });
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 15_000;
  const closeGraceMs = options.closeGraceMs ?? 5_000;
  const authenticatedIdleMs = options.idleTimeoutMs ?? options.idleTimeoutSeconds * 1000;
  const idleMs =
    options.preAuthIdleTimeoutMs ?? (options.preAuthIdleTimeoutSeconds !== undefined ? options.preAuthIdleTimeoutSeconds * 1000 : authenticatedIdleMs);
  const secureContext = options.tls?.secureContext ?? null;

  const open = new Set<TcpConnection>();
  const pending = new Set<Socket>();
  let shuttingDown = false;

  const release = (conn: TcpConnection) => {
    open.delete(conn);
  };

  // sockets dropped at accept are reported at most once a minute, with a count: a flood must not flood the log
  let dropped = 0;
  let reported = -Infinity;
  const noteDrop = (message: string, fields: Record<string, unknown>) => {
    dropped++;
    const now = performance.now();
    if (now - reported < 60_000) return;
    log.warn(message, { ...fields, droppedSinceLastReport: dropped });
    dropped = 0;
    reported = now;
  };

  // one of each per listener, not per connection: what a held connection keeps is its own state only
  const earlyError = (err: Error) => log.debug('socket error before the session started', { err: err.message });
  const failed = (conn: TcpConnection, err: unknown) => {
    log.error('connection handler failed', { conn: conn.id, err });
    conn.destroy();
  };

  const accept = async (raw: Socket): Promise<void> => {
    raw.on('error', earlyError);
    let remoteAddress = normalizeAddress(raw.remoteAddress ?? '');
    // the per-IP share from the socket's address at once, with the cap's slot; behind PROXY only after the header
    // has named the client
    const admitted = proxyProtocol ? { slot: await limits.admit(), share: null } : await limits.admitWithAddress(remoteAddress);
    const slot = admitted.slot;
    let share = admitted.share;
    if (!slot) {
      noteDrop('connections dropped: connection cap reached', { remoteAddress, limit: limits.maxConnections });
      raw.destroy();
      return;
    }
    if (raw.destroyed || shuttingDown) {
      slot.release();
      share?.release();
      raw.destroy();
      return;
    }
    pending.add(raw);
    // the slots this socket holds, given back by one listener when it closes
    const held = new HeldSlots(slot);
    // 'close' comes once: `on`, not `once` (which wraps the listener in a closure and a state object per socket)
    raw.on('close', held.release.bind(held));
    raw.setNoDelay(true);
    let socket: Duplex = raw;
    let remotePort = raw.remotePort ?? 0;
    let proxied = false;
    const deadline = performance.now() + handshakeTimeoutMs;
    const left = () => Math.max(1, deadline - performance.now());
    try {
      if (proxyProtocol) {
        const header = await readProxyHeader(raw, left());
        if (header.source) {
          remoteAddress = normalizeAddress(header.source.address);
          remotePort = header.source.port;
          proxied = true;
        }
        share = await limits.admitAddress(remoteAddress);
      }
      if (share) {
        if (raw.closed) share.release();
        else held.second = share;
      } else if (raw.destroyed) return;
      else if (implicitTls) {
        // no handshake for a client over its limit: refusing must cost less than serving
        noteDrop('connections dropped: too many connections from one address', { remoteAddress, limit: maxConnectionsPerIp });
        raw.destroy();
        return;
      }
      if (implicitTls) {
        const { tls, secured } = wrapTls(raw, secureContext!, left());
        tls.on('error', () => {}); // reported through `secured`
        socket = tls;
        await secured;
      }
    } catch (err) {
      log.debug('connection dropped before the session started', { remoteAddress, err: (err as Error).message });
      raw.destroy();
      socket.destroy();
      return;
    } finally {
      pending.delete(raw);
    }
    if (shuttingDown || raw.destroyed) {
      socket.destroy();
      return;
    }
    // pauseOnConnect left the socket explicitly paused; make it an ordinary fresh stream again, so that the
    // protocol's first 'data' listener starts the flow (and a closed peer is noticed while it reads)
    if (socket === raw) (raw as { readableFlowing: boolean | null }).readableFlowing = null;
    const refused: RefusalReason | null = share ? null : 'too-many-connections';
    const conn = new TcpConnection({
      listener: name,
      raw,
      socket,
      remoteAddress,
      remotePort,
      proxied,
      secure: implicitTls,
      refused,
      tls: secureContext,
      idleMs,
      authenticatedIdleMs,
      handshakeTimeoutMs,
      closeGraceMs,
      log,
      onFinal: release,
    });
    if (refused) {
      log.info('connection refused: too many connections from this address', { remoteAddress, limit: maxConnectionsPerIp });
      try {
        await withTimeout(Promise.resolve(onConnection(conn)), closeGraceMs);
      } catch (err) {
        log.warn('refusal handler failed', { err });
      }
      await conn.close();
      return;
    }
    raw.off('error', earlyError); // the connection reports its errors now
    open.add(conn);
    conn.start();
    // not awaited: accept's frame (and what it captured) is not kept for the life of the connection
    try {
      Promise.resolve(onConnection(conn)).catch((err) => failed(conn, err));
    } catch (err) {
      failed(conn, err);
    }
  };

  const server: Server = createServer({ pauseOnConnect: true }, (raw) => {
    if (shuttingDown) {
      raw.destroy();
      return;
    }
    void accept(raw);
  });
  server.on('error', (err) => log.error('listener error', { err }));

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const describe = `${name}${implicitTls ? 's' : ''}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
      log.info('listening', { url: describe, proxyProtocol, starttls: !implicitTls && secureContext !== null });
      let closing: Promise<void> | null = null;
      resolve({
        describe,
        host,
        port: address.port,
        connectionCount: () => open.size,
        close: () =>
          (closing ??= (async () => {
            shuttingDown = true;
            const stopped = new Promise<void>((done) => server.close(() => done()));
            for (const raw of pending) raw.destroy();
            await Promise.all(
              [...open].map(async (conn) => {
                await conn.notify(conn.onShutdown, 'shutdown');
                await conn.close();
              }),
            );
            await stopped;
            log.info('stopped', { url: describe });
          })()),
      });
    });
  });
}
