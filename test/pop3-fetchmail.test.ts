/**
 * Real POP3 clients from apt against the POP3 listeners over loopback while an IMAP session sits in IDLE on the
 * same INBOX. fetchmail (plaintext, STLS declined): messages delivered over LMTP, fetched and kept (the IMAP
 * session hears the \Seen flags the POP3 UPDATE state sets), then fetched and deleted (it hears the EXPUNGEs; the
 * copies are in Trash, \Seen, per pop3.deleteMode 'trash'). getmail6 over POP3S (implicit TLS) through an external
 * MDA, deleting. Each test is skipped only when its client is not installed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPop3 } from '../protocols/pop3.ts';
import type { TcpListener } from '../protocols/net/listener.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';
import { loadTlsContext } from '../protocols/net/tls.ts';
import { bootImapTestApp, login, message } from './helpers/imap-harness.ts';
import type { ImapTestApp, TestClient } from './helpers/imap-harness.ts';
import { lmtpDeliver } from './helpers/lmtp-deliver.ts';

function run(file: string, args: string[], env?: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000, env: env as NodeJS.ProcessEnv | undefined }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const hasFetchmail = (await run('fetchmail', ['--version'])).code <= 1; // prints its version and exits 1 when it has nothing to poll
const hasGetmail = (await run('getmail', ['--version'])).code === 0;

/** Reads untagged lines from an IDLE session until `count` lines match `pattern` (other lines are kept too). */
async function idleLines(client: TestClient, pattern: RegExp, count: number): Promise<string[]> {
  const lines: string[] = [];
  while (lines.filter((l) => pattern.test(l)).length < count) lines.push(await client.line(10_000));
  return lines;
}

