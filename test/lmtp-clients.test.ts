/**
 * Real LMTP clients against a real socket: nodemailer's LMTP transport and swaks (`--protocol LMTP`, when
 * installed), delivering to users on the real stack; the stored copies are read back through the storage ports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { bootApp } from '../protocols/server.ts';
import { lmtpHandler } from '../protocols/lmtp.ts';
import { startPlainListener } from '../protocols/plain-listener.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { App } from '../hooks/app.ts';
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
  let listener: { port: number; close(): Promise<void> };
  const users: Record<string, string> = {};

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-lmtp-clients-'));
    const config = resolveConfig({ dataDir, plugins: ['quota'] });
    app = await bootApp(config, createLogger({ level: 'silent' }));
    for (const name of ['alice', 'bob']) {
      users[name] = (await createUser(app.storage, config, { username: name, password: 'pw', addresses: [`${name}@example.com`] })).user.id;
    }
    listener = await startPlainListener({ name: 'lmtp', host: '127.0.0.1', port: 0, log: app.log, onConnection: lmtpHandler(app, { hostname: 'mx.test' }) });
  });
  after(async () => {
    await listener.close();
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
});
