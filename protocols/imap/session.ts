/**
 * One IMAP connection: the state machine (not authenticated → authenticated → selected → logout), the
 * command loop, response writing with backpressure, and the selected-mailbox notifications.
 *
 *   reader.readCommand()            limits enforced while reading         ── BAD / NO [TOOBIG]
 *   table lookup, state check       generic, before anything runs         ── BAD
 *   spec.parse(args)                syntax                                ── BAD
 *   runCommand(imap.command.VERB)   plugins deny / implement              ── NO [code]
 *   spec.run(...)                   one pipeline call or storage read     ── OK / NO [code]
 *   selected.sync + flush           EXISTS / EXPUNGE / FETCH FLAGS where RFC 3501 allows
 *   tag OK|NO|BAD                   one structured log line per command
 *
 * A plugin implementing a command answers `{ untagged?: string[], status?: 'OK'|'NO'|'BAD', code?, text? }`
 * (hooks/imap.ts `ImapCommandResult`); it may run the built-in handler first through `input.next()`.
 */
import { join, resolve } from 'node:path';
import type { App } from '../app.ts';
import { StorageError } from '../../storage/ports.ts';
import { createContext, createSession } from '../../hooks/context.ts';
import type { HookContext, Session } from '../../hooks/context.ts';
import { authenticate, closeSession, connectSession, listCapabilities, reportCommand, runCommand } from '../../hooks/pipeline/index.ts';
import type { CloseReason } from '../../hooks/pipeline/index.ts';
import type { CommandResult } from '../../hooks/types.ts';
import type { ImapCommandInput, ImapCommandOutput } from '../../hooks/imap.ts';
import type { Duplex } from 'node:stream';
import { plaintextAuthAllowed } from '../net/auth-policy.ts';
import { Args } from './args.ts';
import type { CommandSpec, ImapState } from './command.ts';
import { COMMANDS } from './commands.ts';
import { InputBuffer, InputEndedError, type FlowControl } from './input.ts';
import { CommandReader } from './reader.ts';
import type { LiteralPolicy, ReaderOptions } from './reader.ts';
import { CommandBudget } from '../net/command-budget.ts';
import type { CommandBudgetOptions } from '../net/command-budget.ts';
import { TimeSlice } from '../../storage/time-slice.ts';
import { SERVER_ERROR, bad, no, ok, statusLine, verdictOutcome } from './responses.ts';
import type { Outcome, Status } from './responses.ts';
import { SearchState } from './search-context.ts';
import { SelectedMailbox } from './selected.ts';
import { selectedForPlugins } from './plugin-mailbox.ts';
import type { ChangeWatcher } from './selected.ts';
import type { Notifier } from './notify.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapCommand, ResponsePiece } from './types.ts';

/**
 * What the session needs of a connection: protocols/net/listener.ts `Connection` satisfies it, and so does
 * `duplexConnection()` over any Duplex (tests).
 */
export interface ImapConnection {
  readonly id: string;
  /** Current stream; replaced by `upgradeToTls()`. */
  readonly socket: Duplex;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly secure: boolean;
  readonly isLoopback: boolean;
  /** Set when the listener will not serve this client (per-IP limit): say BYE only. */
  readonly refused: string | null;
  readonly canStartTls: boolean;
  readonly closed: boolean;
  /** Goodbye notices the transport calls before it closes the connection itself. */
  onIdleTimeout: ((conn: never) => void | Promise<void>) | null;
  onShutdown: ((conn: never) => void | Promise<void>) | null;
  upgradeToTls(): Promise<void>;
  close(): Promise<void>;
  /** Changes the idle timeout (IDLE sets its own). */
  setIdleTimeout?(ms: number): void;
  /** After login (and after IDLE): the listener's idle timeout for logged-in sessions. */
  useAuthenticatedIdleTimeout?(): void;
  /** After UNAUTHENTICATE: the listener's idle timeout before login again. */
  usePreAuthIdleTimeout?(): void;
}

const encoder = new TextEncoder();
const CRLF = encoder.encode('\r\n');
const FLUSH_AT = 64 * 1024;
/** The literal spool directory of a data directory: one string for every session, not one each. */
const spoolDirs = new Map<string, string>();
function spoolDir(dataDir: string): string {
  let dir = spoolDirs.get(dataDir);
  if (dir === undefined) spoolDirs.set(dataDir, (dir = join(resolve(dataDir), 'tmp')));
  return dir;
}

/** A command the loop does not wait on (IDLE), with what its tagged reply and the input it holds need. */
interface ParkedCommand {
  readonly command: ImapCommand;
  readonly ctx: HookContext;
  readonly spec: CommandSpec;
  readonly started: number;
  readonly release: () => Promise<void>;
}

