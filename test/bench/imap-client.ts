/**
 * A minimal IMAP client for the bench, the same for both servers: raw TCP, commands may be pipelined (every
 * `command()` is written at once and resolves on its tagged reply), server literals are read by their byte
 * count, APPEND uses LITERAL+ when the server announces it and waits for the continuation otherwise.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  /** Untagged lines received while this command was the oldest one pending (literals replaced by `{N}`). */
  untagged: string[];
}

interface Pending {
  tag: string;
  untagged: string[];
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export class ImapClient {
  readonly socket: Socket;
  capabilities = '';
  private buf: Buffer = Buffer.alloc(0);
  private line = '';
  private literalLeft = 0;
  private pending: Pending[] = [];
  private continuation: Array<(line: string) => void> = [];
  private greeting: ((line: string) => void) | null = null;
  private seq = 0;
  private closed: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err?: Error) => this.fail(err ?? new Error('connection closed'));
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  /** Connects and reads the greeting (and the capabilities, from the greeting or a CAPABILITY command). */
  static async connect(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<ImapClient> {
    const socket = connect({ port, host });
    const client = new ImapClient(socket);
    const greeting = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no IMAP greeting')), timeoutMs);
      client.greeting = (l) => (clearTimeout(timer), resolve(l));
      socket.once('error', (e) => (clearTimeout(timer), reject(e)));
      socket.once('close', () => (clearTimeout(timer), reject(new Error('closed before the greeting'))));
    });
    const cap = /\[CAPABILITY ([^\]]*)\]/i.exec(greeting);
    client.capabilities = cap ? cap[1]! : (await client.command('CAPABILITY')).untagged.find((l) => /^\* CAPABILITY /i.test(l)) ?? '';
    return client;
  }

  get literalPlus(): boolean {
    return /\bLITERAL\+/i.test(this.capabilities);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = err;
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    while (pos < this.buf.length) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buf.length - pos);
        this.literalLeft -= take;
        pos += take;
        continue;
      }
      const end = this.buf.indexOf('\r\n', pos, 'latin1');
      if (end < 0) break;
      const part = this.buf.toString('latin1', pos, end);
      pos = end + 2;
      const lit = /\{(\d+)\}$/.exec(part);
      if (lit) {
        this.line += part;
        this.literalLeft = Number(lit[1]);
        continue;
      }
      const full = this.line + part;
      this.line = '';
      this.onLine(full);
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }

  private onLine(line: string): void {
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      g(line);
      return;
    }
    if (line.startsWith('+')) {
      this.continuation.shift()?.(line);
      return;
    }
    if (line.startsWith('*')) {
      this.pending[0]?.untagged.push(line);
      return;
    }
    const space = line.indexOf(' ');
    const tag = line.slice(0, space);
    const at = this.pending.findIndex((p) => p.tag === tag);
    if (at < 0) return;
    const [p] = this.pending.splice(at, 1);
    const m = /^(OK|NO|BAD)\b ?(.*)$/i.exec(line.slice(space + 1));
    p!.resolve({ status: (m?.[1]?.toUpperCase() ?? 'BAD') as Reply['status'], text: m?.[2] ?? line, untagged: p!.untagged });
  }

  private register(): { tag: string; done: Promise<Reply> } {
    const tag = `a${++this.seq}`;
    if (this.closed) return { tag, done: Promise.reject(this.closed) };
    const done = new Promise<Reply>((resolve, reject) => this.pending.push({ tag, untagged: [], resolve, reject }));
    return { tag, done };
  }

  /** Sends one command line (no CRLF) and resolves with its tagged reply; calls may be pipelined. */
  command(text: string): Promise<Reply> {
    const { tag, done } = this.register();
    this.socket.write(`${tag} ${text}\r\n`);
    return done;
  }

  /** Waits for a continuation request (`+ ...`) or for the command's tagged reply, whichever comes first. */
  private async continuationOr(done: Promise<Reply>): Promise<string | Reply> {
    let waiter!: (line: string) => void;
    const go = new Promise<string>((resolve) => this.continuation.push((waiter = resolve)));
    const first = await Promise.race([go, done]);
    if (typeof first !== 'string') this.continuation = this.continuation.filter((w) => w !== waiter);
    return first;
  }

  /** APPEND with one literal: non-synchronizing when the server has LITERAL+, else after its `+`. */
  async append(mailbox: string, message: Uint8Array, flags = ''): Promise<Reply> {
    const { tag, done } = this.register();
    const head = `${tag} APPEND ${mailbox}${flags ? ` (${flags})` : ''} {${message.length}`;
    if (this.literalPlus) {
      this.socket.write(`${head}+}\r\n`);
      this.socket.write(message);
      this.socket.write('\r\n');
      return done;
    }
    const first = this.continuationOr(done);
    this.socket.write(`${head}}\r\n`);
    const answer = await first;
    if (typeof answer !== 'string') return answer;
    this.socket.write(message);
    this.socket.write('\r\n');
    return done;
  }

  /** Starts IDLE and resolves once the server said `+`; `done()` ends it with DONE and resolves on its reply. */
  async idle(): Promise<{ done: () => Promise<Reply> }> {
    const { tag, done } = this.register();
    const waiting = this.continuationOr(done);
    this.socket.write(`${tag} IDLE\r\n`);
    const first = await waiting;
    if (typeof first !== 'string') throw new Error(`IDLE refused: ${first.status} ${first.text}`);
    return {
      done: () => {
        this.socket.write('DONE\r\n');
        return done;
      },
    };
  }

  /** LOGIN with quoted strings; throws unless OK. */
  async login(user: string, password: string): Promise<void> {
    const r = await this.command(`LOGIN "${user}" "${password}"`);
    if (r.status !== 'OK') throw new Error(`LOGIN ${user}: ${r.status} ${r.text}`);
  }

  close(): void {
    this.socket.destroy();
  }

  async logout(): Promise<void> {
    await this.command('LOGOUT').catch(() => undefined);
    this.socket.destroy();
  }
}

/** Throws unless the reply is OK. */
export function ok(r: Reply, what: string): Reply {
  if (r.status !== 'OK') throw new Error(`${what}: ${r.status} ${r.text}`);
  return r;
}
