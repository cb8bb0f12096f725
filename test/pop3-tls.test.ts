/**
 * POP3 on the shared TCP listener over real loopback sockets: STLS (RFC 2595) and implicit TLS (POP3S) with real
 * clients (Python poplib, curl), the plaintext policy for a non-loopback client (address from a PROXY header)
 * before and after STLS, the per-IP refusal, the RFC 1939 autologout (close, no response, no UPDATE) and the
 * shutdown notice.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { servePop3, startPop3 } from '../protocols/pop3.ts';
import { testListener } from './helpers/test-listener.ts';
import type { TcpListener, TcpListenerOptions } from '../protocols/net/listener.ts';
import { loadTlsContext } from '../protocols/net/tls.ts';
import type { TlsMaterial } from '../protocols/net/tls.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { connectPlain, connectRaw, lineClient } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const hasPython = (await run('python3', ['-c', 'import poplib, ssl'])).code === 0;
const hasCurl = (await run('curl', ['--version'])).code === 0;

/** argv: host port mode(stls|ssl); prints CAPA before and after the upgrade, STAT, and message 1. */
const POPLIB = `
import json, poplib, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl._create_unverified_context()
out = {}
if mode == 'stls':
    p = poplib.POP3(host, port, timeout=20)
    out['before'] = sorted(p.capa().keys())
    out['stls'] = p.stls(context=ctx).decode()
else:
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=20)
out['cipher'] = p.sock.cipher()[1]
out['after'] = sorted(p.capa().keys())
p.user('popper')
p.pass_('secret pw')
out['stat'] = list(p.stat())
out['message'] = b'\\r\\n'.join(p.retr(1)[1]).decode()
p.quit()
print(json.dumps(out))
`;

const BODY = 'From: a@example.com\r\nSubject: over tls\r\n\r\nsecret body\r\n';

async function readLines(client: LineClient, until: string): Promise<string[]> {
  const out: string[] = [];
  for (let line = await client.line(); line !== until; line = await client.line()) out.push(line);
  return out;
}