/** Options objects whose callbacks are ImapSession's shared functions (called as methods of the options). */
interface SessionCallbacks {
  session: ImapSession;
}

/** The session of a socket or connection, for the shared socket listeners and connection notices. */
const SESSIONS = new WeakMap<object, ImapSession>();

export class ImapSession {
  readonly app: App;
  readonly conn: ImapConnection;
  /** The hook-level session (id, user, logger, plugin data). */
  readonly session: Session;
  state: ImapState = 'not-authenticated';
  selected: SelectedMailbox | null = null;
  /** SEARCHRES's saved result and CONTEXT=SEARCH's live results in the selected mailbox (search-context.ts). */
  readonly searches = new SearchState();
  /**
   * ENABLEd extensions (RFC 5161), and CONDSTORE turned on by its first use (RFC 7162 §3.1). Made on the first
   * one: most sessions enable nothing, and an empty Set costs an idle session about 250 bytes.
   */
  #enabled: Set<string> | null = null;
  readonly reader: CommandReader;
  /** Long loops (FETCH, SEARCH, STORE, pipelined commands) call `slice.pause()` so other sessions get their turn. */
  readonly slice = new TimeSlice();
  readonly #input: InputBuffer;
  readonly #budget: CommandBudget;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #bad = 0;
  #closing = false;
  /** Why the session ends, for its `connection closed` line: the first reason given wins (`endsFor`). */
  #closeReason: CloseReason | null = null;
  #watcher: ChangeWatcher | null = null;
  /** NOTIFY SET (RFC 5465): what the client asked to hear of without asking (notify.ts). */
  #notifier: Notifier | null = null;
  /** A command runs (from `execute` to its tagged reply): unsolicited responses wait for its end. */
  #running = false;
  /** Unsolicited responses being pushed between commands (NOTIFY); a command waits for them. */
  #pushing: Promise<void> | null = null;

