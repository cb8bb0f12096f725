/**
 * POP3 (RFC 1939, CAPA RFC 2449, AUTH RFC 5034, STLS RFC 2595). Serves INBOX.
 *
 *   AUTHORIZATION   CAPA USER PASS AUTH(PLAIN) STLS QUIT
 *                   authenticate() (plaintext policy; failed-login limits are auth.beforeAuthenticate taps), then
 *                   the maildrop is locked (-ERR [IN-USE]) and snapshotted (newest pop3.maxMessages)
 *   TRANSACTION     STAT LIST UIDL RETR TOP DELE RSET NOOP CAPA QUIT
 *                   RETR/TOP stream from storage, dot-stuffed; DELE and RETR only mark the snapshot
 *   UPDATE (QUIT)   retrieved → \Seen, deleted → Trash or expunged (pop3.deleteMode), through the pipeline
 *
 *   listeners       pop3.port (plaintext, STLS offered) and pop3.tlsPort (implicit TLS) on the shared TCP listener
 *                   (protocols/net/listener.ts): PROXY protocol, per-IP limit (-ERR [SYS/TEMP]), idle timer, shutdown
 *
 * A dropped connection applies nothing, and neither does the autologout timer: RFC 1939 §3 has the server close
 * the connection without a response and without entering UPDATE. Every command passes the command table (state,
 * syntax), then the `pop3.command` gate, then its handler; verdicts become replies in protocols/pop3/replies.ts.
 */
import { authenticate, checkDownload, listCapabilities, reportCommand, reportDownload } from '../hooks/pipeline/index.ts';
import type { PipelineApp } from '../hooks/pipeline/index.ts';
import { serverVersion } from './net/version.ts';
import { plaintextAuthAllowed } from './net/auth-policy.ts';
import type { ClientConnection } from './net/client-connection.ts';
import { canStartTls, upgradeConnection } from './net/client-connection.ts';
import { dotStuff } from './net/dot-stuffing.ts';
import { writeTo } from './net/line-reader.ts';
import { LineSession } from './net/line-session.ts';
import type { LineWording } from './net/line-session.ts';
import { startProtocolListeners } from './net/listener.ts';
import type { SharedSlots, TcpListener } from './net/listener.ts';
import type { TlsMaterial } from './net/tls.ts';
import { Maildrop } from './pop3/maildrop.ts';
import { verdictReply, replyText } from './pop3/replies.ts';
import { counted, messageSource } from './pop3/retrieve.ts';
import type { RetrievedMessage } from './pop3/retrieve.ts';
import { decodePlain } from './pop3/sasl.ts';

type State = 'authorization' | 'transaction';

interface Command {
  readonly states: readonly State[];
  run(session: Pop3Session, args: string[]): Promise<void>;
}

/** Serves one POP3 connection until QUIT, disconnect or idle timeout. Never throws. */
export async function servePop3(app: PipelineApp, conn: ClientConnection): Promise<void> {
  await new Pop3Session(app, conn).run();
}

/**
 * Starts the POP3 listeners: `pop3.port` (plaintext, STLS offered when `tls` is given) and `pop3.tlsPort`
 * (implicit TLS, POP3S) when set. `tls` is loaded once for every protocol by startListeners.
 */
export function startPop3(app: PipelineApp, tls: TlsMaterial | null, shared: SharedSlots | null = null): Promise<TcpListener[]> {
  return startProtocolListeners('pop3', app.config.pop3, tls, app.log, (conn) => servePop3(app, conn), shared);
}

class Pop3Session extends LineSession {
  state: State = 'authorization';
  pendingUser: string | null = null;
  maildrop: Maildrop | null = null;
  /** The current command's argument text as sent (PASS takes it whole: passwords may contain spaces). */
  rawArgs = '';
  // autologout (RFC 1939 §3): no response and no UPDATE
  protected readonly wording: LineWording = {
    greeting: '+OK WildDuck POP3 ready',
    refused: '-ERR [SYS/TEMP] Too many connections, try again later',
    tooLong: '-ERR Line too long',
    commandTimeout: '-ERR Command not received in time, closing connection',
    tooManyErrors: '-ERR Too many errors, closing connection',
    internalError: '-ERR [SYS/TEMP] Internal error, closing connection',
    shutdown: '-ERR [SYS/TEMP] Server shutting down',
    idle: null,
    pluginOk: '+OK',
    verdict: verdictReply,
    pluginReply: replyText,
  };

