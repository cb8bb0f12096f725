/**
 * A minimal LMTP client for the bench, the same for both servers: one connection, LHLO once, then per message
 * MAIL FROM + RCPT TO + DATA pipelined (both servers announce PIPELINING), the dot-stuffed body, and the one
 * reply for the one recipient.
 */
import { connect, type Socket } from 'node:net';

export class LmtpClient {
  private readonly socket: Socket;
  private buf = '';
  private lines: string[] = [];
  private waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private closed: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf += chunk.toString('latin1');
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        const w = this.waiters.shift();
        if (w) w.resolve(l);
        else this.lines.push(l);
      }
    });
    const fail = (err?: Error) => {
      if (this.closed) return;
      this.closed = err ?? new Error('LMTP connection closed');
      for (const w of this.waiters.splice(0)) w.reject(this.closed);
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<LmtpClient> {
    const socket = connect({ port, host });
    const client = new LmtpClient(socket);
    await client.reply('220');
    socket.write('LHLO bench.test\r\n');
    await client.reply('250');
    return client;
  }

  private line(): Promise<string> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Reads one (possibly multi-line) reply and throws unless its code starts with `expect`. */
  private async reply(expect: string): Promise<string> {
    let l = await this.line();
    while (/^\d{3}-/.test(l)) l = await this.line();
    if (!l.startsWith(expect)) throw new Error(`LMTP: expected ${expect}, got ${l}`);
    return l;
  }

  /** Delivers one message (`data` already dot-stuffed and ending in `.\r\n`, see corpus.dataBlock) to `rcpt`. */
  async deliver(from: string, rcpt: string, data: Uint8Array): Promise<void> {
    this.socket.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
    await this.reply('250');
    await this.reply('250');
    await this.reply('354');
    this.socket.write(data);
    await this.reply('250');
  }

  async quit(): Promise<void> {
    this.socket.write('QUIT\r\n');
    await this.reply('221').catch(() => undefined);
    this.socket.destroy();
  }
}
