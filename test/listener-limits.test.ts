/**
 * Issue 9 defect 5: connections are counted at accept, before the PROXY header and the TLS handshake. Sockets
 * that never start TLS hold a per-IP slot (so one address cannot open hundreds of them), are dropped when the
 * handshake deadline passes, and a connection cap holds for all addresses together. Real sockets on loopback;
 * clients act as different addresses by binding 127.x.y.z (the whole 127.0.0.0/8 range is local).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startTcpListener, startProtocolListeners } from '../protocols/net/listener.ts';
import type { Connection, TcpListener, TcpListenerOptions } from '../protocols/net/listener.ts';
import { loadTlsContext } from '../protocols/net/tls.ts';
import type { TlsMaterial } from '../protocols/net/tls.ts';
import { resolveConfig } from '../hooks/config.ts';
import { silentLogger } from '../hooks/log.ts';

/** A TCP connection from `localAddress` that sends nothing; `closed` settles when the server drops it. */
function idleSocket(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1', localAddress }, () => {
      socket.off('error', reject);
      const opened = performance.now();
      const closed = new Promise<number>((done) => socket.once('close', () => done(performance.now() - opened)));
      socket.on('error', () => {});
      socket.resume();
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return result;
};

describe('listener limits at accept (issue 9, defect 5)', () => {
  let dataDir: string;
  let material: TlsMaterial;
  const listeners: TcpListener[] = [];
  const sockets: Socket[] = [];

  const start = async (overrides: Partial<TcpListenerOptions>) => {
    const seen: Connection[] = [];
    const listener = await startTcpListener({
      name: 'test',
      host: '127.0.0.1',
      port: 0,
      implicitTls: true,
      tls: material,
      proxyProtocol: false,
      maxConnectionsPerIp: 5,
      idleTimeoutSeconds: 60,
      log: silentLogger,
      closeGraceMs: 500,
      onConnection: (conn) => {
        seen.push(conn);
        conn.socket.write(conn.refused ? 'BUSY\r\n' : 'HELLO\r\n');
      },
      ...overrides,
    });
    listeners.push(listener);
    return { listener, seen };
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-listener-limits-'));
    material = await loadTlsContext(resolveConfig({ dataDir }), silentLogger);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const l of listeners) await l.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('counts sockets that never start TLS against the per-IP limit: the rest are dropped at once', async () => {
    const { listener } = await start({ handshakeTimeoutMs: 30_000 });
    const held = [];
    for (let i = 0; i < 5; i++) held.push(await idleSocket(listener.port, '127.0.5.1'));
    sockets.push(...held.map((h) => h.socket));
    const extra = [];
    for (let i = 0; i < 20; i++) extra.push(await idleSocket(listener.port, '127.0.5.1'));
    sockets.push(...extra.map((h) => h.socket));
    // the 20 over the limit are closed right away, long before the 30 s handshake deadline
    assert.ok(await settledWithin(Promise.all(extra.map((h) => h.closed)), 3000), 'over-limit sockets dropped at accept');
    assert.equal(await settledWithin(Promise.race(held.map((h) => h.closed)), 200), false, 'the first five are still waiting for their handshake');
    // another address is not affected and completes its handshake
    const raw = netConnect({ port: listener.port, host: '127.0.0.1', localAddress: '127.0.5.2' });
    await new Promise((resolve) => raw.once('connect', resolve));
    const other = tlsConnect({ socket: raw, ca: material.cert, servername: 'localhost' });
    sockets.push(other);
    const hello = await new Promise<string>((resolve, reject) => {
      other.once('data', (d: Buffer) => resolve(d.toString()));
      other.once('error', reject);
    });
    assert.equal(hello, 'HELLO\r\n');
  });

  it('drops a socket that does not finish its handshake within the handshake timeout, freeing its slot', async () => {
    const { listener } = await start({ handshakeTimeoutMs: 300, maxConnectionsPerIp: 1 });
    const first = await idleSocket(listener.port, '127.0.6.1');
    sockets.push(first.socket);
    const lasted = await first.closed;
    assert.ok(lasted >= 250 && lasted < 3000, `dropped after the handshake timeout (${Math.round(lasted)} ms)`);
    const again = await idleSocket(listener.port, '127.0.6.1');
    sockets.push(again.socket);
    assert.equal(await settledWithin(again.closed, 150), false, 'the slot was released');
  });

  it('drops sockets over the connection cap at accept, whatever their address', async () => {
    const { listener } = await start({ handshakeTimeoutMs: 30_000, maxConnections: 6 });
    const held = [];
    for (let i = 0; i < 6; i++) held.push(await idleSocket(listener.port, `127.0.7.${i + 1}`));
    sockets.push(...held.map((h) => h.socket));
    const over = await idleSocket(listener.port, '127.0.7.100');
    sockets.push(over.socket);
    assert.ok(await settledWithin(over.closed, 3000), 'the seventh socket is dropped at once');
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    const after = await idleSocket(listener.port, '127.0.7.101');
    sockets.push(after.socket);
    assert.equal(await settledWithin(after.closed, 150), false, 'a freed slot admits a new socket');
  });

  it('a protocol shares one count between its plaintext and TLS ports (per-IP and cap)', async () => {
    const section = { host: '127.0.0.1', port: 0, tlsPort: 0, proxyProtocol: false, maxConnectionsPerIp: 2, maxConnections: 100, handshakeTimeoutSeconds: 30, idleTimeoutSeconds: 60 };
    const started = await startProtocolListeners('test', section, material, silentLogger, (conn) => void conn.socket.write(conn.refused ? 'BUSY\r\n' : 'HELLO\r\n'));
    listeners.push(...started);
    const [plain, tls] = started as [TcpListener, TcpListener];
    const a = await idleSocket(tls.port, '127.0.8.1');
    const b = await idleSocket(tls.port, '127.0.8.1');
    sockets.push(a.socket, b.socket);
    // two sockets stuck before their TLS handshake fill the address's share on the plaintext port too
    const c = netConnect({ port: plain.port, host: '127.0.0.1', localAddress: '127.0.8.1' });
    sockets.push(c);
    const reply = await new Promise<string>((resolve) => c.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(reply, 'BUSY\r\n');
  });
});