  constructor(app: PipelineApp, conn: ClientConnection) {
    super(app, conn, 'pop3');
  }

  /** The last status line (`+OK` / `-ERR`) written: the current command's answer for its report. */
  lastStatus = '';

  protected override noteReply(text: string): void {
    if (text.startsWith('+OK') || text.startsWith('-ERR')) this.lastStatus = text;
  }

  /** A connection that ends without QUIT applies nothing (RFC 1939 §6): only the lock is released. */
  protected override async onEnd(): Promise<void> {
    await this.maildrop?.close();
  }

  /** One command line: dispatched, then reported (the `command` log line and metrics, hooks/pipeline). */
  async command(text: string): Promise<void> {
    const started = performance.now();
    this.lastStatus = '';
    try {
      await this.dispatch(text);
    } finally {
      const ok = this.lastStatus.startsWith('+OK');
      const code = ok ? null : (/^-ERR \[([^\]]+)\]/.exec(this.lastStatus)?.[1] ?? null);
      reportCommand(this.app, this.context(), 'pop3', { verb: text.split(' ', 1)[0]!, status: ok ? '+OK' : '-ERR', ok, code, ms: performance.now() - started });
    }
  }

  async dispatch(text: string): Promise<void> {
    const space = text.indexOf(' ');
    const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    this.rawArgs = space < 0 ? '' : text.slice(space + 1);
    const args = this.rawArgs.split(' ').filter(Boolean);
    const command = COMMANDS[verb];
    if (command && !command.states.includes(this.state)) return this.bad('-ERR Command not valid in this state');
    // the gate runs for unknown verbs too, so a plugin can implement a new one
    if (await this.gate(verb, args)) return;
    if (!command) return this.bad('-ERR Unknown command');
    await this.maildrop?.refresh();
    await command.run(this, args);
  }

  plaintextAllowed(): boolean {
    return plaintextAuthAllowed(this.app.config, { secure: this.secure, isLoopback: this.conn.isLoopback });
  }

  async capabilities(): Promise<string[]> {
    const base = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
    if (this.state === 'authorization') {
      if (this.plaintextAllowed()) base.push('USER', 'SASL PLAIN');
      if (!this.secure && canStartTls(this.conn)) base.push('STLS');
    }
    base.push(`IMPLEMENTATION WildDuck-ts ${serverVersion}`);
    return listCapabilities(this.app, 'pop3', this.context(), base);
  }

  /** authenticate(), then lock and snapshot the maildrop. */
  async login(username: string, password: string, method: string): Promise<void> {
    if (!this.plaintextAllowed()) return this.reply('-ERR [AUTH] Plaintext authentication needs an encrypted connection (use STLS)');
    const ctx = this.context();
    const result = await authenticate(this.app, ctx, { username, password, method });
    if (!result.ok) {
      await this.reply(verdictReply(result.verdict));
      if (result.verdict.action === 'disconnect') this.close('disconnect');
      return;
    }
    let drop: Awaited<ReturnType<typeof Maildrop.open>>;
    try {
      drop = await Maildrop.open(this.app, result.value.id);
    } catch (err) {
      this.session.log.error('could not open the maildrop', { err });
      this.session.user = null;
      return this.reply('-ERR [SYS/TEMP] Could not open the mailbox, try again later');
    }
    if (drop === 'inuse' || drop === 'nombox') {
      this.session.user = null;
      return this.reply(drop === 'inuse' ? '-ERR [IN-USE] Mailbox is in use by another POP3 session' : '-ERR [SYS/PERM] No INBOX');
    }
    this.maildrop = drop;
    this.state = 'transaction';
    this.authenticated();
    const live = drop.live();
    await this.reply(`+OK ${live.length} messages (${live.reduce((s, [, m]) => s + m.size, 0)} octets)`);
  }

  /** RETR n / TOP n lines. */
  async retrieve(args: string[], top: boolean): Promise<void> {
    const drop = this.maildrop!;
    if (args.length !== (top ? 2 : 1) || !args.every((a) => /^\d{1,9}$/.test(a))) return this.bad(`-ERR Syntax: ${top ? 'TOP msg n' : 'RETR msg'}`);
    const message = drop.get(Number(args[0]));
    if (!message) return this.reply('-ERR No such message');
    let retrieved: RetrievedMessage | null;
    try {
      retrieved = await messageSource(this.app, drop.mailbox.id, message.uid, top ? Number(args[1]) : undefined);
    } catch (err) {
      this.session.log.error('could not read a message', { err, uid: message.uid });
      return this.reply('-ERR [SYS/TEMP] Could not read the message, try again later');
    }
    if (!retrieved) return this.reply('-ERR Message was removed by another session');
    const ctx = this.context();
    const transfer = { userId: drop.mailbox.userId, protocol: 'pop3', bytes: retrieved.bytes };
    const refused = await checkDownload(this.app, ctx, transfer);
    if (refused) {
      await this.reply(verdictReply(refused));
      if (refused.action === 'disconnect') this.close('disconnect');
      return;
    }
    await this.reply(top ? '+OK' : `+OK ${message.size} octets`);
    let sent = 0;
    try {
      for await (const chunk of dotStuff(counted(retrieved.source, (n) => (sent += n)))) await writeTo(this.socket, chunk);
    } catch (err) {
      // mid-response the only honest thing left is to drop the connection
      this.session.log.warn('message stream failed mid-response', { err, uid: message.uid });
      this.close('disconnect');
      return;
    } finally {
      await reportDownload(this.app, ctx, { ...transfer, bytes: sent });
    }
    if (!top) message.retrieved = true;
  }

  async quit(): Promise<void> {
    if (this.state === 'authorization' || !this.maildrop) {
      await this.reply('+OK Bye');
      this.close('quit');
      return;
    }
    const drop = this.maildrop;
    // UPDATE state (RFC 1939): apply the deletions, release the maildrop lock, then answer, so a client that
    // reconnects the moment it reads the answer finds the maildrop free
    let answer: string;
    try {
      const outcome = await drop.update(this.context());
      answer = outcome.failures.length > 0
        ? `-ERR [SYS/TEMP] Some changes were not applied: ${replyText(outcome.failures[0]!.message)}`
        : `+OK Bye (${outcome.removed} messages removed)`;
    } finally {
      await drop.close();
      this.maildrop = null;
    }
    try {
      await this.reply(answer);
    } finally {
      this.close('quit');
    }
  }

  async startTls(args: string[]): Promise<void> {
    if (args.length > 0) return this.bad('-ERR STLS takes no arguments');
    if (this.secure) return this.bad('-ERR TLS already active');
    if (!canStartTls(this.conn)) return this.bad('-ERR STLS not available');
    await this.reply('+OK Begin TLS negotiation');
    const socket = await upgradeConnection(this.conn, this.reader, this.session.log, 'STLS');
    if (!socket) return this.close('disconnect');
    this.socket = socket;
    this.secure = true;
    this.pendingUser = null;
  }

  /** AUTH PLAIN [initial-response]; without one, asks with "+ " and reads one line ("*" cancels). */
  async auth(args: string[]): Promise<void> {
    const mechanism = (args[0] ?? '').toUpperCase();
    if (!mechanism) {
      await this.reply('+OK Supported mechanisms follow');
      if (this.plaintextAllowed()) await this.reply('PLAIN');
      return this.reply('.');
    }
    if (mechanism !== 'PLAIN') return this.bad('-ERR [AUTH] Unsupported authentication mechanism');
    if (!this.plaintextAllowed()) return this.reply('-ERR [AUTH] Plaintext authentication needs an encrypted connection (use STLS)');
    let response = args[1];
    if (response === undefined) {
      await this.reply('+ ');
      const line = await this.reader.readLine();
      if (line === null) return;
      if (line.kind === 'toolong') return this.bad('-ERR Line too long');
      response = line.text.trim();
      if (response === '*') return this.reply('-ERR Authentication cancelled');
    }
    if (response === '=') return this.bad('-ERR [AUTH] Invalid SASL PLAIN response');
    const decoded = decodePlain(response);
    if (!decoded.ok) return this.bad(`-ERR ${decoded.code ? `[${decoded.code}] ` : ''}${decoded.reason}`);
    await this.login(decoded.credentials.username, decoded.credentials.password, 'PLAIN');
  }
}

