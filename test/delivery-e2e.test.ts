/**
 * End to end over real sockets: an MTA-like client delivers over LMTP to four recipients (two ordinary, one over
 * quota, one unknown) and gets 550 at RCPT for the unknown one and 250, 250, 452 after DATA; both stored copies
 * are then downloaded and deleted over POP3 by real clients (Python poplib, curl).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { bootTestApp } from './helpers/test-backend.ts';
import { startLmtp } from '../protocols/lmtp.ts';
import { startPop3 } from '../protocols/pop3.ts';
import type { TcpListener } from '../protocols/net/listener.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { TranscriptClient } from './helpers/memory-connection.ts';

function run(file: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

const hasPython = (await run('python3', ['-c', 'import poplib'])).code === 0;
const hasCurl = (await run('curl', ['--version'])).code === 0;

const POPLIB = `
import json, poplib, sys
host, port, user, password, delete = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == '1'
p = poplib.POP3(host, port, timeout=20)
p.user(user)
p.pass_(password)
count, size = p.stat()
uidls = [l.decode().split(' ', 1)[1] for l in p.uidl()[1]]
messages = []
for n in range(1, count + 1):
    resp, lines, octets = p.retr(n)
    messages.append(b'\\r\\n'.join(lines).decode('utf-8', 'replace'))
    if delete:
        p.dele(n)
p.quit()
print(json.dumps({'count': count, 'size': size, 'uidls': uidls, 'messages': messages}))
`;

describe('delivery end to end: LMTP in, POP3 out', () => {
  let dataDir: string;
  let app: App;
  let lmtp: TcpListener;
  let pop3: TcpListener;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-e2e-'));
    const listener = { host: '127.0.0.1', port: 0, tlsPort: null };
    const config = resolveConfig({ dataDir, plugins: ['quota'], lmtp: listener, pop3: listener });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    await createUser(app.storage, config, { username: 'ann', password: 'pw-ann', addresses: ['ann@example.com'] });
    await createUser(app.storage, config, { username: 'ben', password: 'pw-ben', addresses: ['ben@example.com'] });
    await createUser(app.storage, config, { username: 'full', password: 'pw', addresses: ['full@example.com'], quota: { storage: 100 } });
    // plaintext only here (no TLS material): POP3 and LMTP over TLS are tested in pop3-tls and lmtp-clients
    [lmtp] = (await startLmtp(app, null, { hostname: 'mx.test' })) as [TcpListener];
    [pop3] = (await startPop3(app, null)) as [TcpListener];
  });
  after(async () => {
    await lmtp.close();
    await pop3.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('four recipients: 550 at RCPT for the unknown one; 250, 250, 452 after DATA', async () => {
    const socket = netConnect(lmtp.port, '127.0.0.1');
    const client = new TranscriptClient(socket);
    assert.match((await client.line())!, /^220 /);
    client.send(
      'LHLO mta.test\r\nMAIL FROM:<news@remote.example>\r\nRCPT TO:<ann@example.com>\r\nRCPT TO:<ben@example.com>\r\n' +
        'RCPT TO:<full@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n',
    );
    const lhlo = await client.reply();
    assert.equal(lhlo[0], '250-mx.test');
    const replies = await client.lines(6);
    assert.deepEqual(replies.map((l) => l!.slice(0, 3)), ['250', '250', '250', '250', '550', '354']);
    assert.match(replies[4]!, /^550 5\.1\.1/);
    const body = 'From: news@remote.example\r\nSubject: Acceptance\r\nMessage-ID: <acceptance@remote.example>\r\n\r\n' + 'Some text.\r\n'.repeat(20);
    client.send(body + '.\r\nQUIT\r\n');
    const after = await client.lines(4);
    assert.match(after[0]!, /^250 2\.0\.0 <ann@example\.com>/);
    assert.match(after[1]!, /^250 2\.0\.0 <ben@example\.com>/);
    assert.match(after[2]!, /^452 4\.2\.2 /);
    assert.equal(after[3], '221 2.0.0 Bye');
    socket.destroy();
  });

  it('Python poplib downloads and deletes the copy; the UPDATE state moves it to Trash', { skip: hasPython ? false : 'python3 poplib missing' }, async () => {
    const r = await run('python3', ['-c', POPLIB, '127.0.0.1', String(pop3.port), 'ann', 'pw-ann', '1']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { count: number; uidls: string[]; messages: string[] };
    assert.equal(out.count, 1);
    assert.match(out.messages[0]!, /^Return-Path: <news@remote\.example>\r\nDelivered-To: ann@example\.com\r\n/);
    assert.match(out.messages[0]!, /Subject: Acceptance/);
    const user = (await app.storage.users.getByUsername('ann'))!;
    const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
    const trash = (await app.storage.mailboxes.getBySpecialUse(user.id, '\\Trash'))!;
    assert.equal((await app.storage.messages.index(inbox.id)).length, 0);
    const moved = await app.storage.messages.index(trash.id);
    assert.equal(moved.length, 1);
    assert.ok(moved[0]!.flags.includes('\\Seen'));
  });

  it('curl reads the other copy over pop3://', { skip: hasCurl ? false : 'curl missing' }, async () => {
    const list = await run('curl', ['-s', '--user', 'ben:pw-ben', `pop3://127.0.0.1:${pop3.port}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^1 \d+\r?\n/);
    const message = await run('curl', ['-s', '--user', 'ben:pw-ben', `pop3://127.0.0.1:${pop3.port}/1`]);
    assert.equal(message.code, 0, message.stderr);
    assert.match(message.stdout, /^Return-Path: <news@remote\.example>\r\nDelivered-To: ben@example\.com\r\n/);
    assert.match(message.stdout, /Subject: Acceptance/);
  });
});
