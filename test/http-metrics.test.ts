/**
 * GET /metrics over real HTTP after an IMAP session, an LMTP delivery and a POP3 session on the same app:
 * connections per protocol (open and total), commands by protocol, verb and status with durations, deliveries
 * by outcome, errors by code. The registry belongs to the App, so a second app counts nothing of the first.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { login, message } from './helpers/imap-harness.ts';
import { lmtpDeliver } from './helpers/lmtp-deliver.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';
import { servePop3 } from '../protocols/pop3.ts';

/** The value of one sample line, e.g. `wildduck_connections_total{protocol="imap"}`; 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return 0;
}

describe('GET /metrics', () => {
  let t: HttpTestApp;

  before(async () => {
    t = await bootHttpTestApp();
    const res = await t.request('POST', '/users', { body: { username: 'alice', password: 'secret', address: 'alice@example.com' } });
    assert.equal(res.status, 200);
  });
  after(() => t.close());

  it('counts connections, commands, deliveries and errors of every protocol', async () => {
    // IMAP: LOGIN, SELECT, a failing SELECT, LOGOUT
    const imap = await login(t.app);
    assert.match(await imap.status('SELECT INBOX'), /^OK/);
    assert.match(await imap.status('SELECT Nowhere'), /^NO \[NONEXISTENT\]/);
    let mid = await t.request('GET', '/metrics');
    assert.equal(sample(mid.body, 'wildduck_connections{protocol="imap"}'), 1, 'one IMAP session open now');
    await imap.command('LOGOUT');
    await imap.done;

    // LMTP: one copy stored, one recipient refused at RCPT
    const replies = await lmtpDeliver(t.app, 'sender@example.net', ['alice@example.com', 'nobody@example.com'], message('Metrics'));
    assert.equal(replies.length, 1);
    assert.match(replies[0]!, /^250/);

    // POP3: USER, PASS, STAT, a bad RETR, QUIT
    const { client: socket, server } = memoryPair();
    const done = servePop3(t.app, memoryConnection(server));
    const pop = new TranscriptClient(socket);
    assert.match((await pop.line())!, /^\+OK/);
    for (const [cmd, want] of [
      ['USER alice', /^\+OK/],
      ['PASS secret', /^\+OK/],
      ['STAT', /^\+OK 1 /],
      ['RETR 9', /^-ERR/],
      ['QUIT', /^\+OK/],
    ] as const) {
      pop.cmd(cmd);
      assert.match((await pop.line())!, want, cmd);
    }
    await done;

    const res = await t.request('GET', '/metrics');
    assert.equal(res.status, 200);
    const text = res.body as string;
    for (const line of text.trim().split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+)$/, line);
    }
    assert.match(text, /^# TYPE wildduck_connections_total counter$/m);
    assert.match(text, /^# TYPE wildduck_connections gauge$/m);
    assert.match(text, /^# TYPE wildduck_command_duration_seconds histogram$/m);
    for (const protocol of ['imap', 'lmtp', 'pop3']) {
      assert.equal(sample(text, `wildduck_connections_total{protocol="${protocol}"}`), 1, `${protocol} connections`);
      assert.equal(sample(text, `wildduck_connections{protocol="${protocol}"}`), 0, `${protocol} closed`);
    }
    const commands = (protocol: string, command: string, status: string) => sample(text, `wildduck_commands_total{protocol="${protocol}",command="${command}",status="${status}"}`);
    assert.equal(commands('imap', 'LOGIN', 'OK'), 1);
    assert.equal(commands('imap', 'SELECT', 'OK'), 1);
    assert.equal(commands('imap', 'SELECT', 'NO'), 1);
    assert.equal(commands('imap', 'LOGOUT', 'OK'), 1);
    assert.equal(commands('lmtp', 'LHLO', '250'), 1);
    assert.equal(commands('lmtp', 'RCPT', '250'), 1);
    assert.equal(commands('lmtp', 'RCPT', '550'), 1);
    assert.equal(commands('lmtp', 'DATA', '250'), 1);
    assert.equal(commands('pop3', 'PASS', '+OK'), 1);
    assert.equal(commands('pop3', 'RETR', '-ERR'), 1);
    assert.equal(sample(text, 'wildduck_command_duration_seconds_count{protocol="imap",command="SELECT"}'), 2);
    assert.equal(sample(text, 'wildduck_command_duration_seconds_bucket{protocol="pop3",command="STAT",le="+Inf"}'), 1);
    assert.equal(sample(text, 'wildduck_deliveries_total{outcome="stored",code=""}'), 1);
    assert.equal(sample(text, 'wildduck_errors_total{protocol="imap",code="NONEXISTENT"}'), 1);
    assert.equal(sample(text, 'wildduck_errors_total{protocol="lmtp",code="5.1.1"}'), 1);
    assert.equal(sample(text, 'wildduck_errors_total{protocol="pop3",code="-ERR"}'), 1);
    // the API's own requests: the scrape before this one
    assert.equal(sample(text, 'wildduck_http_requests_total{method="GET",route="/metrics",status="200"}'), 1);
    assert.ok(sample(text, 'wildduck_process_start_time_seconds') > 0);

    const denied = await t.request('GET', '/users/0000000000000000000f423f');
    assert.equal(denied.status, 404);
    const after = (await t.request('GET', '/metrics')).body as string;
    assert.equal(sample(after, `wildduck_errors_total{protocol="http",code="${denied.body.code}"}`), 1);
  });

  it('bounds command labels from client input and keeps apps apart', async () => {
    const other = await bootHttpTestApp();
    try {
      const { client: socket, server } = memoryPair();
      const done = servePop3(other.app, memoryConnection(server));
      const pop = new TranscriptClient(socket);
      await pop.line();
      for (let i = 0; i < 80; i++) {
        pop.cmd(`X${i}`);
        const reply = await pop.line();
        if (reply === null || /Too many/.test(reply)) break;
      }
      await done;
      for (let i = 0; i < 100; i++) other.app.metrics.command({ protocol: 'imap', verb: `V${i}`, status: 'BAD', ok: false, code: null, seconds: 0 });
      other.app.metrics.command({ protocol: 'imap', verb: 'x\n"}', status: 'BAD', ok: false, code: null, seconds: 0 });
      const text = (await other.request('GET', '/metrics')).body as string;
      const imapVerbs = new Set([...text.matchAll(/^wildduck_commands_total\{protocol="imap",command="([^"]+)"/gm)].map((m) => m[1]));
      assert.equal(imapVerbs.size, 65, '64 verbs plus OTHER');
      assert.equal(sample(text, 'wildduck_commands_total{protocol="imap",command="OTHER",status="BAD"}'), 37);
      assert.equal(sample(text, 'wildduck_connections_total{protocol="imap"}'), 0, "the first app's IMAP session is not here");
      assert.equal(sample(text, 'wildduck_connections_total{protocol="pop3"}'), 1);
      const verbs = new Set([...text.matchAll(/^wildduck_commands_total\{protocol="pop3",command="([^"]+)"/gm)].map((m) => m[1]));
      assert.ok(verbs.size <= 65, `at most 64 verbs plus OTHER, got ${verbs.size}`);
    } finally {
      await other.close();
    }
  });
});
