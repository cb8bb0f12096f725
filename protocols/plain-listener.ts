/**
 * A bare node:net listener for line protocols (LMTP, POP3) until the shared TCP/TLS listener
 * (protocols/listener.ts: TLS, PROXY protocol, per-IP limits, idle timers) is wired in; then this file goes.
 * Plain TCP only: no STARTTLS, no implicit TLS. Connections get the ClientConnection shape sessions expect.
 */
import { createServer, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../hooks/log.ts';
import type { ClientConnection } from './client-connection.ts';
import type { Listener } from './http.ts';

export interface PlainListenerOptions {
  name: string;
  host: string;
  port: number;
  log: Logger;
  onConnection(conn: ClientConnection): Promise<void>;
}

function unwrap(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function startPlainListener(options: PlainListenerOptions): Promise<Listener & { port: number }> {
  const log = options.log.child({ listener: options.name });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (err) => log.debug('socket error', { err: err.message }));
    socket.setNoDelay(true);
    const remoteAddress = unwrap(socket.remoteAddress ?? '');
    const conn: ClientConnection = {
      id: randomUUID(),
      socket,
      remoteAddress,
      remotePort: socket.remotePort ?? null,
      secure: false,
      isLoopback: remoteAddress === '::1' || remoteAddress.startsWith('127.'),
      close() {
        if (!socket.writableEnded) socket.end();
        setTimeout(() => socket.destroy(), 5000).unref?.();
      },
    };
    options.onConnection(conn).catch((err: unknown) => {
      log.error('session failed', { err });
      socket.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      log.info(`${options.name} listening`, { host: options.host, port });
      resolve({
        describe: `${options.name} ${options.host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
