/**
 * LMTP (RFC 2033): how an MTA (Postfix, Exim, Haraka) hands mail to us. Loopback-only by default.
 *
 *   220 greeting
 *   LHLO        capabilities: PIPELINING ENHANCEDSTATUSCODES 8BITMIME SMTPUTF8 SIZE [STARTTLS]
 *   MAIL FROM   SIZE (refused early when over limits.maxMessageSize), BODY=7BIT|8BITMIME, SMTPUTF8
 *   RCPT TO     resolveRecipient: unknown users get 550 5.1.1 here, before any bytes
 *   DATA        354, then the message is unstuffed into a spool (size enforced while reading: 552 5.3.4),
 *               then deliverMessage, and one reply per accepted recipient, each sent once that copy is durable
 *               (the pipeline logs one `delivery` line per recipient, RCPT-time refusals included)
 *   RSET NOOP VRFY QUIT STARTTLS
 *   listeners   lmtp.port (STARTTLS offered when TLS material is loaded) and lmtp.tlsPort (implicit TLS) when set,
 *               on the shared TCP listener (protocols/net/listener.ts): PROXY protocol, per-IP limit (421 4.7.0),
 *               idle timer (421 4.4.2), shutdown (421 4.3.2)
 *
 * Every command passes the command table (state, syntax), then the `lmtp.command` gate, then its handler; verdicts
 * become replies in protocols/lmtp/replies.ts.
 */
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { deliverMessage, listCapabilities, reportCommand, resolveRecipient } from '../hooks/pipeline/index.ts';
import type { DeliveryOutcome, PipelineApp } from '../hooks/pipeline/index.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { Spool } from '../storage/spool.ts';
import type { ClientConnection } from './net/client-connection.ts';
import { canStartTls, upgradeConnection } from './net/client-connection.ts';
import { LineSession } from './net/line-session.ts';
import type { LineWording } from './net/line-session.ts';
import { startProtocolListeners } from './net/listener.ts';
import type { SharedSlots, TcpListener } from './net/listener.ts';
import type { TlsMaterial } from './net/tls.ts';
import { receiveData } from './lmtp/data.ts';
import { multiline, replyText, verdictReply } from './lmtp/replies.ts';
import { parsePath, splitCommand } from './lmtp/syntax.ts';

export interface LmtpOptions {
  /** Name in the greeting and the LHLO reply; default the host name. */
  readonly hostname?: string;
  /** Connection counts shared with the other worker processes (protocols/net/listener.ts SharedSlots). */
  readonly shared?: SharedSlots | null;
}

interface Command {
  /** Only after LHLO. */
  readonly needsLhlo: boolean;
  run(session: LmtpSession, rest: string): Promise<void>;
}

function localHostname(): string {
  try {
    return osHostname() || 'localhost';
  } catch {
    return 'localhost'; // Deno without --allow-sys=hostname
  }
}

/** Serves one LMTP connection until QUIT, disconnect or idle timeout. Never throws. */
export async function serveLmtp(app: PipelineApp, conn: ClientConnection, options: LmtpOptions = {}): Promise<void> {
  await new LmtpSession(app, conn, options.hostname ?? localHostname()).run();
}

/**
 * Starts the LMTP listeners: `lmtp.port` (plaintext, STARTTLS offered in the LHLO reply when `tls` is given) and
 * `lmtp.tlsPort` (implicit TLS) when set. `tls` is loaded once for every protocol by startListeners.
 */
export function startLmtp(app: PipelineApp, tls: TlsMaterial | null, options: LmtpOptions = {}): Promise<TcpListener[]> {
  const hostname = options.hostname ?? localHostname();
  return startProtocolListeners('lmtp', app.config.lmtp, tls, app.log, (conn) => serveLmtp(app, conn, { hostname }), options.shared ?? null);
}

class LmtpSession extends LineSession {
  readonly hostname: string;
  lhlo: string | null = null;
  from: string | null = null;
  recipients: DeliveryRecipient[] = [];
  protected readonly wording: LineWording;

