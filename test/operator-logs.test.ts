/**
 * Logs an operator acts on, read from a real server (IMAP, POP3, LMTP and HTTP listeners on loopback) with both log
 * formats written at once: connection opened/closed lines (address, port, PROXY client, duration, reason), the user
 * on every line of a logged-in session, `login failed` for every protocol, LMTP `delivery` lines, the HTTP request
 * line, and the fail2ban filters of README.md ("Logs") run as JavaScript regular expressions against those lines.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { createLogger } from '../hooks/log.ts';
import type { LogFields, Logger } from '../hooks/log.ts';
import { startListeners } from '../protocols/server.ts';
import { bootImapTestApp } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { connectRaw, lineClient } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';

/** Every entry goes to both loggers: one JSON line and one pretty line per entry. */
function tee(a: Logger, b: Logger): Logger {
  return {
    level: a.level,
    trace: (m, f) => (a.trace(m, f), b.trace(m, f)),
    debug: (m, f) => (a.debug(m, f), b.debug(m, f)),
    info: (m, f) => (a.info(m, f), b.info(m, f)),
    warn: (m, f) => (a.warn(m, f), b.warn(m, f)),
    error: (m, f) => (a.error(m, f), b.error(m, f)),
    child: (fields) => tee(a.child(fields), b.child(fields)),
  };
}

/** What the server logged: entries, their JSON lines and pretty lines (same order), and a wait for an entry. */
class LogCapture {
  readonly entries: LogFields[] = [];
  readonly json: string[] = [];
  readonly pretty: string[] = [];
  #waiters: Array<() => void> = [];
  readonly logger: Logger = tee(
    createLogger({
      level: 'debug',
      format: 'json',
      sink: (line, entry) => {
        this.json.push(line);
        this.entries.push(entry);
        for (const wake of this.#waiters.splice(0)) wake();
      },
    }),
    createLogger({ level: 'debug', format: 'pretty', sink: (line) => this.pretty.push(line) }),
  );

  /** The first entry `test` accepts, once it is logged. */
  async waitFor(test: (entry: LogFields) => boolean, what: string): Promise<LogFields> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const found = this.entries.find(test);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no log entry: ${what}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, 1000);
        this.#waiters.push(() => (clearTimeout(timer), wake()));
      });
    }
  }
}

/** The `failregex` lines of README.md's fail2ban section, as JavaScript: <HOST> and <F-USER> become named groups. */
function readmeFilters(): { json: RegExp; text: RegExp } {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const regexes = [...readme.matchAll(/^failregex = (.+)$/gm)].map((m) =>
    new RegExp(m[1]!.replace('<HOST>', '(?<host>[0-9A-Fa-f:.]+)').replace('<F-USER>', '(?<user>').replace('</F-USER>', ')')),
  );
  assert.equal(regexes.length, 2, 'README has the JSON and the text filter');
  const text = regexes.find((r) => r.source.startsWith('^'))!;
  return { json: regexes.find((r) => r !== text)!, text };
}

/** What a filter finds in `lines`: the address and the user name (JSON-decoded) of each matching line. */
function bans(filter: RegExp, lines: readonly string[]): Array<{ host: string; user: string }> {
  const found: Array<{ host: string; user: string }> = [];
  for (const line of lines) {
    const m = filter.exec(line);
    if (m) found.push({ host: m.groups!.host!, user: JSON.parse(`"${m.groups!.user!}"`) as string });
  }
  return found;
}

function connectFrom(port: number, localAddress: string): Promise<LineClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = netConnect({ port, host: '127.0.0.1', localAddress }, () => {
      socket.off('error', reject);
      resolve(lineClient(socket));
    });
    socket.once('error', reject);
  });
}

/** Sends an IMAP command and returns its tagged line. */
async function imap(client: LineClient, tag: string, command: string): Promise<string> {
  client.send(`${tag} ${command}\r\n`);
  for (;;) {
    const line = await client.line(20_000);
    if (line.startsWith(`${tag} `)) return line;
  }
}

async function say(client: LineClient, command: string): Promise<string> {
  client.send(`${command}\r\n`);
  return client.line(20_000);
}

function plain(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
}

function http(port: number, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...(token ? { 'x-access-token': token } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.once('error', reject);
    req.end(data);
  });
}

/** A user name that tries to end its line and forge a failed login of another address, in both formats. */
const FORGER = 'x"}\r\n{"time":"2026-01-01T00:00:00.000Z","msg":"login failed","ip":"6.6.6.6","user":"y"}\u2028' + '21:00:00.000 INFO  login failed {"ip":"6.6.6.6","user":"y"}';

