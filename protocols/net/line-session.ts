/**
 * The connection loop POP3 and LMTP share: greeting, one command line at a time through the protocol's
 * `command()`, the BAD counter, too-long lines, the per-IP refusal, idle and shutdown goodbyes, session
 * hooks (connectSession / closeSession) and the write path. Each protocol supplies its wording and its
 * commands; IMAP has its own reader (literals) and session.
 */
import type { Duplex } from 'node:stream';
import { createContext, createSession } from '../../hooks/context.ts';
import type { HookContext, Protocol, Session } from '../../hooks/context.ts';
import { closeSession, connectSession, runCommand } from '../../hooks/pipeline/index.ts';
import type { CloseReason } from '../../hooks/pipeline/index.ts';
import type { Verdict } from '../../hooks/verdict.ts';
import type { PipelineApp } from '../../hooks/pipeline/index.ts';
import type { ClientConnection } from './client-connection.ts';
import { LineReader, writeTo } from './line-reader.ts';
import { CommandBudget } from './command-budget.ts';
import { TimeSlice } from '../../storage/time-slice.ts';

/** The protocol's words for the moments the loop handles. */
export interface LineWording {
  greeting: string;
  /** To a client over the per-IP connection limit; the listener closes afterwards. */
  refused: string;
  tooLong: string;
  /** A command (line or LMTP DATA) not received within its budget (commandTimeoutSeconds, minBytesPerSecond). */
  commandTimeout: string;
  tooManyErrors: string;
  internalError: string;
  /** Sent at shutdown only while waiting for a command, so no response is cut in two. */
  shutdown: string;
  /** Sent when the idle timer fires; null closes without a word (POP3 autologout, RFC 1939 §3). */
  idle: string | null;
  /** The reply when a plugin implemented a command without saying what to answer. */
  pluginOk: string;
  /** A verdict as this protocol's reply line. */
  verdict(verdict: Verdict): string;
  /** A plugin's own reply text, made safe for one reply line. */
  pluginReply(text: string): string;
}

export abstract class LineSession {
  readonly app: PipelineApp;
  readonly conn: ClientConnection;
  readonly session: Session;
  readonly reader: LineReader;
  socket: Duplex;
  secure: boolean;
  badCommands = 0;
  closed = false;
  /** Waiting for the next command line (a goodbye may be written now without splitting a response). */
  waiting = false;
  /** Pipelined commands run back to back; the loop yields between slices so other sessions get their turn. */
  readonly slice = new TimeSlice();
  readonly #maxBadCommands: number;
  readonly #protocol: Extract<Protocol, 'pop3' | 'lmtp'>;
  /** The socket corked while replies to pipelined commands are held back (reply()). */
  #corked: Duplex | null = null;
  /** Why the session ends, for its `connection closed` line: the first reason given wins (`endsFor`). */
  #closeReason: CloseReason | null = null;