  constructor(app: App, conn: ImapConnection) {
    this.app = app;
    this.conn = conn;
    this.session = createSession(app.log, { protocol: 'imap', id: conn.id, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort });
    this.#input = new InputBuffer();
    const config = app.config;
    // the callbacks are shared functions finding the session on their options object: a callback made per session
    // costs a closure and a context, and under tsx (esbuild keepNames) a named arrow its own property table
    this.#budget = new CommandBudget({
      session: this,
      timeoutMs: config.imap.commandTimeoutSeconds * 1000,
      minBytesPerSecond: config.imap.minBytesPerSecond,
      onExpire: ImapSession.#onCommandExpired,
    } as CommandBudgetOptions & SessionCallbacks);
    this.reader = new CommandReader(this.#input, {
      session: this,
      budget: this.#budget,
      literalPolicy: ImapSession.#readerLiteralPolicy,
      maxLineLength: config.imap.maxLineLength,
      maxArguments: config.imap.maxArguments,
      maxLiteralSize: config.imap.maxLiteralSize,
      maxAppendSize: config.limits.maxMessageSize,
      literalMinus: config.imap.literalMinus,
      spoolDir: spoolDir(config.dataDir),
      memoryThreshold: config.limits.spoolMemoryBytes,
      continuation: ImapSession.#readerContinuation,
    } as ReaderOptions & SessionCallbacks);
  }

  static #onCommandExpired(this: SessionCallbacks): void {
    this.session.log.info('command timeout: a command took too long to arrive, closing');
    void this.session.disconnect('Command not received in time', 'command-timeout');
  }

  static #readerLiteralPolicy(this: SessionCallbacks, verb: string | null): LiteralPolicy {
    return this.session.#literalPolicy(verb);
  }

  static #readerContinuation(this: SessionCallbacks): Promise<void> {
    return this.session.#writeNow('+ Ready for literal data\r\n');
  }

  get log() {
    return this.session.log;
  }

  /**
   * What the reader may do with a literal of `verb` now (null: before the verb is known): a verb the command table
   * does not allow in this state is refused before its literal is read (APPEND before login gets `BAD Log in
   * first`, never `+`); before login every literal is held to imap.maxPreAuthLiteralSize.
   */
  #literalPolicy(verb: string | null): LiteralPolicy {
    const spec = verb === null ? undefined : COMMANDS.get(verb);
    if (spec && !spec.states.includes(this.state)) return { refuse: { status: 'BAD', code: null, text: wrongState(this.state, spec.states) } };
    if (this.state === 'not-authenticated') return { maxLiteralSize: this.app.config.imap.maxPreAuthLiteralSize };
    return {};
  }

  /** Idle timeout after login (the listener started with imap.preAuthIdleTimeoutSeconds). */
  restoreIdleTimeout(): void {
    this.conn.useAuthenticatedIdleTimeout?.();
  }

  isEnabled(extension: string): boolean {
    return this.#enabled?.has(extension) ?? false;
  }

  enable(extension: string): void {
    const enabled = (this.#enabled ??= new Set());
    // the first CONDSTORE-enabling command in a selected mailbox reports its HIGHESTMODSEQ (RFC 7162 §3.1)
    if (extension === 'CONDSTORE' && !enabled.has(extension) && this.selected) this.send(`* OK [HIGHESTMODSEQ ${Math.max(1, this.selected.highestModseq)}] Highest`);
    enabled.add(extension);
  }

  /**
   * Mailbox names and strings in UTF-8, not modified UTF-7: after ENABLE UTF8=ACCEPT (RFC 6855), and in IMAP4rev2,
   * whose names are Net-Unicode (RFC 9051 §5.1; modified UTF-7 is its appendix A, for IMAP4rev1 peers only).
   */
  get utf8(): boolean {
    return this.isEnabled('UTF8=ACCEPT') || this.isEnabled('IMAP4REV2');
  }

  /**
   * ENABLE IMAP4rev2 was given: the session answers as RFC 9051 asks — no \Recent (selected.ts, cmd-select.ts),
   * SEARCH as ESEARCH (cmd-search.ts), LIST-STATUS built in (cmd-list.ts), STATUS without RECENT (status-items.ts).
   */
  get rev2(): boolean {
    return this.isEnabled('IMAP4REV2');
  }

  get condstore(): boolean {
    return this.isEnabled('CONDSTORE');
  }

  get userId(): string {
    const user = this.session.user;
    if (!user) throw new Error('not authenticated');
    return user.id;
  }

  get closing(): boolean {
    return this.#closing || this.conn.closed;
  }

  /** Passwords may be sent: TLS, loopback, or the admin allowed plaintext (auth.allowPlaintext). */
  get plaintextAllowed(): boolean {
    return plaintextAuthAllowed(this.app.config, this.conn);
  }

  async capabilities(ctx: HookContext): Promise<string[]> {
    const caps = ['IMAP4rev1', 'IMAP4rev2'];
    if (this.state === 'not-authenticated') {
      if (this.conn.canStartTls) caps.push('STARTTLS');
      if (this.plaintextAllowed) caps.push('AUTH=PLAIN', 'AUTH=LOGIN');
      else caps.push('LOGINDISABLED');
    } else {
      caps.push('UNAUTHENTICATE');
    }
    caps.push(
      this.app.config.imap.literalMinus ? 'LITERAL-' : 'LITERAL+',
      'SASL-IR',
      'ID',
      'ENABLE',
      'IDLE',
      'NAMESPACE',
      'UNSELECT',
      'CHILDREN',
      'LIST-EXTENDED',
      'SPECIAL-USE',
      'CREATE-SPECIAL-USE',
      'UIDPLUS',
      'MOVE',
      'CONDSTORE',
      'QRESYNC',
      'NOTIFY',
      'WITHIN',
      'ESEARCH',
      'SEARCHRES',
      'CONTEXT=SEARCH',
      'UTF8=ACCEPT',
      'BINARY',
      'MULTIAPPEND',
      'CATENATE',
      `APPENDLIMIT=${this.app.config.limits.maxMessageSize}`,
    );
    return listCapabilities(this.app, 'imap', ctx, caps);
  }

  // --- output ---------------------------------------------------------------------------------------------

  /** Queues one response line (CRLF added); while a plugin runs the built-in handler (`next()`), collects it. */
  send(line: string): void {
    if (this.#capture) {
      this.#capture.push(line);
      return;
    }
    this.#queue(encoder.encode(line + '\r\n'));
  }

  /** Untagged lines of a built-in handler a plugin is running through `next()`. */
  #capture: string[] | null = null;

  #queue(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
  }

  /** Queues a response built of pieces (text and streamed literals), then CRLF. */
  async sendPieces(pieces: readonly ResponsePiece[]): Promise<void> {
    try {
      await this.#sendPieces(pieces);
    } catch (err) {
      // a literal that cannot be completed leaves the client mid-response: the connection cannot go on
      this.#closing = true;
      this.#out = [];
      this.#outBytes = 0;
      this.conn.socket.destroy();
      throw err;
    }
  }

  async #sendPieces(pieces: readonly ResponsePiece[]): Promise<void> {
    if (this.#capture) throw new Error('responses with literals cannot be collected for a plugin (next())');
    for (const piece of pieces) {
      if (typeof piece === 'string') {
        this.#queue(encoder.encode(piece));
        continue;
      }
      this.#queue(encoder.encode(`${piece.binary ? '~' : ''}{${piece.size}}\r\n`));
      let left = piece.size;
      for await (const chunk of piece.literal) {
        if (chunk.length > left) throw new Error('literal longer than announced');
        left -= chunk.length;
        this.#queue(chunk);
        if (this.#outBytes >= FLUSH_AT) await this.flush();
      }
      if (left !== 0) throw new Error('literal shorter than announced');
    }
    this.#queue(CRLF);
    if (this.#outBytes >= FLUSH_AT) await this.flush();
  }

  /** Writes everything queued, waiting for the socket to drain. */
  async flush(): Promise<void> {
    if (this.#out.length === 0) return;
    const parts = this.#out;
    this.#out = [];
    this.#outBytes = 0;
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const p of parts) {
      bytes.set(p, offset);
      offset += p.length;
    }
    await this.#write(bytes);
  }

  async #writeNow(text: string): Promise<void> {
    await this.flush();
    await this.#write(encoder.encode(text));
  }

  async #write(bytes: Uint8Array): Promise<void> {
    const socket = this.conn.socket;
    if (this.conn.closed || socket.destroyed || socket.writableEnded) return;
    if (socket.write(bytes)) return;
    await new Promise<void>((done) => {
      const finish = () => {
        socket.off('drain', finish);
        socket.off('close', finish);
        done();
      };
      socket.on('drain', finish);
      socket.on('close', finish);
    });
  }

  // --- lifecycle ------------------------------------------------------------------------------------------

  #attach(): void {
    const socket = this.conn.socket;
    // the socket pauses and resumes itself (SessionFlow, one small object, also flushes held replies when the
    // reader waits for the client); its listeners are shared functions finding the session by socket, so an idle
    // session holds no listener closures (each would cost a context and, under tsx, a property table)
    this.#input.setFlow(new SessionFlow(socket, this));
    SESSIONS.set(socket, this);
    socket.on('data', ImapSession.#onData);
    socket.on('end', ImapSession.#onEnd);
    socket.on('close', ImapSession.#onEnd);
  }

  static #onData(this: Duplex, chunk: Uint8Array | string): void {
    const session = SESSIONS.get(this);
    if (!session) return;
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
    session.#budget.add(bytes.length);
    session.#input.push(bytes);
  }

  static #onEnd(this: Duplex): void {
    const session = SESSIONS.get(this);
    if (session) session.#input.end();
  }

  static #onIdleTimeout(conn: ImapConnection): Promise<void> | undefined {
    const session = SESSIONS.get(conn);
    session?.endsFor('idle-timeout');
    return session ? session.#bye('Autologout; idle for too long') : undefined;
  }

  static #onShutdown(conn: ImapConnection): Promise<void> | undefined {
    const session = SESSIONS.get(conn);
    session?.endsFor('shutdown');
    return session ? session.#bye('Server shutting down') : undefined;
  }

  /** Records why the session is ending (the first reason given wins). */
  endsFor(reason: CloseReason): void {
    this.#closeReason ??= reason;
  }

  /**
   * Serves the connection until LOGOUT, BYE or the client goes away; settles then. The command loop (`#serve`) does
   * not stay suspended on a command that waits for the client (IDLE): it ends, and the command's completion picks
   * it up again (`#resume`), so an idling session holds no suspended async frames.
   */
  run(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#ended = resolve;
      void this.#start();
    });
  }

  #ended: (() => void) | null = null;
  /** The session's context for its connect and close taps. */
  #ctx: HookContext | null = null;
  /** The command whose completion the loop waits for (IDLE), with what its tagged reply needs. */
  #parked: ParkedCommand | null = null;

  async #start(): Promise<void> {
    const ctx = (this.#ctx = createContext(this.session));
    SESSIONS.set(this.conn, this);
    this.conn.onIdleTimeout = ImapSession.#onIdleTimeout as (conn: never) => Promise<void> | undefined;
    this.conn.onShutdown = ImapSession.#onShutdown as (conn: never) => Promise<void> | undefined;
    let serving = false;
    try {
      await connectSession(this.app, ctx);
      if (this.conn.refused) {
        this.endsFor('refused');
        await this.#bye('Too many connections from your address');
        return;
      }
      this.#attach();
      await this.#writeNow(`${statusLine('*', 'OK', `CAPABILITY ${(await this.capabilities(ctx)).join(' ')}`, 'WildDuck ready')}\r\n`);
      serving = true;
    } catch (err) {
      this.#failed(err);
    } finally {
      if (!serving) await this.#close();
    }
    if (serving) void this.#serve(null);
  }

  /** The command loop, from the start or after a parked command completed (`resumed`). */
  async #serve(resumed: { parked: ParkedCommand; outcome: Outcome | null } | null): Promise<void> {
    let parked = false;
    try {
      if (resumed) {
        const { command, ctx, spec, started } = resumed.parked;
        try {
          if (resumed.outcome) await this.#complete(command, ctx, spec, resumed.outcome, started);
        } finally {
          this.#running = false;
          await resumed.parked.release();
        }
        if (this.#notifier?.due) this.pushUnsolicited();
        await this.slice.pause();
      }
      while (!this.closing && this.state !== 'logout') {
        const read = await this.reader.readCommand();
        if (read.type === 'end') break;
        if (read.type === 'reject') {
          await this.#rejected(read);
          continue;
        }
        try {
          parked = await this.execute(read.command, read.release);
        } finally {
          if (!parked) await read.release();
        }
        if (parked) return;
        // pipelined commands run back to back without touching the event loop otherwise
        await this.slice.pause();
      }
    } catch (err) {
      this.#failed(err);
    } finally {
      if (!parked) await this.#close();
    }
  }

  /** A parked command settled: its tagged reply, then the loop again. */
  #resume(outcome: Outcome | null, err?: unknown): void {
    const parked = this.#parked!;
    this.#parked = null;
    this.#running = true; // until the loop reads the next command (#serve clears it)
    // an error while the session is going away gets no tagged reply (as in execute)
    void this.#serve({ parked, outcome: outcome ?? this.#commandError(err, parked.ctx, parked.command) });
  }

  #failed(err: unknown): void {
    if (err instanceof InputEndedError) {
      this.endsFor('client-closed');
      this.log.info('connection closed inside a literal');
    } else if (!this.closing) {
      this.endsFor('error');
      this.log.error('session failed', { err });
    }
  }

  /** The end of the session, once: the connection's slot and counters given back, close taps, socket closed. */
  async #close(): Promise<void> {
    const ended = this.#ended;
    if (!ended) return;
    this.#ended = null;
    try {
      this.#closing = true;
      this.#budget.stop();
      this.selected?.close();
      this.selected = null;
      this.#watcher = null;
      this.setNotifier(null);
      await this.flush().catch(() => {});
      if (this.#connectionKey) await this.app.storage.ephemeral.release(this.#connectionKey, 1).catch(() => {});
      const reason = this.#closeReason ?? (this.state === 'logout' ? 'quit' : 'client-closed');
      await closeSession(this.app, this.#ctx!, reason).catch((err) => this.log.error('session close failed', { err }));
      await this.conn.close();
    } finally {
      ended();
    }
  }

  async #bye(text: string): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.send(`* BYE ${text}`);
    await this.flush().catch(() => {});
  }

  /** BYE and close (after the current response); `reason` goes to the `connection closed` line. */
  async disconnect(text: string, reason: CloseReason = 'disconnect'): Promise<void> {
    this.endsFor(reason);
    await this.#bye(text);
    this.#input.end();
  }

  async #rejected(read: Extract<Awaited<ReturnType<CommandReader['readCommand']>>, { type: 'reject' }>): Promise<void> {
    this.send(statusLine(read.tag ?? '*', read.status, read.code, read.text));
    reportCommand(this.app, createContext(this.session), 'imap', { verb: read.verb ?? '?', status: read.status, ok: false, code: read.code, ms: 0 });
    if (read.status === 'BAD') this.#bad++;
    if (read.close) await this.disconnect('Closing connection', 'too-many-errors');
    else if (this.#bad >= this.app.config.imap.maxBadCommands) await this.disconnect('Too many bad commands', 'too-many-errors');
    await this.flush();
  }

  /**
   * Checks, gates and runs one command, then writes its tagged response. A command that waits for the client
   * (`waits`, IDLE) is parked instead when `release` is given: this returns true at once, and the command's
   * completion writes the tagged response and continues the command loop (`#resume`), then calls `release`.
   */
  async execute(command: ImapCommand, release?: () => Promise<void>): Promise<boolean> {
    while (this.#pushing) await this.#pushing;
    this.#running = true;
    try {
      return await this.#execute(command, release);
    } finally {
      this.#running = false;
      // NOTIFY: what arrived after the command's last look goes out now, not with the next command
      if (this.#notifier && !this.#parked) this.pushUnsolicited();
    }
  }

  async #execute(command: ImapCommand, release?: () => Promise<void>): Promise<boolean> {
    const started = Date.now();
    const ctx = createContext(this.session, { command: command.verb });
    const spec = COMMANDS.get(command.verb);
    let outcome: Outcome;
    try {
      if (!spec) {
        outcome = (await this.#pluginCommand(ctx, command, command.args)) ?? bad(`Unknown command ${command.verb.slice(0, 40)}`);
      } else if (!spec.states.includes(this.state)) {
        outcome = bad(wrongState(this.state, spec.states));
      } else {
        const args = new Args(command.args);
        const parsed = spec.parse(args, this);
        const builtin = (args: unknown) => spec.run(this, args, ctx, command);
        const gated = await this.#pluginCommand(ctx, command, parsed, builtin);
        if (gated) outcome = gated;
        else if (spec.waits && release) {
          const pending = spec.run(this, parsed, ctx, command);
          this.#parked = { command, ctx, spec, started, release };
          pending.then(
            (outcome) => this.#resume(outcome),
            (err: unknown) => this.#resume(null, err),
          );
          return true;
        } else outcome = await spec.run(this, parsed, ctx, command);
      }
    } catch (err) {
      const failed = this.#commandError(err, ctx, command);
      if (failed === null) return false;
      outcome = failed;
    }
    await this.#complete(command, ctx, spec, outcome, started);
    return false;
  }

  /** A command's error as its outcome (BAD for syntax, else logged and a server error); null when closing. */
  #commandError(err: unknown, ctx: HookContext, command: ImapCommand): Outcome | null {
    if (err instanceof ImapSyntaxError) return err.status === 'NO' ? no(err.message, err.code) : bad(err.message, err.code);
    if (err instanceof StorageError && err.code === 'UNAVAILABLE') {
      // the database or Redis is out of reach: a temporary failure the client retries, the server recovers by itself
      ctx.log.warn('command failed: storage unavailable', { err: err.message, command: command.verb });
      return this.closing ? null : no('Service temporarily unavailable, try again later', 'UNAVAILABLE');
    }
    ctx.log.error('command failed', { err, command: command.verb });
    return this.closing ? null : SERVER_ERROR;
  }

  /** After a command ran: mailbox changes, the tagged response, the command's report, then its `after` step. */
  async #complete(command: ImapCommand, ctx: HookContext, spec: CommandSpec | undefined, outcome: Outcome, started: number): Promise<void> {
    if (((this.state === 'selected' && this.selected) || this.#notifier) && !this.closing) {
      try {
        await this.notify(spec?.expunge ?? outcome.expunge ?? true);
      } catch (err) {
        ctx.log.error('could not read mailbox changes', { err });
      }
    }
    this.send(statusLine(command.tag, outcome.status, outcome.code, outcome.text));
    if (outcome.status === 'BAD') this.#bad++;
    else this.#bad = 0;
    reportCommand(this.app, ctx, 'imap', { verb: command.verb, status: outcome.status, ok: outcome.status === 'OK', code: outcome.code, ms: Date.now() - started });
    if (outcome.close) await this.disconnect('Closing connection');
    else if (this.#bad >= this.app.config.imap.maxBadCommands) await this.disconnect('Too many bad commands', 'too-many-errors');
    else if (this.selected?.deleted) await this.disconnect('Selected mailbox was deleted');
    // while pipelined input waits, replies are held: they go out together once the reader waits (FlowControl.waiting)
    if (outcome.after || this.closing || this.#input.buffered === 0) await this.flush();
    if (outcome.after && !this.closing) {
      try {
        await outcome.after();
      } catch (err) {
        ctx.log.info('connection lost after command', { err: (err as Error).message });
        await this.disconnect('Closing connection', 'client-closed');
      }
    }
  }

  /**
   * The command gate; a plugin's own answer (or refusal) as an Outcome, or null to run the built-in handler.
   * The input is an `ImapCommandInput` (hooks/imap.ts): besides verb, tag and args it carries the session's
   * UTF8=ACCEPT state and, for built-in verbs, `next(args)`, which runs the built-in handler with (possibly
   * changed) parsed arguments and hands its untagged lines and tagged result back to the plugin instead of
   * writing them, so a plugin can extend a command's answer (LIST-STATUS adds STATUS after LIST lines).
   */
  async #pluginCommand(ctx: HookContext, command: ImapCommand, args: unknown, builtin?: (args: unknown) => Promise<Outcome>): Promise<Outcome | null> {
    const next = builtin
      ? async (changed?: unknown): Promise<ImapCommandOutput> => {
          if (this.#capture) throw new Error('next() is already running');
          const collected: string[] = [];
          this.#capture = collected;
          try {
            const outcome = await builtin(changed === undefined ? args : changed);
            return { untagged: collected, status: outcome.status, code: outcome.code ?? null, text: outcome.text };
          } finally {
            this.#capture = null;
          }
        }
      : undefined;
    const selected = selectedForPlugins(this);
    const input: ImapCommandInput = { verb: command.verb, tag: command.tag, args, utf8: this.utf8, ...(next ? { next } : {}), ...(selected ? { selected } : {}) };
    const gate = await runCommand(this.app, 'imap', ctx, input);
    if (!gate.ok) return verdictOutcome(gate.verdict);
    if (!gate.value) return null;
    return this.#pluginResult(gate.value);
  }

  #pluginResult(result: CommandResult): Outcome {
    const untagged = Array.isArray(result.untagged) ? result.untagged : [];
    // one response per entry: stray CR/LF become spaces, literals announced as {n} CRLF are kept
    for (const line of untagged) if (typeof line === 'string') this.send(line.replace(/(\{\d+\}\r\n)|[\r\n]+/g, (_m, lit?: string) => lit ?? ' '));
    const status: Status = result.status === 'NO' || result.status === 'BAD' ? result.status : 'OK';
    const code = typeof result.code === 'string' ? result.code : null;
    return { status, code, text: typeof result.text === 'string' ? result.text : 'Completed', ...(result.expunge === false ? { expunge: false } : {}) };
  }

  // --- authentication -------------------------------------------------------------------------------------

  async login(ctx: HookContext, username: string, password: string, method: string): Promise<Outcome> {
    if (!this.plaintextAllowed) return no('Plaintext authentication is not allowed on an unencrypted connection', 'PRIVACYREQUIRED');
    const result = await authenticate(this.app, ctx, { username, password, method });
    if (!result.ok) return verdictOutcome(result.verdict);
    if (!(await this.#countConnection(result.value.id))) {
      this.session.user = null;
      return no('Too many connections for this user', 'LIMIT');
    }
    this.state = 'authenticated';
    this.restoreIdleTimeout();
    return ok(`${result.value.username} authenticated`, `CAPABILITY ${(await this.capabilities(ctx)).join(' ')}`);
  }

  /**
   * UNAUTHENTICATE (RFC 8437): the session goes back to not authenticated as if the connection were new, TLS kept.
   * The selected mailbox is closed without expunge, the place in the user's connection count given back, ENABLEd
   * extensions reset, plugins' per-session data dropped, the user taken off the session (and its log lines), and the
   * shorter pre-login idle timeout applies again.
   */
  async unauthenticate(): Promise<void> {
    this.deselect();
    this.#watcher = null;
    this.setNotifier(null);
    this.#enabled = null;
    this.session.data.clear();
    this.session.user = null;
    this.state = 'not-authenticated';
    this.conn.usePreAuthIdleTimeout?.();
    const key = this.#connectionKey;
    this.#connectionKey = null;
    // as at the end of a session: a store out of reach keeps the place until the counter's expiry
    if (key) await this.app.storage.ephemeral.release(key, 1).catch((err: unknown) => this.log.warn('could not give back the connection slot', { err }));
  }

  /** After `OK Begin TLS negotiation now` is written: plaintext pipelined after STARTTLS is dropped. */
  /**
   * imap.maxConnectionsPerUser, counted in the ephemeral store (so across server instances with Redis). The
   * counter carries a day's expiry so a crashed instance's sessions are forgotten eventually.
   */
  async #countConnection(userId: string): Promise<boolean> {
    const key = `imap:connections:${userId}`;
    const ephemeral = this.app.storage.ephemeral;
    // a reservation, not incr/decr: atomic, and given back by the primary when a worker process dies
    if ((await ephemeral.reserve([{ key, limit: this.app.config.imap.maxConnectionsPerUser }], 24 * 3600 * 1000)) >= 0) return false;
    this.#connectionKey = key;
    return true;
  }

  /** The per-user connection counter this session holds a place in (released when it ends). */
  #connectionKey: string | null = null;

  async startTls(): Promise<void> {
    await this.conn.upgradeToTls();
    this.#input.clear();
    this.#attach();
    this.conn.socket.resume();
  }

  // --- the selected mailbox -------------------------------------------------------------------------------

  /** Leaves the selected mailbox (CLOSE, UNSELECT, a failed SELECT). */
  deselect(): void {
    this.searches.reset();
    this.selected?.close();
    this.selected = null;
    if (this.state === 'selected') this.state = 'authenticated';
  }

  async open(mailbox: Parameters<typeof SelectedMailbox.open>[2], readOnly: boolean): Promise<SelectedMailbox> {
    this.deselect();
    const view = await SelectedMailbox.open(this.app.indexes, this.app.storage, mailbox, readOnly, this, !this.rev2);
    this.selected = view;
    this.state = 'selected';
    return view;
  }

  /**
   * Reads other sessions' changes and writes what may be told now (`expunge`: EXPUNGE allowed): the selected
   * mailbox's (unless `selected` is false), then what NOTIFY asked for about other mailboxes.
   */
  async notify(expunge: boolean, force = false, selected = true): Promise<void> {
    const view = this.selected;
    if (view && selected) {
      const before = view.announced;
      await view.sync(force);
      for (const line of await view.flush({ expunge, condstore: this.condstore, vanished: this.isEnabled('QRESYNC') })) this.send(line);
      for (const line of await this.searches.updates(view, this.app.storage)) this.send(line);
      if (this.#notifier && view.announced > before) await this.#notifier.newMessages(before, view.announced);
    }
    if (this.#notifier?.due) await this.#notifier.deliver();
  }

  /** Replaces the NOTIFY notifier (null: NOTIFY NONE, or the session ends). */
  setNotifier(notifier: Notifier | null): void {
    this.#notifier?.close();
    this.#notifier = notifier;
  }

  /**
   * NOTIFY: changes are due. Pushed now when no command runs (an IDLE command pushes them itself), else after the
   * running command, before its tagged reply. Between commands EXPUNGE may go out too (RFC 5465 §5.3), except for
   * `selected-delayed`.
   */
  pushUnsolicited(): void {
    if (this.#parked) {
      this.#watcher?.indexChanged();
      return;
    }
    if (this.#running || this.#pushing || this.closing || !this.#notifier) return;
    this.#pushing = this.#push().finally(() => {
      this.#pushing = null;
    });
  }

  async #push(): Promise<void> {
    try {
      // again while more arrived during a round (a bounded number of times: the next command reads the rest)
      for (let round = 0; round < 8; round++) {
        const notifier = this.#notifier;
        if (this.#running || this.closing || !notifier) return;
        const group = notifier.selectedGroup();
        const view = group ? this.selected : null;
        if (!notifier.due && !view?.dirty) return;
        const delayed = group?.filter.kind === 'selected' && group.filter.delayed;
        await this.notify(!delayed, false, view !== null);
        await this.flush();
      }
    } catch (err) {
      this.log.error('could not push notifications', { err });
    }
  }

  /** Runs a built-in command's handler with parsed arguments (NOTIFY's MessageNew fetch attributes: UID FETCH). */
  async runBuiltin(verb: string, parsed: unknown, ctx: HookContext): Promise<Outcome> {
    const spec = COMMANDS.get(verb);
    if (!spec) throw new Error(`no built-in command ${verb}`);
    return spec.run(this, parsed, ctx, { tag: '*', verb, args: [] });
  }

  /** Tells `watcher` whenever the selected mailbox's index applied changes (IDLE), until `watchChanges(null)`. */
  watchChanges(watcher: ChangeWatcher | null): void {
    this.#watcher = watcher;
  }

  /** The selected mailbox's index applied changes (ChangeWatcher). */
  indexChanged(): void {
    if (this.#watcher) this.#watcher.indexChanged();
    else if (this.#notifier?.selectedGroup()) this.pushUnsolicited();
  }

  /** EXPUNGE responses are about to be written (ChangeWatcher): live searches' REMOVEFROM go first. */
  expungesTold(messages: ReadonlyArray<{ uid: number; seq: number }>): void {
    for (const line of this.searches.expunged(messages)) this.send(line);
  }
}

function wrongState(state: ImapState, allowed: readonly ImapState[]): string {
  if (state === 'logout') return 'Logging out';
  if (state === 'not-authenticated') return 'Log in first';
  if (allowed.includes('not-authenticated')) return 'Already authenticated';
  return 'No mailbox selected';
}

/**
 * The input buffer's flow control for one session: pause and resume the socket, and when the reader waits for
 * the client, write the replies held for pipelined commands. A class, not an object of closures: idle sessions
 * are many.
 */
class SessionFlow implements FlowControl {
  readonly socket: Duplex;
  readonly session: ImapSession;
  constructor(socket: Duplex, session: ImapSession) {
    this.socket = socket;
    this.session = session;
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  waiting(): void {
    this.session.flush().catch(() => {});
  }
}