describe('operator logs from a running server', () => {
  const logs = new LogCapture();
  let t: ImapTestApp;
  let listeners: Awaited<ReturnType<typeof startListeners>> = [];
  const ports: Record<string, number> = {};
  let filters: { json: RegExp; text: RegExp };

  before(async () => {
    filters = readmeFilters();
    const local = { host: '127.0.0.1', port: 0, tlsPort: null };
    t = await bootImapTestApp(
      {
        auth: { allowPlaintext: true, failedLogins: { delayMs: 0 } },
        imap: { enabled: true, ...local, proxyProtocol: true },
        pop3: { enabled: true, ...local },
        lmtp: { enabled: true, ...local },
        api: { enabled: true, host: '127.0.0.1', port: 0 },
      },
      logs.logger,
    );
    listeners = await startListeners(t.app);
    for (const l of listeners) {
      const m = /^(\w+):\/\/[^:]+:(\d+)$/.exec(l.describe)!;
      ports[m[1]!] = Number(m[2]);
    }
  });

  after(async () => {
    for (const l of listeners) await l.close();
    await t?.close();
  });

  it('IMAP behind PROXY: open and close lines, failed logins for fail2ban, the user on every later line', { timeout: 60_000 }, async () => {
    const socket = await connectRaw(ports.imap!, new TextEncoder().encode('PROXY TCP4 198.51.100.7 127.0.0.1 40001 143\r\n'));
    const client = lineClient(socket);
    assert.match(await client.line(20_000), /^\* OK/);
    const opened = await logs.waitFor((e) => e.msg === 'connection opened' && e.ip === '198.51.100.7', 'IMAP connection opened');
    assert.equal(opened.protocol, 'imap');
    assert.equal(opened.port, 40001, 'the PROXY header names the client');
    const session = opened.session;
    assert.equal(typeof session, 'string');

    assert.match(await imap(client, 'a1', 'LOGIN mallory wrong'), /^a1 NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imap(client, 'a2', `AUTHENTICATE PLAIN ${plain(FORGER, 'wrong')}`), /^a2 NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imap(client, 'a3', 'LOGIN alice secret'), /^a3 OK/);
    assert.match(await imap(client, 'a4', 'NOOP'), /^a4 OK/);
    assert.match(await imap(client, 'a5', 'LOGOUT'), /^a5 OK/);
    const closed = await logs.waitFor((e) => e.msg === 'connection closed' && e.session === session, 'IMAP connection closed');
    assert.equal(closed.ip, '198.51.100.7');
    assert.equal(closed.reason, 'quit');
    assert.equal(closed.user, 'alice');
    assert.equal(typeof closed.seconds, 'number');

    const mine = logs.entries.filter((e) => e.session === session);
    const failed = mine.filter((e) => e.msg === 'login failed');
    assert.deepEqual(
      failed.map((e) => [e.ip, e.user, e.method, e.reason]),
      [
        ['198.51.100.7', 'mallory', 'LOGIN', 'AUTHENTICATIONFAILED'],
        ['198.51.100.7', FORGER, 'PLAIN', 'AUTHENTICATIONFAILED'],
      ],
    );
    const login = mine.find((e) => e.msg === 'login')!;
    assert.deepEqual([login.ip, login.user, login.userId, login.method], ['198.51.100.7', 'alice', t.userId, 'LOGIN']);
    // after the login every line of the session names the user; before it none does
    const at = mine.indexOf(login);
    assert.ok(mine.slice(at + 1).every((e) => e.user === 'alice'), 'user bound after login');
    assert.ok(mine.slice(0, at).every((e) => e.msg === 'login failed' || e.user === undefined), 'no user before login');
    const noop = mine.find((e) => e.msg === 'command' && e.command === 'NOOP')!;
    assert.equal(noop.user, 'alice');
    // the successful LOGIN's command line names its response code, without the capability list
    const loginCommand = mine.find((e) => e.msg === 'command' && e.command === 'LOGIN' && e.status === 'OK')!;
    assert.equal(loginCommand.code, 'CAPABILITY');
    assert.ok(!logs.json.some((line) => line.includes('IMAP4rev1')), 'no capability list in any line');

    // README's filters on the lines of this session: the two failures, with the PROXY client's address
    const jsonLines = logs.json.filter((_line, i) => logs.entries[i]!.session === session);
    const prettyLines = logs.pretty.filter((_line, i) => logs.entries[i]!.session === session);
    for (const lines of [jsonLines, prettyLines]) {
      assert.ok(lines.every((line) => !/[\r\n\u0085\u2028\u2029]/.test(line)), 'one entry, one line');
    }
    const expected = [
      { host: '198.51.100.7', user: 'mallory' },
      { host: '198.51.100.7', user: FORGER },
    ];
    assert.deepEqual(bans(filters.json, jsonLines), expected);
    assert.deepEqual(bans(filters.text, prettyLines), expected);
    // the forged text inside the user name matches nowhere else, and a successful login matches neither filter
    const loginLine = logs.entries.indexOf(login);
    assert.equal(filters.json.exec(logs.json[loginLine]!), null);
    assert.equal(filters.text.exec(logs.pretty[loginLine]!), null);
  });

  it('POP3: USER/PASS and AUTH PLAIN failures match the filters with the client address; QUIT closes with "quit"', { timeout: 60_000 }, async () => {
    const client = await connectFrom(ports.pop3!, '127.0.0.3');
    assert.match(await client.line(20_000), /^\+OK/);
    const opened = await logs.waitFor((e) => e.msg === 'connection opened' && e.protocol === 'pop3' && e.ip === '127.0.0.3', 'POP3 connection opened');
    const session = opened.session;
    assert.equal(typeof opened.port, 'number');
    assert.match(await say(client, 'USER bob'), /^\+OK/);
    assert.match(await say(client, 'PASS wrong'), /^-ERR/);
    assert.match(await say(client, `AUTH PLAIN ${plain('carol\r\nx', 'wrong')}`), /^-ERR/);
    assert.match(await say(client, 'USER alice'), /^\+OK/);
    assert.match(await say(client, 'PASS secret'), /^\+OK/);
    assert.match(await say(client, 'STAT'), /^\+OK/);
    assert.match(await say(client, 'QUIT'), /^\+OK/);
    const closed = await logs.waitFor((e) => e.msg === 'connection closed' && e.session === session, 'POP3 connection closed');
    assert.deepEqual([closed.ip, closed.reason, closed.user], ['127.0.0.3', 'quit', 'alice']);

    const jsonLines = logs.json.filter((_line, i) => logs.entries[i]!.session === session);
    const prettyLines = logs.pretty.filter((_line, i) => logs.entries[i]!.session === session);
    const expected = [
      { host: '127.0.0.3', user: 'bob' },
      { host: '127.0.0.3', user: 'carol\r\nx' },
    ];
    assert.deepEqual(bans(filters.json, jsonLines), expected);
    assert.deepEqual(bans(filters.text, prettyLines), expected);
    const methods = logs.entries.filter((e) => e.session === session && e.msg === 'login failed').map((e) => e.method);
    assert.deepEqual(methods, ['USER', 'PLAIN']);
    const login = logs.entries.findIndex((e) => e.session === session && e.msg === 'login');
    assert.ok(login >= 0);
    assert.equal(filters.json.exec(logs.json[login]!), null);
    assert.equal(filters.text.exec(logs.pretty[login]!), null);
    const stat = logs.entries.find((e) => e.session === session && e.msg === 'command' && e.command === 'STAT')!;
    assert.equal(stat.user, 'alice');
  });

  it('POP3: a client that drops the connection is logged as "client-closed"', { timeout: 30_000 }, async () => {
    const client = await connectFrom(ports.pop3!, '127.0.0.4');
    assert.match(await client.line(20_000), /^\+OK/);
    const opened = await logs.waitFor((e) => e.msg === 'connection opened' && e.ip === '127.0.0.4', 'connection opened');
    client.close();
    const closed = await logs.waitFor((e) => e.msg === 'connection closed' && e.session === opened.session, 'connection closed');
    assert.equal(closed.reason, 'client-closed');
    assert.equal(closed.user, undefined);
  });

  it('HTTP: a failed POST /authenticate matches the filter; the request line carries ip and the token user', { timeout: 60_000 }, async () => {
    const before = logs.entries.length;
    const refused = await http(ports.http!, 'POST', '/authenticate', { username: 'alice', password: 'wrong' });
    assert.equal(refused.status, 403);
    const failed = await logs.waitFor((e) => e.msg === 'login failed' && e.protocol === 'http', 'HTTP login failed');
    assert.deepEqual([failed.ip, failed.user, failed.method], ['127.0.0.1', 'alice', 'API']);
    const at = logs.entries.indexOf(failed);
    assert.deepEqual(bans(filters.json, [logs.json[at]!]), [{ host: '127.0.0.1', user: 'alice' }]);
    assert.deepEqual(bans(filters.text, [logs.pretty[at]!]), [{ host: '127.0.0.1', user: 'alice' }]);

    const issued = await http(ports.http!, 'POST', '/authenticate', { username: 'alice', password: 'secret', token: true });
    assert.equal(issued.status, 200);
    const me = await http(ports.http!, 'GET', '/users/me', undefined, issued.json.token as string);
    assert.equal(me.status, 200);
    const requests = logs.entries.slice(before).filter((e) => e.msg === 'request');
    const meLine = await logs.waitFor((e) => e.msg === 'request' && e.route === '/users/:user' && logs.entries.indexOf(e) >= before, 'GET /users/me request line');
    assert.deepEqual([meLine.ip, meLine.caller, meLine.user, meLine.userId, meLine.status], ['127.0.0.1', 'user', 'alice', t.userId, 200]);
    assert.ok(requests.every((e) => e.ip === '127.0.0.1'));
    const okLine = logs.entries.findIndex((e, i) => i >= before && e.msg === 'login' && e.protocol === 'http');
    assert.ok(okLine >= 0);
    assert.equal(filters.json.exec(logs.json[okLine]!), null);
  });

  it('LMTP: one delivery line per recipient, with outcome, mailbox, UID and Message-ID; refusals with their code', { timeout: 60_000 }, async () => {
    const client = await connectFrom(ports.lmtp!, '127.0.0.5');
    assert.match(await client.line(20_000), /^220/);
    client.send('LHLO mta.example.net\r\n');
    while (!/^250 /.test(await client.line(20_000)));
    assert.match(await say(client, 'MAIL FROM:<sender@example.net>'), /^250/);
    assert.match(await say(client, 'RCPT TO:<alice@example.com>'), /^250/);
    assert.match(await say(client, 'RCPT TO:<nobody@example.com>'), /^550/);
    assert.match(await say(client, 'DATA'), /^354/);
    client.send('From: sender@example.net\r\nTo: alice@example.com\r\nSubject: logged\r\nMessage-ID: <logged-1@example.net>\r\n\r\nHello.\r\n.\r\n');
    const delivered = await client.line(20_000);
    const uid = Number(/uid (\d+)/.exec(delivered)![1]);
    assert.match(await say(client, 'QUIT'), /^221/);

    const refused = await logs.waitFor((e) => e.msg === 'delivery' && e.recipient === 'nobody@example.com', 'refused recipient');
    assert.deepEqual([refused.at, refused.outcome, refused.code, refused.from], ['rcpt', 'refused', 'NONEXISTENT', 'sender@example.net']);
    const line = await logs.waitFor((e) => e.msg === 'delivery' && e.recipient === 'alice@example.com', 'delivered recipient');
    assert.deepEqual(
      [line.protocol, line.outcome, line.mailbox, line.uid, line.messageId, line.from],
      ['lmtp', 'delivered', 'INBOX', uid, '<logged-1@example.net>', 'sender@example.net'],
    );
    const closed = await logs.waitFor((e) => e.msg === 'connection closed' && e.session === line.session, 'LMTP connection closed');
    assert.deepEqual([closed.ip, closed.reason], ['127.0.0.5', 'quit']);
  });

  it('a session open when the server stops is closed with "shutdown"', { timeout: 60_000 }, async () => {
    const client = await connectFrom(ports.pop3!, '127.0.0.6');
    assert.match(await client.line(20_000), /^\+OK/);
    const opened = await logs.waitFor((e) => e.msg === 'connection opened' && e.ip === '127.0.0.6', 'connection opened');
    for (const l of listeners) await l.close();
    listeners = [];
    const closed = await logs.waitFor((e) => e.msg === 'connection closed' && e.session === opened.session, 'connection closed');
    assert.equal(closed.reason, 'shutdown');
  });
});

describe('log lines stay one line', () => {
  it('escapes CR, LF and Unicode line separators in the message and the fields of both formats', () => {
    for (const format of ['json', 'pretty'] as const) {
      const lines: string[] = [];
      const log = createLogger({ level: 'info', format, sink: (line) => lines.push(line) });
      log.info('first\r\nsecond\u2028third', { user: 'a\nb\u2029c\u0085d' });
      assert.equal(lines.length, 1);
      assert.ok(!/[\r\n\u0085\u2028\u2029]/.test(lines[0]!), `${format}: ${lines[0]}`);
      if (format === 'json') {
        const parsed = JSON.parse(lines[0]!) as LogFields;
        assert.equal(parsed.msg, 'first\r\nsecond\u2028third');
        assert.equal(parsed.user, 'a\nb\u2029c\u0085d');
      } else {
        assert.match(lines[0]!, /INFO {2}first\\r\\nsecond\\u2028third \{"user":"a\\nb\\u2029c\\u0085d"\}$/);
      }
    }
  });
});