  constructor(app: PipelineApp, conn: ClientConnection, hostname: string) {
    super(app, conn, 'lmtp');
    this.hostname = hostname;
    // an idle client may be stalled mid-DATA, where RFC 5321 §4.5.3.2 allows the 421 too
    this.wording = {
      greeting: `220 ${hostname} LMTP ready`,
      refused: '421 4.7.0 Too many connections, try again later',
      tooLong: '500 5.5.2 Line too long',
      commandTimeout: '421 4.4.2 Command not received in time, closing connection',
      tooManyErrors: '421 4.7.0 Too many errors, closing connection',
      internalError: '421 4.3.0 Internal error, closing connection',
      shutdown: '421 4.3.2 Service shutting down, closing connection',
      idle: '421 4.4.2 Idle timeout, closing connection',
      pluginOk: '250 2.0.0 OK',
      verdict: verdictReply,
      pluginReply: replyText,
    };
  }

  get config() {
    return this.app.config;
  }

  /** The last reply line written: the current command's answer for its report. */
  lastReply = '';

  protected override noteReply(text: string): void {
    this.lastReply = text.replace(/\r\n$/, '').split('\r\n').pop()!;
  }

  resetTransaction(): void {
    this.from = null;
    this.recipients = [];
  }

  async command(text: string): Promise<void> {
    const started = performance.now();
    this.lastReply = '';
    try {
      await this.dispatch(text);
    } finally {
      const status = /^\d{3}/.exec(this.lastReply)?.[0] ?? '000';
      const ok = status[0] === '2' || status[0] === '3';
      const code = ok ? null : (/^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})/.exec(this.lastReply)?.[1] ?? null);
      reportCommand(this.app, this.context(), 'lmtp', { verb: splitCommand(text).verb, status, ok, code, ms: performance.now() - started });
    }
  }

  async dispatch(text: string): Promise<void> {
    const { verb, rest } = splitCommand(text);
    const command = COMMANDS[verb];
    if (command?.needsLhlo && this.lhlo === null) {
      await this.bad('503 5.5.1 Send LHLO first');
      return;
    }
    // the gate runs for unknown verbs too, so a plugin can implement a new one
    if (await this.gate(verb, rest)) return;
    if (!command) {
      await this.bad(verb === 'HELO' || verb === 'EHLO' ? '500 5.5.1 This is LMTP: use LHLO' : '500 5.5.2 Command unrecognized');
      return;
    }
    await command.run(this, rest);
  }

  async capabilities(): Promise<string[]> {
    const base = ['PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME', 'SMTPUTF8', `SIZE ${this.config.limits.maxMessageSize}`];
    if (!this.secure && canStartTls(this.conn)) base.push('STARTTLS');
    return listCapabilities(this.app, 'lmtp', this.context(), base);
  }

  async data(rest: string): Promise<void> {
    if (rest.trim()) return this.bad('501 5.5.4 DATA takes no arguments');
    if (this.from === null) return this.bad('503 5.5.1 Need MAIL command first');
    if (this.recipients.length === 0) return this.bad('503 5.5.1 No valid recipients');
    await this.reply('354 Start mail input; end with <CRLF>.<CRLF>');
    const spool = new Spool({ dir: join(resolve(this.config.dataDir), 'spool'), memoryLimit: this.config.limits.spoolMemoryBytes });
    const recipients = this.recipients;
    const from = this.from;
    this.resetTransaction();
    try {
      const status = await receiveData(this.reader, spool, this.config.limits.maxMessageSize);
      if (status === 'eof') {
        this.session.log.info('client went away during DATA; nothing delivered', { recipients: recipients.length });
        this.endsFor('client-closed');
        this.closed = true;
        return;
      }
      if (status === 'toobig') {
        for (const _ of recipients) await this.reply(`552 5.3.4 Message exceeds the maximum size of ${this.config.limits.maxMessageSize} bytes`);
        return;
      }
      const ctx = this.context();
      await deliverMessage(this.app, ctx, {
        from,
        recipients,
        message: { size: spool.size, open: () => spool.open() },
        onOutcome: (_index, outcome) => this.reply(outcomeReply(outcome)),
      });
    } finally {
      // removed in the background: the next command need not wait for the file system (dispose never throws)
      void spool.dispose();
    }
  }

  async startTls(rest: string): Promise<void> {
    if (rest.trim()) return this.bad('501 5.5.4 STARTTLS takes no arguments');
    if (this.secure) return this.bad('503 5.5.1 TLS already active');
    if (!canStartTls(this.conn)) return this.bad('502 5.5.1 STARTTLS not available');
    await this.reply('220 2.0.0 Ready to start TLS');
    const socket = await upgradeConnection(this.conn, this.reader, this.session.log, 'STARTTLS');
    if (!socket) return this.close('disconnect');
    this.socket = socket;
    this.secure = true;
    this.lhlo = null;
    this.resetTransaction();
  }
}