describe('POP3 over TLS on the shared listener', () => {
  let dataDir: string;
  let app: App;
  let tls: TlsMaterial;
  let listeners: TcpListener[];
  let plainPort: number;
  let tlsPort: number;
  let inboxId: string;
  const extra: TcpListener[] = [];

  /** A POP3 listener with test-sized limits (per-IP, idle timer, PROXY). */
  async function pop3Listener(options: Partial<TcpListenerOptions>): Promise<TcpListener> {
    const listener = await testListener({ name: 'pop3', tls, log: app.log, onConnection: (conn) => servePop3(app, conn) }, options);
    extra.push(listener);
    return listener;
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-pop3-tls-'));
    const config = resolveConfig({ dataDir, pop3: { host: '127.0.0.1', port: 0, tlsPort: 0 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    const { user } = await createUser(app.storage, config, { username: 'popper', password: 'secret pw', addresses: ['popper@example.com'] });
    inboxId = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!.id;
    const stored = await storeMessage(app, internalContext(app.log), { userId: user.id, mailboxId: inboxId, flags: [], internalDate: Date.now(), source: new TextEncoder().encode(BODY) });
    assert.ok(stored.ok);
    tls = await loadTlsContext(config, app.log);
    listeners = await startPop3(app, tls);
    assert.deepEqual(
      listeners.map((l) => l.describe.replace(/:\d+$/, '')),
      ['pop3://127.0.0.1', 'pop3s://127.0.0.1'],
    );
    [plainPort, tlsPort] = listeners.map((l) => l.port) as [number, number];
  });
  after(async () => {
    for (const l of [...listeners, ...extra]) await l.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('Python poplib: STLS on pop3.port, then USER/PASS and RETR over TLS', { skip: hasPython ? false : 'python3 missing' }, async () => {
    const r = await run('python3', ['-c', POPLIB, '127.0.0.1', String(plainPort), 'stls']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { before: string[]; stls: string; cipher: string; after: string[]; stat: number[]; message: string };
    assert.ok(out.before.includes('STLS'), 'STLS offered before the upgrade');
    assert.match(out.stls, /^\+OK/);
    assert.match(out.cipher, /^TLSv1\.[23]$/);
    assert.ok(!out.after.includes('STLS'), 'no STLS once secure');
    assert.ok(out.after.includes('USER'));
    assert.deepEqual(out.stat, [1, BODY.length]);
    assert.equal(out.message + '\r\n', BODY);
  });

  it('Python poplib: POP3_SSL on pop3.tlsPort', { skip: hasPython ? false : 'python3 missing' }, async () => {
    const r = await run('python3', ['-c', POPLIB, '127.0.0.1', String(tlsPort), 'ssl']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { cipher: string; after: string[]; stat: number[]; message: string };
    assert.match(out.cipher, /^TLSv1\.[23]$/);
    assert.ok(!out.after.includes('STLS'));
    assert.ok(out.after.includes('SASL'));
    assert.deepEqual(out.stat, [1, BODY.length]);
    assert.equal(out.message + '\r\n', BODY);
  });

  it('curl --ssl-reqd over pop3:// (STLS) and pop3s://', { skip: hasCurl ? false : 'curl missing' }, async () => {
    for (const url of [`pop3://127.0.0.1:${plainPort}/1`, `pop3s://127.0.0.1:${tlsPort}/1`]) {
      const r = await run('curl', ['-s', '-S', '--ssl-reqd', '-k', '--user', 'popper:secret pw', url]);
      assert.equal(r.code, 0, `${url}: ${r.stderr}`);
      assert.equal(r.stdout, BODY, url);
    }
  });

  it('a non-loopback client gets USER/PASS and AUTH only after STLS (plaintextAuthAllowed)', async () => {
    const listener = await pop3Listener({ proxyProtocol: true });
    const raw = await connectRaw(listener.port, new TextEncoder().encode('PROXY TCP4 203.0.113.7 127.0.0.1 50000 110\r\n'));
    const plain = lineClient(raw);
    assert.match(await plain.line(), /^\+OK WildDuck POP3 ready/);
    plain.send('CAPA\r\n');
    assert.equal(await plain.line(), '+OK Capability list follows');
    const before = await readLines(plain, '.');
    assert.ok(before.includes('STLS'));
    assert.ok(!before.includes('USER') && !before.includes('SASL PLAIN'), before.join(','));
    plain.send('USER popper\r\n');
    assert.match(await plain.line(), /^-ERR \[AUTH\] .*STLS/);
    plain.send('STLS\r\n');
    assert.equal(await plain.line(), '+OK Begin TLS negotiation');
    const secure = await plain.startTls({ ca: tls.cert });
    secure.send('CAPA\r\n');
    assert.equal(await secure.line(), '+OK Capability list follows');
    const after = await readLines(secure, '.');
    assert.ok(after.includes('USER') && after.includes('SASL PLAIN'), after.join(','));
    assert.ok(!after.includes('STLS'));
    secure.send('USER popper\r\nPASS secret pw\r\n');
    assert.match(await secure.line(), /^\+OK/);
    assert.match(await secure.line(), /^\+OK 1 messages/);
    secure.send('QUIT\r\n');
    assert.match(await secure.line(), /^\+OK Bye/);
    await secure.ended;
  });

  it('refuses a connection over the per-IP limit with -ERR [SYS/TEMP]', async () => {
    const listener = await pop3Listener({ maxConnectionsPerIp: 1 });
    const first = await connectPlain(listener.port);
    assert.match(await first.line(), /^\+OK/);
    const second = await connectPlain(listener.port);
    assert.match(await second.line(), /^-ERR \[SYS\/TEMP\] Too many connections/);
    await second.ended;
    first.send('NOOP\r\n');
    assert.match(await first.line(), /^-ERR/, 'the first session still answers');
    first.close();
  });

  it('autologout closes without a response and without UPDATE (RFC 1939 §3)', async () => {
    // long enough that a login slowed by a loaded machine (scrypt) is not mistaken for an idle client
    const listener = await pop3Listener({ idleTimeoutMs: 1500 });
    const client = await connectPlain(listener.port);
    assert.match(await client.line(), /^\+OK/);
    client.send('USER popper\r\nPASS secret pw\r\nDELE 1\r\n');
    assert.match(await client.line(), /^\+OK/);
    assert.match(await client.line(), /^\+OK 1 messages/);
    assert.match(await client.line(), /^\+OK Message 1 deleted/);
    await assert.rejects(client.line(5000), /connection closed/, 'closed with no goodbye line');
    // the lock is released once the session ended, and the DELE was not applied
    for (let i = 0; i < 50 && listener.connectionCount() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await app.storage.messages.index(inboxId)).length, 1);
  });

  it('says -ERR [SYS/TEMP] to a waiting client when the listener shuts down', async () => {
    const listener = await pop3Listener({});
    const client = await connectPlain(listener.port);
    assert.match(await client.line(), /^\+OK/);
    await listener.close();
    assert.equal(await client.line(), '-ERR [SYS/TEMP] Server shutting down');
    await client.ended;
  });
});
