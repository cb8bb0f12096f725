/**
 * protocols/net/listener.ts over real loopback sockets: plain and implicit-TLS accept, STARTTLS, PROXY v1/v2,
 * the per-IP connection limit, the idle timer with its goodbye notice, and graceful shutdown.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { startTcpListener, normalizeAddress, isLoopbackAddress } from '../protocols/net/listener.ts';
import type { Connection, TcpListener, TcpListenerOptions } from '../protocols/net/listener.ts';
import { loadTlsContext } from '../protocols/net/tls.ts';
import type { TlsMaterial } from '../protocols/net/tls.ts';
import { resolveConfig } from '../hooks/config.ts';
import { silentLogger } from '../hooks/log.ts';
import { connectPlain, connectRaw, connectTls, lineClient } from './helpers/line-client.ts';

/** Server side of a toy protocol: greets, echoes lines, upgrades on STARTTLS. */
function serveEcho(conn: Connection, seen: Connection[]): void {
  seen.push(conn);
  if (conn.refused) {
    conn.socket.write(`BUSY ${conn.refused}\r\n`);
    return;
  }
  conn.onIdleTimeout = (c) => void c.socket.write('BYE idle\r\n');
  conn.onShutdown = (c) => void c.socket.write('BYE shutdown\r\n');
  const attach = (socket: Duplex) => {
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (line === 'STARTTLS') {
          buffer = '';
          socket.write('GO\r\n', () => {
            conn.upgradeToTls().then(
              () => attach(conn.socket),
              () => {},
            );
          });
          return;
        }
        socket.write(`ECHO ${line} secure=${conn.secure}\r\n`);
      }
    });
  };
  attach(conn.socket);
  conn.socket.write(`HELLO ${conn.remoteAddress} ${conn.remotePort} loopback=${conn.isLoopback} starttls=${conn.canStartTls}\r\n`);
}

