/**
 * Issue 9 defect 8: a slow writer must not keep a half-sent command open by trickling bytes that reset the idle
 * timer. Every command has a time budget from its first byte (commandTimeoutSeconds), extended by the bytes it
 * delivers (1/minBytesPerSecond s each), so an honest slow upload finishes while a trickle is cut off; IMAP, POP3
 * and LMTP (lines and DATA) alike. Before login the idle timeout is shorter (preAuthIdleTimeoutSeconds) and IDLE
 * has its own (idleCommandTimeoutSeconds). Real listeners on loopback, small configured values.
 *
 * Timing margins: the budgets are 1 s; "cut off" assertions allow several seconds, and the honest upload sends
 * at 8x the configured minimum rate, so it passes even if a loaded CI machine runs its timers 4x late.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpListener } from '../protocols/net/listener.ts';
import { startImap } from '../protocols/imap.ts';
import { startPop3 } from '../protocols/pop3.ts';
import { startLmtp } from '../protocols/lmtp.ts';
import { bootImapTestApp } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { connectPlain } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `text` a few bytes at a time until the connection closes or the text is out; returns when done. */
async function trickle(client: LineClient, text: string, bytesPerStep: number, stepMs: number, stop: { done: boolean }): Promise<void> {
  for (let i = 0; i < text.length && !stop.done; i += bytesPerStep) {
    client.send(text.slice(i, i + bytesPerStep));
    await sleep(stepMs);
  }
}

async function untilTagged(client: LineClient, tag: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await client.line(10_000);
    lines.push(line);
    if (line.startsWith(`${tag} `)) return lines;
  }
}