const ANY: readonly State[] = ['authorization', 'transaction'];
const AUTHORIZATION: readonly State[] = ['authorization'];
const TRANSACTION: readonly State[] = ['transaction'];

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  CAPA: {
    states: ANY,
    async run(s: Pop3Session) {
      await s.reply('+OK Capability list follows');
      for (const capability of await s.capabilities()) await s.reply(replyText(capability));
      await s.reply('.');
    },
  },
  USER: {
    states: AUTHORIZATION,
    async run(s: Pop3Session, args: string[]) {
      if (!s.plaintextAllowed()) return s.reply('-ERR [AUTH] Plaintext authentication needs an encrypted connection (use STLS)');
      const name = args.join(' ').trim();
      if (!name) return s.bad('-ERR Syntax: USER name');
      s.pendingUser = name;
      await s.reply('+OK Send PASS');
    },
  },
  PASS: {
    states: AUTHORIZATION,
    async run(s: Pop3Session) {
      const user = s.pendingUser;
      s.pendingUser = null;
      if (user === null) return s.bad('-ERR Send USER first');
      await s.login(user, s.rawArgs, 'USER');
    },
  },
  AUTH: { states: AUTHORIZATION, run: (s: Pop3Session, args: string[]) => s.auth(args) },
  STLS: { states: AUTHORIZATION, run: (s: Pop3Session, args: string[]) => s.startTls(args) },
  STAT: {
    states: TRANSACTION,
    async run(s: Pop3Session) {
      const live = s.maildrop!.live();
      await s.reply(`+OK ${live.length} ${live.reduce((sum, [, m]) => sum + m.size, 0)}`);
    },
  },
  LIST: {
    states: TRANSACTION,
    async run(s: Pop3Session, args: string[]) {
      const drop = s.maildrop!;
      if (args.length > 0) {
        const message = /^\d{1,9}$/.test(args[0]!) ? drop.get(Number(args[0])) : null;
        return s.reply(message ? `+OK ${args[0]} ${message.size}` : '-ERR No such message');
      }
      const live = drop.live();
      await s.reply(`+OK ${live.length} messages`);
      for (const [n, m] of live) await s.reply(`${n} ${m.size}`);
      await s.reply('.');
    },
  },
  UIDL: {
    states: TRANSACTION,
    async run(s: Pop3Session, args: string[]) {
      const drop = s.maildrop!;
      if (args.length > 0) {
        const message = /^\d{1,9}$/.test(args[0]!) ? drop.get(Number(args[0])) : null;
        return s.reply(message ? `+OK ${args[0]} ${message.uidl}` : '-ERR No such message');
      }
      await s.reply('+OK');
      for (const [n, m] of drop.live()) await s.reply(`${n} ${m.uidl}`);
      await s.reply('.');
    },
  },
  RETR: { states: TRANSACTION, run: (s: Pop3Session, args: string[]) => s.retrieve(args, false) },
  TOP: { states: TRANSACTION, run: (s: Pop3Session, args: string[]) => s.retrieve(args, true) },
  DELE: {
    states: TRANSACTION,
    async run(s: Pop3Session, args: string[]) {
      if (args.length !== 1 || !/^\d{1,9}$/.test(args[0]!)) return s.bad('-ERR Syntax: DELE msg');
      const message = s.maildrop!.get(Number(args[0]));
      if (!message) return s.reply('-ERR No such message');
      message.deleted = true;
      await s.reply(`+OK Message ${args[0]} deleted`);
    },
  },
  RSET: {
    states: TRANSACTION,
    async run(s: Pop3Session) {
      s.maildrop!.reset();
      await s.reply(`+OK ${s.maildrop!.live().length} messages`);
    },
  },
  NOOP: { states: TRANSACTION, run: (s: Pop3Session) => s.reply('+OK') },
  QUIT: { states: ANY, run: (s: Pop3Session) => s.quit() },
});