  constructor(app: PipelineApp, conn: ClientConnection, protocol: Extract<Protocol, 'pop3' | 'lmtp'>) {
    this.app = app;
    this.conn = conn;
    this.socket = conn.socket;
    this.secure = conn.secure;
    this.session = createSession(app.log, { protocol, id: conn.id, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort ?? null });
    const section = app.config[protocol];
    const budget = new CommandBudget({
      timeoutMs: section.commandTimeoutSeconds * 1000,
      minBytesPerSecond: section.minBytesPerSecond,
      onExpire: () => void this.#commandTimedOut(),
    });
    this.reader = new LineReader(conn.socket, { maxLineLength: section.maxLineLength, budget, beforeWait: () => this.#flush() });
    this.#maxBadCommands = app.config[protocol].maxBadCommands;
    this.#protocol = protocol;
  }

  protected abstract readonly wording: LineWording;
  /** One command line (dispatch and report). */
  abstract command(text: string): Promise<void>;
  /** Remembers the status of a reply being written (for the command report). */
  protected noteReply(_text: string): void {}
  /** Runs when the connection ends, before closeSession (POP3 releases its maildrop). */
  protected async onEnd(): Promise<void> {}

  context(): HookContext {
    return createContext(this.session);
  }

  /**
   * Writes one reply. While pipelined commands wait in the reader, replies are held (socket corked) and go out
   * together with the reply to the last of them, or when the reader waits for input: one write instead of one per
   * command (MAIL, RCPT, DATA's 354).
   */
  async reply(text: string): Promise<void> {
    this.noteReply(text);
    if (this.closed) return;
    const pipelined = this.reader.buffered > 0;
    if (pipelined && !this.#corked) {
      this.socket.cork();
      this.#corked = this.socket;
    }
    try {
      await writeTo(this.socket, text.endsWith('\r\n') ? text : `${text}\r\n`);
    } catch {
      this.closed = true;
    }
    if (!pipelined) this.#flush();
  }

  /** Sends the replies held back for pipelined commands. */
  #flush(): void {
    const socket = this.#corked;
    this.#corked = null;
    if (socket?.writableCorked) socket.uncork();
  }

  /** Closes the connection; `reason` (when this is the first one given) goes to the `connection closed` line. */
  close(reason?: CloseReason): void {
    if (reason) this.endsFor(reason);
    this.#flush();
    this.closed = true;
    this.conn.close();
  }

  /** Records why the session is ending (the first reason given wins). */
  endsFor(reason: CloseReason): void {
    this.#closeReason ??= reason;
  }

  /** A slow writer: say so, stop reading (the pending read ends) and close. */
  async #commandTimedOut(): Promise<void> {
    this.session.log.info('command timeout: a command took too long to arrive, closing');
    this.endsFor('command-timeout');
    this.reader.end();
    await this.reply(this.wording.commandTimeout);
    this.close();
  }

  /** After login: the authenticated idle timeout replaces the (shorter) pre-auth one. */
  authenticated(): void {
    this.conn.useAuthenticatedIdleTimeout?.();
  }

  async bad(reply: string): Promise<void> {
    this.badCommands++;
    if (this.badCommands >= this.#maxBadCommands) {
      this.endsFor('too-many-errors');
      await this.reply(this.wording.tooManyErrors);
      this.close();
      return;
    }
    await this.reply(reply);
  }

  /**
   * The `<protocol>.command` gate (hooks/pipeline runCommand): true when a plugin refused or answered the
   * command and the reply is written; false when the built-in handler should run.
   */
  async gate(verb: string, args: unknown): Promise<boolean> {
    const gate = await runCommand(this.app, this.#protocol, this.context(), { verb, args });
    if (!gate.ok) {
      await this.reply(this.wording.verdict(gate.verdict));
      if (gate.verdict.action === 'disconnect') this.close('disconnect');
      return true;
    }
    if (!gate.value) return false;
    const reply = gate.value.reply;
    await this.reply(typeof reply === 'string' ? this.wording.pluginReply(reply) : this.wording.pluginOk);
    return true;
  }

  async run(): Promise<void> {
    const words = this.wording;
    if (this.conn.refused) {
      this.reader.detach();
      await this.reply(words.refused);
      return;
    }
    // the listener closes the connection after either notice
    this.conn.onIdleTimeout = async () => {
      this.endsFor('idle-timeout');
      if (words.idle) await this.reply(words.idle);
      else this.session.log.info('autologout: idle timeout, closing');
      this.closed = true;
    };
    this.conn.onShutdown = async () => {
      this.endsFor('shutdown');
      if (this.waiting) await this.reply(words.shutdown);
      this.closed = true;
    };
    let connected = false;
    try {
      await connectSession(this.app, this.context());
      connected = true;
      await this.reply(words.greeting);
      while (!this.closed) {
        this.waiting = true;
        const line = await this.reader.readLine();
        this.waiting = false;
        if (line === null) break;
        if (line.kind === 'toolong') await this.bad(words.tooLong);
        else await this.command(line.text);
        await this.slice.pause();
      }
    } catch (err) {
      this.endsFor('error');
      this.session.log.error('session failed', { err });
      await this.reply(words.internalError);
    } finally {
      this.waiting = false;
      this.reader.detach();
      await this.onEnd();
      // a loop that ended with no reason given: the client closed the connection
      if (connected) await closeSession(this.app, this.context(), this.#closeReason ?? 'client-closed');
      if (!this.closed) this.close();
    }
  }
}