describe('POP3 with fetchmail and getmail6 while IMAP watches', () => {
  let t: ImapTestApp;
  let pop3: TcpListener;
  let pop3s: TcpListener;
  let dir: string;

  before(async () => {
    t = await bootImapTestApp({ pop3: { host: '127.0.0.1', port: 0, tlsPort: 0 } });
    [pop3, pop3s] = (await startPop3(t.app, await loadTlsContext(t.app.config, t.app.log))) as [TcpListener, TcpListener];
    dir = mkdtempSync(join(tmpdir(), 'wd-fetchmail-'));
  });
  after(async () => {
    await pop3?.close();
    await pop3s?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One fetchmail run into `out/` (one file per message through --mda); `keep` leaves the messages on the server. */
  async function fetchmail(out: string, keep: boolean): Promise<string[]> {
    mkdirSync(out, { recursive: true });
    const rc = join(dir, 'fetchmailrc');
    writeFileSync(rc, `poll 127.0.0.1 proto POP3 port ${pop3.port} auth password user "alice" password "secret"\n`);
    chmodSync(rc, 0o600); // fetchmail refuses a readable rc file
    const r = await run(
      'fetchmail',
      // --sslproto '': plaintext on loopback, the offered STLS declined (TLS is the getmail6 test's part)
      ['-f', rc, '--nosyslog', '--nodetach', '--all', '--sslproto', '', keep ? '--keep' : '--nokeep', '--mda', `sh -c 'cat > "${out}/msg.$$"'`],
      { ...runtimeEnv(), HOME: dir, FETCHMAILHOME: dir },
    );
    assert.equal(r.code, 0, `fetchmail exited ${r.code}: ${r.stdout}\n${r.stderr}`);
    return readdirSync(out).map((f) => readFileSync(join(out, f), 'utf8'));
  }

  it('fetchmail downloads (keep) then deletes three LMTP deliveries; the IDLE session hears \\Seen, then EXPUNGE', { skip: hasFetchmail ? false : 'fetchmail is not installed (apt-get install fetchmail)', timeout: 60_000 }, async () => {
    for (const subject of ['pop one', 'pop two', 'pop three']) {
      const [reply] = await lmtpDeliver(t.app, 'bob@example.com', ['alice@example.com'], message(subject, `Body of ${subject}.\r\n`));
      assert.match(reply!, /^250 /);
    }
    const imap = await login(t.app);
    const selected = await imap.command('SELECT INBOX');
    assert.ok(selected.includes('* 3 EXISTS'), selected.join('\n'));
    assert.deepEqual(await imap.command('FETCH 1:* (FLAGS)'), ['* 1 FETCH (FLAGS (\\Recent))', '* 2 FETCH (FLAGS (\\Recent))', '* 3 FETCH (FLAGS (\\Recent))', 'TAG OK FETCH completed']);
    imap.write('I1 IDLE\r\n');
    assert.equal(await imap.line(), '+ idling');

    // first run keeps the messages: the POP3 UPDATE state marks what was retrieved \Seen
    const kept = await fetchmail(join(dir, 'kept'), true);
    assert.equal(kept.length, 3);
    for (const subject of ['pop one', 'pop two', 'pop three']) {
      const text = kept.find((m) => m.includes(`Subject: ${subject}\n`) || m.includes(`Subject: ${subject}\r\n`));
      assert.ok(text, `fetchmail wrote ${subject}`);
      assert.match(text, /Delivered-To: alice@example\.com/);
      assert.match(text, new RegExp(`Body of ${subject}\\.`));
    }
    const seen = await idleLines(imap, /^\* \d FETCH \(FLAGS \(.*\\Seen/, 3);
    assert.deepEqual(seen.filter((l) => / FETCH /.test(l)).map((l) => l.replace(/ UID \d+/, '')).sort(), [
      '* 1 FETCH (FLAGS (\\Seen \\Recent))',
      '* 2 FETCH (FLAGS (\\Seen \\Recent))',
      '* 3 FETCH (FLAGS (\\Seen \\Recent))',
    ]);

    // second run deletes them: QUIT moves them to Trash, the watching session hears the EXPUNGEs
    const deleted = await fetchmail(join(dir, 'deleted'), false);
    assert.equal(deleted.length, 3);
    const expunged = await idleLines(imap, /^\* \d EXPUNGE$/, 3);
    assert.equal(expunged.filter((l) => /EXPUNGE/.test(l)).length, 3, expunged.join('\n'));
    imap.write('DONE\r\n');
    assert.equal(await imap.line(), 'I1 OK IDLE terminated');
    assert.deepEqual(await imap.command('NOOP'), ['TAG OK NOOP completed']);
    assert.match((await imap.command('STATUS INBOX (MESSAGES)'))[0]!, /MESSAGES 0/);

    const trash = await imap.command('EXAMINE Trash');
    assert.ok(trash.includes('* 3 EXISTS'), trash.join('\n'));
    const flags = await imap.command('FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.equal(flags.filter((l) => /^\* \d FETCH \(FLAGS \(\\Seen( \\Recent)?\)/.test(l)).length, 3, flags.join('\n'));
    for (const subject of ['pop one', 'pop two', 'pop three']) assert.ok(flags.some((l) => l.includes(`Subject: ${subject}`)), subject);
    imap.end();
  });

  it('getmail6 over POP3S (implicit TLS) downloads and deletes; the IDLE session hears the EXPUNGEs', { skip: hasGetmail ? false : 'getmail6 is not installed (apt-get install getmail6)', timeout: 60_000 }, async () => {
    for (const subject of ['tls one', 'tls two']) {
      const [reply] = await lmtpDeliver(t.app, 'bob@example.com', ['alice@example.com'], message(subject, `Body of ${subject}.\r\n`));
      assert.match(reply!, /^250 /);
    }
    const imap = await login(t.app);
    const selected = await imap.command('SELECT INBOX');
    assert.ok(selected.includes('* 2 EXISTS'), selected.join('\n'));
    imap.write('I1 IDLE\r\n');
    assert.equal(await imap.line(), '+ idling');

    const home = join(dir, 'getmail');
    const out = join(home, 'out');
    mkdirSync(out, { recursive: true });
    const rc = join(home, 'getmailrc');
    // an external MDA writing one file per message (getmail6 refuses Maildir delivery as root, which CI runs as)
    writeFileSync(
      rc,
      `[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\nport = ${pop3s.port}\nusername = alice\npassword = secret\n\n` +
        `[destination]\ntype = MDA_external\npath = /bin/sh\narguments = ("-c", "cat > ${out}/msg.$$")\nallow_root_commands = true\n\n` +
        `[options]\nread_all = true\ndelete = true\nverbose = 0\n`,
    );
    // no ca_certs in the rc file: getmail6 accepts the generated self-signed certificate
    const r = await run('getmail', ['--rcfile', rc, '--getmaildir', home], { ...runtimeEnv(), HOME: home });
    assert.equal(r.code, 0, `getmail exited ${r.code}: ${r.stdout}\n${r.stderr}`);
    const files = readdirSync(out).map((f) => readFileSync(join(out, f), 'utf8'));
    assert.equal(files.length, 2);
    for (const subject of ['tls one', 'tls two']) assert.ok(files.some((m) => m.includes(`Subject: ${subject}`) && m.includes(`Body of ${subject}.`)), subject);

    const lines = await idleLines(imap, /^\* \d EXPUNGE$/, 2);
    assert.equal(lines.filter((l) => /EXPUNGE/.test(l)).length, 2, lines.join('\n'));
    imap.write('DONE\r\n');
    assert.equal(await imap.line(), 'I1 OK IDLE terminated');
    assert.match((await imap.command('STATUS INBOX (MESSAGES)'))[0]!, /MESSAGES 0/);
    const trash = await imap.command('STATUS Trash (MESSAGES UNSEEN)');
    assert.match(trash[0]!, /MESSAGES \d+ UNSEEN 0/, 'deleted copies went to Trash, read');
    imap.end();
  });
});
