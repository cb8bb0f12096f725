/**
 * Real LMTP clients against the shared TCP listener: nodemailer's LMTP transport (plaintext, STARTTLS with
 * requireTLS, implicit TLS on lmtp.tlsPort) and swaks (`--protocol LMTP`, when installed), delivering to users on
 * the real stack; the stored copies are read back through the storage ports. Also the listener's wire wording for
 * LMTP: STARTTLS in LHLO, the per-IP refusal (421 4.7.0), the idle timeout (421 4.4.2) and shutdown (421 4.3.2).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { bootTestApp } from './helpers/test-backend.ts';
import { serveLmtp, startLmtp } from '../protocols/lmtp.ts';
import { testListener } from './helpers/test-listener.ts';
import type { TcpListener, TcpListenerOptions } from '../protocols/net/listener.ts';
import { loadTlsContext } from '../protocols/net/tls.ts';
import type { TlsMaterial } from '../protocols/net/tls.ts';
import { connectPlain } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const hasSwaks = (await run('swaks', ['--version'])).code === 0;

describe('LMTP with real clients', () => {
  let dataDir: string;
  let app: App;
  let tls: TlsMaterial;
  let listeners: TcpListener[];
  let listener: TcpListener;
  let tlsListener: TcpListener;
  const extra: TcpListener[] = [];
  const users: Record<string, string> = {};

  /** An LMTP listener with test-sized limits (per-IP, idle timer). */
  async function lmtpListener(options: Partial<TcpListenerOptions>): Promise<TcpListener> {
    const started = await testListener({ name: 'lmtp', tls, log: app.log, onConnection: (conn) => serveLmtp(app, conn, { hostname: 'mx.test' }) }, options);
    extra.push(started);
    return started;
  }

  async function lhlo(client: LineClient): Promise<string[]> {
    client.send('LHLO client.test\r\n');
    const out: string[] = [];
    for (;;) {
      const line = await client.line();
      out.push(line);
      if (!/^\d{3}-/.test(line)) return out;
    }
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-lmtp-clients-'));
    const config = resolveConfig({ dataDir, plugins: ['quota'], lmtp: { host: '127.0.0.1', port: 0, tlsPort: 0 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    for (const name of ['alice', 'bob']) {
      users[name] = (await createUser(app.storage, config, { username: name, password: 'pw', addresses: [`${name}@example.com`] })).user.id;
    }
    tls = await loadTlsContext(config, app.log);
    listeners = await startLmtp(app, tls, { hostname: 'mx.test' });
    [listener, tlsListener] = listeners as [TcpListener, TcpListener];
    assert.match(tlsListener.describe, /^lmtps:\/\/127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    for (const l of [...listeners, ...extra]) await l.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function latest(user: string): Promise<string> {
    const box = (await app.storage.mailboxes.getByPath(users[user]!, 'INBOX'))!;
    const entry = (await app.storage.messages.index(box.id)).at(-1)!;
    const record = (await app.storage.messages.get(box.id, entry.uid))!;
    return new TextDecoder().decode(await readAll(readMessage((await app.storage.messages.content(record.id))!, app.storage.blobs)));
  }

  it('nodemailer (LMTP transport) delivers to two users and learns of the unknown one', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: listener.port, lmtp: true, name: 'client.test', ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'sender@remote.example', to: ['alice@example.com', 'bob@example.com', 'ghost@example.com'] },
      from: 'Sender <sender@remote.example>',
      to: 'alice@example.com, bob@example.com',
      subject: 'Hello over LMTP',
      text: 'First line\n.starts with a dot\n',
      attachments: [{ filename: 'data.bin', content: Buffer.alloc(40_000, 7) }],
    });
    transport.close();
    assert.deepEqual([...info.accepted].sort(), ['alice@example.com', 'bob@example.com']);
    assert.deepEqual(info.rejected, ['ghost@example.com']);
    for (const user of ['alice', 'bob']) {
      const text = await latest(user);
      assert.ok(text.startsWith(`Return-Path: <sender@remote.example>\r\nDelivered-To: ${user}@example.com\r\n`));
      assert.match(text, /Subject: Hello over LMTP/);
      assert.match(text, /\r\n\.starts with a dot/);
    }
  });

  it('swaks --protocol LMTP delivers a message', { skip: hasSwaks ? false : 'swaks is not installed' }, async () => {
    const r = await run('swaks', [
      '--protocol', 'LMTP', '--server', '127.0.0.1', '--port', String(listener.port),
      '--from', 'swaks@remote.example', '--to', 'Alice@Example.com',
      '--header', 'Subject: from swaks', '--body', 'Body from swaks', '--helo', 'swaks.test',
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<- +250 2\.0\.0 <Alice@Example\.com> Delivered/);
    const text = await latest('alice');
    assert.match(text, /^Return-Path: <swaks@remote\.example>\r\nDelivered-To: Alice@Example\.com\r\n/);
    assert.match(text, /Subject: from swaks/);
  });

  it('nodemailer with requireTLS upgrades with STARTTLS and delivers', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: listener.port, lmtp: true, name: 'client.test', requireTLS: true, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({
      envelope: { from: 'tls@remote.example', to: ['bob@example.com'] },
      from: 'tls@remote.example',
      to: 'bob@example.com',
      subject: 'Over STARTTLS',
      text: 'encrypted on the way in\n',
    });
    transport.close();
    assert.deepEqual(info.accepted, ['bob@example.com']);
    assert.match(await latest('bob'), /Subject: Over STARTTLS/);
  });

  it('nodemailer delivers over implicit TLS on lmtp.tlsPort', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: tlsListener.port, lmtp: true, secure: true, name: 'client.test', tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({
      envelope: { from: 'tls@remote.example', to: ['alice@example.com'] },
      from: 'tls@remote.example',
      to: 'alice@example.com',
      subject: 'Over LMTPS',
      text: 'encrypted from the first byte\n',
    });
    transport.close();
    assert.deepEqual(info.accepted, ['alice@example.com']);
    assert.match(await latest('alice'), /Subject: Over LMTPS/);
  });

  it('offers STARTTLS in LHLO only before the upgrade, and none without TLS material', async () => {
    const plain = await connectPlain(listener.port);
    assert.equal(await plain.line(), '220 mx.test LMTP ready');
    const before = await lhlo(plain);
    assert.ok(before.some((l) => /^250[- ]STARTTLS$/.test(l)), before.join(','));
    plain.send('STARTTLS\r\n');
    assert.equal(await plain.line(), '220 2.0.0 Ready to start TLS');
    const secure = await plain.startTls({ ca: tls.cert });
    const after = await lhlo(secure);
    assert.equal(after[0], '250-mx.test');
    assert.ok(!after.some((l) => l.includes('STARTTLS')), after.join(','));
    secure.close();

    const bare = await lmtpListener({ tls: null });
    const client = await connectPlain(bare.port);
    await client.line();
    assert.ok(!(await lhlo(client)).some((l) => l.includes('STARTTLS')));
    client.send('STARTTLS\r\n');
    assert.match(await client.line(), /^502 5\.5\.1/);
    client.close();
  });

  it('refuses a connection over the per-IP limit with 421 4.7.0', async () => {
    const limited = await lmtpListener({ maxConnectionsPerIp: 1 });
    const first = await connectPlain(limited.port);
    assert.match(await first.line(), /^220 /);
    const second = await connectPlain(limited.port);
    assert.match(await second.line(), /^421 4\.7\.0 Too many connections/);
    await second.ended;
    first.send('NOOP\r\n');
    assert.equal(await first.line(), '250 2.0.0 OK');
    first.close();
  });

  it('says 421 4.4.2 on the idle timeout and 421 4.3.2 on shutdown', async () => {
    const idle = await lmtpListener({ idleTimeoutMs: 150 });
    const sleepy = await connectPlain(idle.port);
    assert.match(await sleepy.line(), /^220 /);
    assert.match(await sleepy.line(2000), /^421 4\.4\.2 Idle timeout/);
    await sleepy.ended;

    const stopping = await lmtpListener({});
    const waiting = await connectPlain(stopping.port);
    assert.match(await waiting.line(), /^220 /);
    await stopping.close();
    assert.match(await waiting.line(), /^421 4\.3\.2 /);
    await waiting.ended;
  });
});
