/**
 * Junk notification end to end: IMAP MOVE/COPY into and out of Junk, webhooks received by a real HTTP server on
 * loopback (signature checked), a retry after a failed first delivery, a queue that survives a restart, and
 * the learn request carrying the raw message.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootImapTestApp, login, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { signBody } from '../plugins/junk-notify.ts';
import type { JunkEvent } from '../plugins/junk-notify.ts';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A loopback HTTP server recording requests; `status()` decides each answer. */
async function receiver(status: (n: number) => number = () => 200) {
  const received: Received[] = [];
  let count = 0;
  const waiters: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const code = status(++count);
      if (code === 200) received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(code).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    port,
    received,
    attempts: () => count,
    async waitFor(n: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`got ${received.length} of ${n} requests`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const SECRET = 'test-secret';
const fast = { retry: { attempts: 5, baseMs: 50, maxMs: 200 }, pollMs: 50 };

describe('junk-notify plugin', () => {
  let hooks: Awaited<ReturnType<typeof receiver>>;
  let t: ImapTestApp;
  before(async () => {
    hooks = await receiver();
    t = await bootImapTestApp({
      plugins: [['junk-notify', { webhooks: [{ url: hooks.url('/events'), secret: SECRET }], learn: { spamUrl: hooks.url('/learnspam'), hamUrl: hooks.url('/learnham'), headers: { password: 'q1' } }, ...fast }]],
    });
  });
  after(async () => {
    await t.close();
    await hooks.close();
  });

  it('MOVE into Junk sends a signed marked.spam webhook and a learn request; MOVE out sends marked.ham', async () => {
    const client = await login(t.app);
    assert.match(await appendMessage(client, 'INBOX', message('spammy')), /^OK/);
    assert.match(await client.status('SELECT INBOX'), /^OK/);
    assert.match(await client.status('MOVE 1 Junk'), /^OK/);
    await hooks.waitFor(2);
    const event = hooks.received.find((r) => r.path === '/events')!;
    assert.equal(event.headers['x-wildduck-signature'], signBody(SECRET, event.body));
    assert.equal(event.headers['x-wildduck-event'], 'marked.spam');
    const body = JSON.parse(event.body) as JunkEvent;
    assert.equal(body.event, 'marked.spam');
    assert.equal(body.user.username, 'alice');
    assert.equal(body.from.path, 'INBOX');
    assert.equal(body.to.path, 'Junk');
    assert.equal(body.message.messageId, '<spammy@example.com>');
    assert.equal(body.action, 'move');
    assert.equal(body.via, 'imap');
    const learn = hooks.received.find((r) => r.path === '/learnspam')!;
    assert.equal(learn.headers.password, 'q1');
    assert.match(learn.body, /^From: Bob <bob@example.com>\r\n/);
    assert.ok(learn.body.includes('Subject: spammy'));

    assert.match(await client.status('SELECT Junk'), /^OK/);
    assert.match(await client.status('MOVE 1 INBOX'), /^OK/);
    await hooks.waitFor(4);
    const ham = hooks.received.slice(2).find((r) => r.path === '/events')!;
    assert.equal((JSON.parse(ham.body) as JunkEvent).event, 'marked.ham');
    assert.ok(hooks.received.slice(2).some((r) => r.path === '/learnham'));
  });

  it('COPY into Junk counts as spam; moves between other mailboxes send nothing', async () => {
    const client = await login(t.app);
    assert.match(await client.status('SELECT INBOX'), /^OK/);
    const before = hooks.received.length;
    assert.match(await client.status('COPY 1 Trash'), /^OK/);
    assert.match(await client.status('COPY 1 Junk'), /^OK/);
    await hooks.waitFor(before + 2);
    await new Promise((r) => setTimeout(r, 200));
    const events = hooks.received.slice(before).filter((r) => r.path === '/events').map((r) => JSON.parse(r.body) as JunkEvent);
    assert.deepEqual(events.map((e) => [e.event, e.action, e.to.path]), [['marked.spam', 'copy', 'Junk']]);
  });
});

describe('junk-notify delivery guarantees', () => {
  it('retries after a failed first delivery with the same delivery id', async () => {
    const hooks = await receiver((n) => (n === 1 ? 500 : 200));
    const t = await bootImapTestApp({ plugins: [['junk-notify', { webhooks: [{ url: hooks.url('/e'), secret: SECRET }], ...fast }]] });
    try {
      const client = await login(t.app);
      assert.match(await appendMessage(client, 'INBOX', message('retry')), /^OK/);
      assert.match(await client.status('SELECT INBOX'), /^OK/);
      assert.match(await client.status('MOVE 1 Junk'), /^OK/);
      await hooks.waitFor(1);
      assert.equal(hooks.attempts(), 2);
      assert.equal((JSON.parse(hooks.received[0]!.body) as JunkEvent).event, 'marked.spam');
      assert.ok(t.logs.some((e) => e.msg === 'junk notification will be retried' && e.error === 'HTTP 500'));
    } finally {
      await t.close();
      await hooks.close();
    }
  });

  it('keeps the queue across a restart while the receiver is down; the command never waits for it', async () => {
    const queueDir = mkdtempSync(join(tmpdir(), 'wd-junkq-'));
    const down = await receiver();
    const port = down.port;
    await down.close(); // nothing listens on this port now
    const url = `http://127.0.0.1:${port}/e`;
    const options = { webhooks: [{ url, secret: SECRET }], queueDir, retry: { attempts: 50, baseMs: 100, maxMs: 100 }, pollMs: 100, timeoutMs: 500 };
    try {
      const first = await bootImapTestApp({ plugins: [['junk-notify', options]] });
      const client = await login(first.app);
      assert.match(await appendMessage(client, 'INBOX', message('durable')), /^OK/);
      assert.match(await client.status('SELECT INBOX'), /^OK/);
      const started = Date.now();
      assert.match(await client.status('MOVE 1 Junk'), /^OK/);
      assert.ok(Date.now() - started < 1000, 'MOVE answered without waiting for the webhook');
      assert.equal(readdirSync(queueDir).filter((n) => n.endsWith('.json')).length, 1);
      await first.close();

      // back up on the same port, a new server process (app) with the same queue
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          got.push(Buffer.concat(chunks).toString('utf8'));
          res.writeHead(200).end();
        });
      });
      const got: string[] = [];
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      const second = await bootImapTestApp({ plugins: [['junk-notify', options]] });
      try {
        const deadline = Date.now() + 5000;
        while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(got.length, 1);
        assert.equal((JSON.parse(got[0]!) as JunkEvent).message.messageId, '<durable@example.com>');
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(readdirSync(queueDir).filter((n) => n.endsWith('.json')).length, 0);
      } finally {
        await second.close();
        await new Promise<void>((r) => server.close(() => r()));
      }
    } finally {
      rmSync(queueDir, { recursive: true, force: true });
    }
  });

  it('fails at boot on a bad webhook URL, naming the option', async () => {
    await assert.rejects(bootImapTestApp({ plugins: [['junk-notify', { webhooks: [{ url: 'not a url', secret: 'x' }] }]] }), /plugins\[0\] \(junk-notify\)\.webhooks\[0\]\.url/);
  });
});