describe('command time budgets and session timeouts (issue 9, defect 8)', () => {
  let t: ImapTestApp;
  let imap: TcpListener;
  let pop3: TcpListener;
  let lmtp: TcpListener;
  const budget = { commandTimeoutSeconds: 1, minBytesPerSecond: 5000, idleTimeoutSeconds: 60 };
  // the deadline of every test's LOGIN too: the first LOGIN of a process takes about 0.5 s, over 1 s on a loaded machine
  const preAuthIdleTimeoutSeconds = 3;

  before(async () => {
    t = await bootImapTestApp({
      imap: { ...budget, preAuthIdleTimeoutSeconds, idleCommandTimeoutSeconds: 1 },
      pop3: { ...budget, port: 0, tlsPort: null },
      lmtp: { ...budget, port: 0, tlsPort: null },
    });
    [imap] = (await startImap(t.app, null)) as [TcpListener];
    [pop3] = (await startPop3(t.app, null)) as [TcpListener];
    [lmtp] = (await startLmtp(t.app, null, { hostname: 'mx.test' })) as [TcpListener];
  });
  after(async () => {
    for (const l of [imap, pop3, lmtp]) await l?.close();
    await t.close();
  });

  const imapLogin = async (): Promise<LineClient> => {
    const client = await connectPlain(imap.port);
    await client.line();
    client.send('L LOGIN alice secret\r\n');
    assert.match(await client.line(), /^L OK /);
    return client;
  };

  it('IMAP: a command line trickled one byte at a time is cut off after its budget, though the idle timer is long', async () => {
    const client = await imapLogin();
    const stop = { done: false };
    const started = performance.now();
    void trickle(client, 'a NOOP' + ' '.repeat(1000), 1, 100, stop);
    assert.equal(await client.line(10_000), '* BYE Command not received in time');
    await client.ended;
    stop.done = true;
    const took = performance.now() - started;
    assert.ok(took >= 900 && took < 8000, `cut off after ${Math.round(took)} ms`);
  });

  it('IMAP: an honest slow APPEND (above minBytesPerSecond) finishes even though it takes longer than the base budget', async () => {
    const client = await imapLogin();
    const body = 'Subject: slow\r\n\r\n' + 'x'.repeat(40_000 - 19) + '\r\n';
    client.send(`A APPEND INBOX {${body.length}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    const started = performance.now();
    // 2000 bytes every 50 ms: 40 KB/s, 8x the minimum; ~1 s of sending, the base budget alone is 1 s
    await trickle(client, body + '\r\n', 2000, 50, { done: false });
    const [reply] = await untilTagged(client, 'A');
    assert.match(reply!, /^A OK \[APPENDUID/);
    assert.ok(performance.now() - started >= 900, 'the upload took at least the base budget');
    client.close();
  });

  it('IMAP: an APPEND literal trickled below minBytesPerSecond is cut off; announcing a size buys no time', async () => {
    const client = await imapLogin();
    client.send('A APPEND INBOX {40000}\r\n');
    assert.equal(await client.line(), '+ Ready for literal data');
    const stop = { done: false };
    void trickle(client, 'x'.repeat(40_000), 100, 100, stop); // 1 KB/s
    assert.equal(await client.line(10_000), '* BYE Command not received in time');
    await client.ended;
    stop.done = true;
  });

  it('IMAP: before login the idle timeout is preAuthIdleTimeoutSeconds; after login idleTimeoutSeconds', async () => {
    const started = performance.now();
    const anonymous = await connectPlain(imap.port);
    await anonymous.line();
    const user = await imapLogin();
    const loggedIn = performance.now();
    assert.equal(await anonymous.line(10_000), '* BYE Autologout; idle for too long');
    await anonymous.ended;
    assert.ok(performance.now() - started >= preAuthIdleTimeoutSeconds * 1000 - 200, 'not before the pre-auth timeout');
    await sleep(Math.max(0, loggedIn + preAuthIdleTimeoutSeconds * 1000 + 600 - performance.now()));
    user.send('N NOOP\r\n');
    assert.equal(await user.line(), 'N OK NOOP completed', 'the logged-in session outlived the pre-auth timeout');
    user.close();
  });

  it('IMAP: IDLE has its own timeout', async () => {
    const client = await imapLogin();
    client.send('I SELECT INBOX\r\n');
    await untilTagged(client, 'I');
    client.send('D IDLE\r\n');
    assert.equal(await client.line(), '+ idling');
    const started = performance.now();
    const lines: string[] = [];
    for (;;) {
      const line = await client.line(10_000).catch(() => null);
      if (line === null) break;
      lines.push(line);
    }
    assert.ok(lines.includes('* BYE Autologout; idle for too long'), lines.join(' | '));
    assert.ok(performance.now() - started >= 800);
  });

  it('POP3: a trickled command line gets -ERR and the connection closes', async () => {
    const client = await connectPlain(pop3.port);
    assert.match(await client.line(), /^\+OK/);
    const stop = { done: false };
    void trickle(client, 'USER ' + 'a'.repeat(500), 1, 100, stop);
    assert.equal(await client.line(10_000), '-ERR Command not received in time, closing connection');
    await client.ended;
    stop.done = true;
  });

  it('LMTP: a trickled line and a trickled DATA body get 421 and the connection closes', async () => {
    const client = await connectPlain(lmtp.port);
    assert.match(await client.line(), /^220 /);
    const stop = { done: false };
    void trickle(client, 'LHLO ' + 'a'.repeat(500), 1, 100, stop);
    assert.equal(await client.line(10_000), '421 4.4.2 Command not received in time, closing connection');
    await client.ended;
    stop.done = true;

    const data = await connectPlain(lmtp.port);
    await data.line();
    data.send('LHLO client.test\r\n');
    while (!(await data.line()).startsWith('250 ')) {
      /* capabilities */
    }
    data.send('MAIL FROM:<a@example.net>\r\n');
    assert.match(await data.line(), /^250 /);
    data.send('RCPT TO:<alice@example.com>\r\n');
    assert.match(await data.line(), /^250 /);
    data.send('DATA\r\n');
    assert.match(await data.line(), /^354 /);
    const stopData = { done: false };
    void trickle(data, 'Subject: x\r\n\r\n' + 'y'.repeat(40_000), 100, 100, stopData); // 1 KB/s
    assert.equal(await data.line(10_000), '421 4.4.2 Command not received in time, closing connection');
    await data.ended;
    stopData.done = true;
  });
});
