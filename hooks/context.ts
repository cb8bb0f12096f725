/**
 * Context objects passed as the first argument of every hook (after the value, for waterfalls). Per-connection
 * state lives on the `Session`, per-operation state on the `HookContext`; plugins keep none in their instance.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from './log.ts';
import type { Id } from '../storage/ports.ts';

export type Protocol = 'imap' | 'pop3' | 'lmtp' | 'http' | 'internal';

export interface SessionUser {
  readonly id: Id;
  readonly username: string;
}

export interface Session {
  readonly id: string;
  readonly protocol: Protocol;
  /** The client's address (canonicalAddress: an IPv4-mapped IPv6 address as IPv4). */
  readonly remoteAddress: string;
  readonly remotePort: number | null;
  /** When the session began (ms since epoch): the connection's duration in its `connection closed` line. */
  readonly openedAt: number;
  /** Set by the `authenticate` pipeline on success; null before. Setting it rebinds `log`. */
  user: SessionUser | null;
  /**
   * Child logger bound to `{ session, protocol }`, and `user` (the user name) while a user is logged in: every line
   * a session logs after login names its user. Contexts made after the login (createContext) carry it too.
   */
  readonly log: Logger;
  /** Per-connection state for plugins, keyed by plugin name. */
  readonly data: Map<string, unknown>;
}

export interface HookContext {
  readonly session: Session;
  /** Logger for this operation (the session's logger unless the caller added fields). */
  readonly log: Logger;
  /** Per-operation state for plugins (e.g. a quota tap leaving a note for its afterStore tap), keyed by plugin name. */
  readonly data: Map<string, unknown>;
}

export interface SessionOptions {
  protocol: Protocol;
  remoteAddress?: string;
  remotePort?: number | null;
  /** Defaults to a random UUID. */
  id?: string;
  user?: SessionUser | null;
}

/**
 * Session and context as classes whose `data` map is made on first use: most connections and commands never touch
 * it, and an idle connection should not hold empty maps (thousands of IDLE sessions).
 */
class LazyData {
  #data: Map<string, unknown> | null = null;

  get data(): Map<string, unknown> {
    return (this.#data ??= new Map());
  }
}

class HookSession extends LazyData implements Session {
  readonly id: string;
  readonly protocol: Protocol;
  readonly remoteAddress: string;
  readonly remotePort: number | null;
  readonly openedAt = Date.now();
  /** The session's logger without a user; `#log` adds the user while there is one. */
  readonly #base: Logger;
  #log: Logger;
  #user: SessionUser | null = null;

  constructor(log: Logger, options: SessionOptions) {
    super();
    this.id = options.id ?? randomUUID();
    this.protocol = options.protocol;
    this.remoteAddress = canonicalAddress(options.remoteAddress ?? '');
    this.remotePort = options.remotePort ?? null;
    this.#base = this.#log = log.child({ session: this.id, protocol: options.protocol });
    this.user = options.user ?? null;
  }

  get user(): SessionUser | null {
    return this.#user;
  }

  set user(user: SessionUser | null) {
    this.#user = user;
    this.#log = user ? this.#base.child({ user: user.username }) : this.#base;
  }

  get log(): Logger {
    return this.#log;
  }
}

class Context extends LazyData implements HookContext {
  readonly session: Session;
  readonly log: Logger;

  constructor(session: Session, log: Logger) {
    super();
    this.session = session;
    this.log = log;
  }
}

/**
 * A client address as sessions and logs carry it: lower case, an IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, what
 * a dual-stack socket reports) as plain IPv4.
 */
export function canonicalAddress(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}

export function createSession(log: Logger, options: SessionOptions): Session {
  return new HookSession(log, options);
}

/** A fresh per-operation context on `session`; `fields` are bound to its logger. */
export function createContext(session: Session, fields?: Record<string, unknown>): HookContext {
  return new Context(session, fields ? session.log.child(fields) : session.log);
}

/** For work not tied to a client connection (CLI, maintenance, tests). */
export function internalContext(log: Logger, user: SessionUser | null = null): HookContext {
  return createContext(createSession(log, { protocol: 'internal', user }));
}

/** True for a HookContext (or Session): the interceptor uses it to log with the session's fields. */
export function loggerOf(value: unknown): Logger | null {
  if (typeof value !== 'object' || value === null) return null;
  const log = (value as { log?: unknown }).log;
  if (typeof log === 'object' && log !== null && typeof (log as Logger).error === 'function' && typeof (log as Logger).child === 'function') {
    return log as Logger;
  }
  return null;
}