function outcomeReply(outcome: DeliveryOutcome): string {
  const who = `<${replyText(outcome.recipient.address)}>`;
  if (!outcome.result.ok) return verdictReply(outcome.result.verdict);
  const result = outcome.result.value;
  if (result.duplicate) return `250 2.0.0 ${who} Already delivered`;
  if (!result.stored) return `250 2.0.0 ${who} Accepted`;
  return `250 2.0.0 ${who} Delivered (uid ${result.stored.uid})`;
}

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  LHLO: {
    needsLhlo: false,
    async run(s: LmtpSession, rest: string) {
      const name = rest.trim();
      if (!name || /\s/.test(name)) return s.bad('501 5.5.4 Syntax: LHLO hostname');
      s.lhlo = name;
      s.resetTransaction();
      await s.reply(multiline(250, [s.hostname, ...(await s.capabilities())]));
    },
  },
  MAIL: {
    needsLhlo: true,
    async run(s: LmtpSession, rest: string) {
      if (s.from !== null) return s.bad('503 5.5.1 Nested MAIL command');
      const parsed = parsePath('FROM', rest);
      if (!parsed.ok) return s.bad(parsed.reply);
      for (const [name, value] of parsed.value.params) {
        if (name === 'SIZE') {
          if (!/^\d{1,15}$/.test(value)) return s.bad('501 5.5.4 Invalid SIZE');
          if (Number(value) > s.config.limits.maxMessageSize) return s.reply('552 5.3.4 Message size exceeds the fixed maximum');
        } else if (name === 'BODY') {
          if (!/^(7BIT|8BITMIME)$/i.test(value)) return s.bad('555 5.5.4 Unsupported BODY type');
        } else if (name === 'SMTPUTF8') {
          if (value) return s.bad('501 5.5.4 SMTPUTF8 takes no value');
        } else if (name !== 'AUTH') {
          return s.bad(`555 5.5.4 Unsupported parameter ${name}`);
        }
      }
      s.from = parsed.value.address;
      await s.reply('250 2.1.0 Sender OK');
    },
  },
  RCPT: {
    needsLhlo: true,
    async run(s: LmtpSession, rest: string) {
      if (s.from === null) return s.bad('503 5.5.1 Need MAIL command first');
      const parsed = parsePath('TO', rest);
      if (!parsed.ok) return s.bad(parsed.reply);
      const param = [...parsed.value.params.keys()][0];
      if (param !== undefined) return s.bad(`555 5.5.4 Unsupported parameter ${param}`);
      if (s.recipients.length >= s.config.lmtp.maxRecipients) return s.reply('452 4.5.3 Too many recipients');
      const result = await resolveRecipient(s.app, s.context(), s.from, parsed.value.address);
      if (!result.ok) return s.reply(verdictReply(result.verdict));
      s.recipients.push(result.value);
      await s.reply('250 2.1.5 Recipient OK');
    },
  },
  DATA: { needsLhlo: true, run: (s: LmtpSession, rest: string) => s.data(rest) },
  RSET: {
    needsLhlo: false,
    async run(s: LmtpSession) {
      s.resetTransaction();
      await s.reply('250 2.0.0 OK');
    },
  },
  NOOP: { needsLhlo: false, run: (s: LmtpSession) => s.reply('250 2.0.0 OK') },
  VRFY: { needsLhlo: false, run: (s: LmtpSession) => s.reply('252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery') },
  QUIT: {
    needsLhlo: false,
    async run(s: LmtpSession) {
      await s.reply('221 2.0.0 Bye');
      s.close('quit');
    },
  },
  STARTTLS: { needsLhlo: true, run: (s: LmtpSession, rest: string) => s.startTls(rest) },
});