describe('TCP listener', () => {
  let dataDir: string;
  let material: TlsMaterial;
  const listeners: TcpListener[] = [];

  const start = async (overrides: Partial<TcpListenerOptions> = {}) => {
    const seen: Connection[] = [];
    const listener = await startTcpListener({
      name: 'test',
      host: '127.0.0.1',
      port: 0,
      implicitTls: false,
      tls: material,
      proxyProtocol: false,
      maxConnectionsPerIp: 10,
      idleTimeoutSeconds: 60,
      log: silentLogger,
      closeGraceMs: 1000,
      onConnection: (conn) => serveEcho(conn, seen),
      ...overrides,
    });
    listeners.push(listener);
    return { listener, seen };
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-listener-'));
    material = await loadTlsContext(resolveConfig({ dataDir }), silentLogger);
  });
  after(async () => {
    for (const l of listeners) await l.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('accepts a plain connection and describes the client', async () => {
    const { listener, seen } = await start();
    assert.match(listener.describe, /^test:\/\/127\.0\.0\.1:\d+$/);
    const client = await connectPlain(listener.port);
    assert.equal(await client.line(), `HELLO 127.0.0.1 ${(client.socket as import('node:net').Socket).localPort} loopback=true starttls=true`);
    client.send('ping\r\n');
    assert.equal(await client.line(), 'ECHO ping secure=false');
    const conn = seen[0]!;
    assert.equal(conn.secure, false);
    assert.equal(conn.proxied, false);
    assert.equal(conn.refused, null);
    assert.equal(conn.localPort, listener.port);
    assert.equal(listener.connectionCount(), 1);
    client.close();
    await conn.whenClosed;
    assert.equal(conn.closed, true);
    assert.equal(listener.connectionCount(), 0);
  });

  it('does the TLS handshake first on an implicit-TLS port, with a client that trusts the generated certificate', async () => {
    const { listener, seen } = await start({ implicitTls: true });
    assert.match(listener.describe, /^tests:\/\//);
    const client = await connectTls(listener.port, material.cert);
    assert.match(await client.line(), /^HELLO 127\.0\.0\.1 \d+ loopback=true starttls=false$/);
    client.send('over tls\r\n');
    assert.equal(await client.line(), 'ECHO over tls secure=true');
    assert.equal(seen[0]!.secure, true);
    client.close();
  });

  it('refuses implicit TLS without TLS material', async () => {
    await assert.rejects(startTcpListener({ name: 'x', host: '127.0.0.1', port: 0, implicitTls: true, tls: null, proxyProtocol: false, maxConnectionsPerIp: 1, idleTimeoutSeconds: 1, log: silentLogger, onConnection: () => {} }));
  });

  it('drops a client that does not speak TLS on an implicit-TLS port', async () => {
    const { listener, seen } = await start({ implicitTls: true, handshakeTimeoutMs: 200 });
    const raw = await connectRaw(listener.port, new TextEncoder().encode('A001 CAPABILITY\r\n'));
    raw.resume();
    await new Promise<void>((resolve) => raw.once('close', () => resolve()));
    assert.equal(seen.length, 0);
  });

  it('loses no bytes when onConnection awaits before it starts reading', async () => {
    const seen: Connection[] = [];
    const { listener } = await start({
      onConnection: async (conn) => {
        await new Promise((r) => setTimeout(r, 100));
        serveEcho(conn, seen);
      },
    });
    const raw = await connectRaw(listener.port, new TextEncoder().encode('early\r\n'));
    const client = lineClient(raw);
    assert.match(await client.line(), /^HELLO /);
    assert.equal(await client.line(), 'ECHO early secure=false');
    client.close();
  });

  it('upgrades a plain connection with STARTTLS', async () => {
    const { listener, seen } = await start();
    const plain = await connectPlain(listener.port);
    assert.match(await plain.line(), /starttls=true$/);
    plain.send('before\r\n');
    assert.equal(await plain.line(), 'ECHO before secure=false');
    plain.send('STARTTLS\r\n');
    assert.equal(await plain.line(), 'GO');
    const secure = await plain.startTls({ ca: material.cert });
    secure.send('after\r\n');
    assert.equal(await secure.line(), 'ECHO after secure=true');
    const conn = seen[0]!;
    assert.equal(conn.secure, true);
    assert.equal(conn.canStartTls, false);
    await assert.rejects(conn.upgradeToTls(), /already secure/);
    secure.close();
    await conn.whenClosed;
    assert.equal(listener.connectionCount(), 0);
  });

  it('offers no STARTTLS without TLS material', async () => {
    const { listener, seen } = await start({ tls: null });
    const client = await connectPlain(listener.port);
    assert.match(await client.line(), /starttls=false$/);
    await assert.rejects(seen[0]!.upgradeToTls(), /not available/);
    client.close();
  });

  it('takes the client address from a PROXY v1 header', async () => {
    const { listener, seen } = await start({ proxyProtocol: true });
    const raw = await connectRaw(listener.port, new TextEncoder().encode('PROXY TCP4 192.0.2.7 127.0.0.1 51000 143\r\nfirst\r\n'));
    const client = lineClient(raw);
    assert.equal(await client.line(), 'HELLO 192.0.2.7 51000 loopback=false starttls=true');
    assert.equal(await client.line(), 'ECHO first secure=false', 'bytes after the header reach the protocol');
    assert.equal(seen[0]!.proxied, true);
    client.close();
  });

  it('takes the client address from PROXY v2 headers (IPv4, IPv6, LOCAL), also ahead of implicit TLS', async () => {
    const { listener } = await start({ proxyProtocol: true, implicitTls: true });
    const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
    const v4 = Uint8Array.from([...sig, 0x21, 0x11, 0x00, 12, 192, 0, 2, 9, 127, 0, 0, 1, 0xc3, 0x50, 0x03, 0xe1]);
    const v6src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    const v6 = Uint8Array.from([...sig, 0x21, 0x21, 0x00, 36, ...v6src, ...new Array(15).fill(0), 1, 0x04, 0xd2, 0x03, 0xe1]);
    const local = Uint8Array.from([...sig, 0x20, 0x00, 0x00, 0x00]);
    const over = async (header: Uint8Array) => {
      const raw = await connectRaw(listener.port, header);
      const tls = tlsConnect({ socket: raw, ca: material.cert, servername: 'localhost' });
      const client = lineClient(tls);
      const line = await client.line();
      client.close();
      return line;
    };
    assert.equal(await over(v4), 'HELLO 192.0.2.9 50000 loopback=false starttls=false');
    assert.equal(await over(v6), 'HELLO 2001:db8::42 1234 loopback=false starttls=false');
    assert.match(await over(local), /^HELLO 127\.0\.0\.1 \d+ loopback=true/, 'LOCAL keeps the socket address');
  });

  it('closes a connection whose PROXY header is bad, before the protocol sees it', async () => {
    const { listener, seen } = await start({ proxyProtocol: true });
    for (const bad of ['A001 LOGIN x y\r\n', 'PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n', 'PROXY ' + 'x'.repeat(200)]) {
      const raw = await connectRaw(listener.port, new TextEncoder().encode(bad));
      raw.resume();
      await new Promise<void>((resolve) => raw.once('close', () => resolve()));
    }
    assert.equal(seen.length, 0);
  });

  it('limits concurrent connections per client address, letting the protocol word the refusal', async () => {
    const { listener, seen } = await start({ maxConnectionsPerIp: 2 });
    const a = await connectPlain(listener.port);
    const b = await connectPlain(listener.port);
    await a.line();
    await b.line();
    const c = await connectPlain(listener.port);
    assert.equal(await c.line(), 'BUSY too-many-connections');
    await c.ended;
    assert.equal(seen[2]!.refused, 'too-many-connections');
    assert.equal(listener.connectionCount(), 2);
    a.close();
    await seen[0]!.whenClosed;
    const d = await connectPlain(listener.port);
    assert.match(await d.line(), /^HELLO /, 'a slot freed up');
    b.close();
    d.close();
  });

  it('says goodbye and closes an idle connection; data keeps it alive', async () => {
    const { listener, seen } = await start({ idleTimeoutMs: 300 });
    const client = await connectPlain(listener.port);
    await client.line();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      client.send(`keepalive ${i}\r\n`);
      assert.equal(await client.line(), `ECHO keepalive ${i} secure=false`);
    }
    const started = Date.now();
    assert.equal(await client.line(2000), 'BYE idle');
    assert.ok(Date.now() - started >= 250, 'idle timer ran from the last data');
    await client.ended;
    await seen[0]!.whenClosed;
    assert.equal(listener.connectionCount(), 0);
  });

  it('shuts down gracefully: goodbye to every client, then closed, and no new connections', async () => {
    const { listener } = await start();
    const clients = [await connectPlain(listener.port), await connectPlain(listener.port)];
    for (const c of clients) await c.line();
    const closing = listener.close();
    for (const c of clients) {
      assert.equal(await c.line(), 'BYE shutdown');
      await c.ended;
    }
    await closing;
    assert.equal(listener.connectionCount(), 0);
    await assert.rejects(connectPlain(listener.port));
  });
});

describe('address helpers', () => {
  it('unwraps IPv4-mapped IPv6 and recognises loopback', () => {
    assert.equal(normalizeAddress('::FFFF:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('2001:DB8::1'), '2001:db8::1');
    assert.equal(isLoopbackAddress('127.5.6.7'), true);
    assert.equal(isLoopbackAddress('::1'), true);
    assert.equal(isLoopbackAddress('::ffff:127.0.0.1'), true);
    assert.equal(isLoopbackAddress('192.0.2.1'), false);
  });
});
