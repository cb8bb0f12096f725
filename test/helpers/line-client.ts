/**
 * A minimal line-oriented client for listener and protocol tests: connect over TCP or TLS (loopback only),
 * read CRLF-terminated lines one by one, write lines, and wait for the server to close.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

export interface LineClient {
  readonly socket: Duplex;
  /** The next line without its CRLF; rejects after `timeoutMs` or when the connection ends first. */
  line(timeoutMs?: number): Promise<string>;
  send(text: string): void;
  /** Resolves when the server closed the connection. */
  readonly ended: Promise<void>;
  /** Switches to TLS over the same TCP connection (STARTTLS); lines buffered so far are dropped. */
  startTls(options: { ca: string; servername?: string }): Promise<LineClient>;
  close(): void;
}

export function lineClient(socket: Duplex): LineClient {
  let buffer = '';
  const lines: string[] = [];
  const waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  let done = false;
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => (endedResolve = r));
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let i: number;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const l = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const w = waiters.shift();
      if (w) w.resolve(l);
      else lines.push(l);
    }
  };
  const finish = () => {
    if (done) return;
    done = true;
    for (const w of waiters.splice(0)) w.reject(new Error('connection closed'));
    endedResolve();
  };
  socket.on('data', onData);
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', finish);
  return {
    socket,
    ended,
    line(timeoutMs = 5000) {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      if (done) return Promise.reject(new Error('connection closed'));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for a line')), timeoutMs);
        waiters.push({
          resolve: (l) => (clearTimeout(timer), resolve(l)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
      });
    },
    send(text) {
      socket.write(text);
    },
    async startTls(options) {
      socket.off('data', onData);
      socket.off('end', finish);
      socket.off('close', finish);
      const tls = tlsConnect({ socket: socket as Socket, ca: options.ca, servername: options.servername ?? 'localhost' });
      await new Promise<void>((resolve, reject) => {
        tls.once('secureConnect', () => resolve());
        tls.once('error', reject);
      });
      return lineClient(tls);
    },
    close() {
      socket.destroy();
    },
  };
}

export function connectPlain(port: number, host = '127.0.0.1'): Promise<LineClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = netConnect(port, host, () => {
      socket.off('error', reject);
      resolve(lineClient(socket));
    });
    socket.once('error', reject);
  });
}

export function connectTls(port: number, ca: string, host = '127.0.0.1', servername = 'localhost'): Promise<LineClient> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ port, host, ca, servername }, () => {
      socket.off('error', reject);
      resolve(lineClient(socket));
    });
    socket.once('error', reject);
  });
}

/** A raw TCP connection that first writes `prefix` (e.g. a PROXY header), returned before any reply. */
export function connectRaw(port: number, prefix: Uint8Array, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket: Socket = netConnect(port, host, () => {
      socket.off('error', reject);
      socket.write(prefix);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
