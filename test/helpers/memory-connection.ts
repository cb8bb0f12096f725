/**
 * An in-memory client/server socket pair and a ClientConnection over its server end, so protocol sessions run
 * in transcript tests without a network. `client` reads lines and sends raw text.
 */
import { Duplex } from 'node:stream';
import type { ClientConnection } from '../../protocols/net/client-connection.ts';

class End extends Duplex {
  peer: End | null = null;
  override _read(): void {}
  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.peer?.push(chunk);
    callback();
  }
  override _final(callback: (error?: Error | null) => void): void {
    this.peer?.push(null);
    callback();
  }
}

export function memoryPair(): { client: Duplex; server: Duplex } {
  const client = new End();
  const server = new End();
  client.peer = server;
  server.peer = client;
  return { client, server };
}

export interface MemoryConnection extends ClientConnection {
  readonly closedCount: number;
}

export function memoryConnection(server: Duplex, options: { id?: string; remoteAddress?: string; secure?: boolean } = {}): MemoryConnection {
  let closedCount = 0;
  return {
    id: options.id ?? 'mem-1',
    socket: server,
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    remotePort: 40000,
    secure: options.secure ?? false,
    isLoopback: (options.remoteAddress ?? '127.0.0.1').startsWith('127.'),
    get closedCount() {
      return closedCount;
    },
    close() {
      closedCount++;
      if (!server.writableEnded) server.end();
    },
  };
}

/** The client side of a transcript: lines in, raw text out. */
export class TranscriptClient {
  readonly socket: Duplex;
  #buffer = '';
  #lines: string[] = [];
  #waiters: Array<(line: string | null) => void> = [];
  #ended = false;

  constructor(socket: Duplex) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('latin1');
      let i: number;
      while ((i = this.#buffer.indexOf('\r\n')) >= 0) {
        this.#push(this.#buffer.slice(0, i));
        this.#buffer = this.#buffer.slice(i + 2);
      }
    });
    socket.on('end', () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w(null);
    });
  }

  #push(line: string): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(line);
    else this.#lines.push(line);
  }

  /** Next line, or null once the server closed. Rejects after `timeoutMs`. */
  line(timeoutMs = 5000): Promise<string | null> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error('timed out waiting for a line'));
      }, timeoutMs);
      const waiter = (line: string | null) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push(waiter);
    });
  }

  /** Reads `n` lines. */
  async lines(n: number): Promise<Array<string | null>> {
    const out: Array<string | null> = [];
    for (let i = 0; i < n; i++) out.push(await this.line());
    return out;
  }

  /** Reads lines through the final line of a multi-line SMTP reply (`250-…` … `250 …`). */
  async reply(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === null) return out;
      out.push(line);
      if (!/^\d{3}-/.test(line)) return out;
    }
  }

  /** Reads a POP3 multi-line body after its +OK line, up to the "." line; lines un-stuffed. */
  async multiline(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === null || line === '.') return out;
      out.push(line.startsWith('.') ? line.slice(1) : line);
    }
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Sends one command line (CRLF added). */
  cmd(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  get ended(): boolean {
    return this.#ended;
  }
}
