/**
 * MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) transcripts: several messages in one APPEND with APPENDUID over a UID
 * set; all or none (a refused message before any commit leaves UIDNEXT untouched; a commit refused after others were
 * committed expunges them again; quota over the batch); a first message read while the command runs followed by more;
 * CATENATE from TEXT literals and URLs of the user's messages (sections, partial, UIDVALIDITY), [BADURL], [TOOBIG],
 * [TRYCREATE], and CATENATE within MULTIAPPEND. (No client at hand sends either: imapflow and imaplib append one
 * message at a time.)
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { bootImapTestApp, connect, login, message } from './helpers/imap-harness.ts';
import type { ImapTestApp, TestClient } from './helpers/imap-harness.ts';
import { deny, POLICY, TRANSFORM } from '../hooks/index.ts';
import type { Plugin } from '../hooks/host.ts';

const size = (text: string) => Buffer.byteLength(text);
/** `{n+}` CRLF text: a LITERAL+ message. */
const lit = (text: string) => `{${size(text)}+}\r\n${text}`;

/**
 * Refuses, at the commit, a message whose subject is "refuse at commit"; before ingest one of 4321 bytes. Replaces a
 * message of 5555 bytes by another without reading it.
 */
const refuser: Plugin = {
  name: 'test-refuser',
  apply(api) {
    api.hooks.message.beforeStore.tapPromise({ stage: POLICY }, async (_ctx, request) =>
      request.declaredSize === 4321 ? deny('CANNOT', 'Refused before ingest') : undefined,
    );
    api.hooks.message.prepare.tap({ stage: TRANSFORM }, (source, _ctx, request) =>
      request.declaredSize === 5555
        ? (async function* () {
            yield new TextEncoder().encode('Subject: replaced\r\n\r\nbody\r\n');
          })()
        : source,
    );
    api.hooks.message.store.tapPromise({ stage: POLICY }, async (_ctx, input) =>
      input.message.subject === 'refuse at commit' ? deny('CANNOT', 'Refused at the commit') : undefined,
    );
  },
};

async function status(client: TestClient, mailbox: string): Promise<string> {
  return (await client.command(`STATUS ${mailbox} (MESSAGES UIDNEXT)`))[0]!;
}

async function bodies(client: TestClient, mailbox: string): Promise<string[]> {
  await client.command(`EXAMINE ${mailbox}`);
  const raw = await client.raw('FETCH 1:* (BODY.PEEK[])', 'X1');
  const out: string[] = [];
  const re = /BODY\[\] \{(\d+)\}\r\n/g;
  for (let m = re.exec(raw); m; m = re.exec(raw)) {
    const start = m.index + m[0].length;
    out.push(Buffer.from(raw.slice(start)).subarray(0, Number(m[1])).toString());
  }
  return out;
}

describe('IMAP MULTIAPPEND', () => {
  let t: ImapTestApp;
  let client: TestClient;
  before(async () => {
    t = await bootImapTestApp({ plugins: [refuser], limits: { spoolMemoryBytes: 4096 } });
    client = await login(t.app);
  });
  after(async () => {
    client.end();
    await t.close();
  });

  it('is announced with CATENATE', async () => {
    const { greeting } = await connect(t.app);
    assert.ok(greeting.includes(' MULTIAPPEND') && greeting.includes(' CATENATE'), greeting);
  });

  it('stores several messages with their own flags and dates, in order, and reports a UID set', async () => {
    await client.command('CREATE Multi');
    const [a, b, c] = [message('one'), message('two'), message('three')];
    const answer = await client.status(`APPEND Multi (\\Seen) ${lit(a)} (\\Flagged) "01-Feb-2024 10:00:00 +0000" ${lit(b)} ${lit(c)}`);
    assert.match(answer, /^OK \[APPENDUID \d+ 1:3\] APPEND completed/);
    assert.deepEqual(await bodies(client, 'Multi'), [a, b, c]);
    const flags = await client.command('FETCH 1:3 (FLAGS INTERNALDATE)');
    assert.match(flags[0]!, /FLAGS \(\\Seen \\Recent\)/);
    assert.match(flags[1]!, /FLAGS \(\\Flagged \\Recent\) INTERNALDATE "01-Feb-2024 10:00:00 \+0000"/);
    assert.match(flags[2]!, /FLAGS \(\\Recent\)/);
  });

  it('takes synchronizing literals, one continuation each', async () => {
    await client.command('CREATE Sync');
    const [a, b] = [message('sync one'), message('sync two')];
    client.write(`S1 APPEND Sync {${size(a)}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write(`${a} {${size(b)}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write(`${b}\r\n`);
    assert.match(await client.untilTagged('S1'), /S1 OK \[APPENDUID \d+ 1:2\]/);
  });

  it('goes on after a first message read while the command runs (larger than the memory threshold)', async () => {
    await client.command('CREATE Streamed');
    const big = message('big', 'x'.repeat(70) + '\r\n'.repeat(1) + ('0123456789'.repeat(7) + '\r\n').repeat(200));
    const small = message('small after big');
    const answer = await client.status(`APPEND Streamed ${lit(big)} (\\Answered) ${lit(small)}`);
    assert.match(answer, /^OK \[APPENDUID \d+ 1:2\]/);
    assert.deepEqual(await bodies(client, 'Streamed'), [big, small]);
    // a syntax error after the streamed message stores nothing, and the literal it announced is not read as commands
    client.write(`E1 APPEND Streamed ${lit(big)} (\\Bad flag) ${lit('NOOP\r\n')}\r\nE2 NOOP\r\n`);
    assert.match(await client.line(), /^E1 BAD /);
    assert.equal(await client.line(), 'E2 OK NOOP completed');
    assert.match(await status(client, 'Streamed'), /MESSAGES 2 UIDNEXT 3\)/);
    // to a missing mailbox: the unread first message and the messages after it are all skipped
    client.write(`N1 APPEND Nowhere ${lit(big)} ${lit('N2 NOOP\r\n')}\r\nN3 NOOP\r\n`);
    assert.match(await client.line(), /^N1 NO \[TRYCREATE\]/);
    assert.equal(await client.line(), 'N3 OK NOOP completed');
  });

  it('refuses a message read while the command runs that a plugin replaced unread (the rest of the command is unknown)', async () => {
    await client.command('CREATE Replaced');
    const replaced = message('r', 'w'.repeat(5555 - size(message('r', ''))));
    client.write(`R1 APPEND Replaced ${lit(replaced)} ${lit('R2 NOOP\r\n')}\r\nR3 NOOP\r\n`);
    assert.match(await client.line(), /^R1 NO \[CANNOT\] The message was not read/);
    assert.equal(await client.line(), 'R3 OK NOOP completed');
    assert.match(await status(client, 'Replaced'), /MESSAGES 0 UIDNEXT 1\)/);
  });

  it('stores none when one message is refused before ingest: no UID is used', async () => {
    await client.command('CREATE Refused');
    const refused = message('r', 'y'.repeat(4321 - size(message('r', ''))));
    assert.equal(size(refused), 4321);
    const answer = await client.status(`APPEND Refused ${lit(message('fine'))} ${lit(refused)} ${lit(message('also fine'))}`);
    assert.match(answer, /^NO \[CANNOT\] Refused before ingest/);
    assert.match(await status(client, 'Refused'), /MESSAGES 0 UIDNEXT 1\)/);
  });

  it('expunges the messages it committed when a later commit is refused', async () => {
    await client.command('CREATE Rollback');
    const answer = await client.status(`APPEND Rollback ${lit(message('first'))} ${lit(message('refuse at commit'))}`);
    assert.match(answer, /^NO \[CANNOT\] Refused at the commit/);
    assert.match(await status(client, 'Rollback'), /MESSAGES 0 /);
  });

  it('refuses a batch over the storage quota as a whole', async () => {
    await client.command('CREATE Quota');
    const user = (await t.app.storage.users.get(t.userId))!;
    const one = message('quota', 'q'.repeat(3000));
    await t.app.storage.users.update(t.userId, { quota: { storage: user.storageUsed + size(one) + 100 } });
    try {
      const answer = await client.status(`APPEND Quota ${lit(one)} ${lit(one)}`);
      assert.match(answer, /^NO \[OVERQUOTA\]/);
      assert.match(await status(client, 'Quota'), /MESSAGES 0 /);
      assert.match(await client.status(`APPEND Quota ${lit(one)}`), /^OK/);
    } finally {
      await t.app.storage.users.update(t.userId, { quota: { storage: null } });
    }
  });

  it('answers TRYCREATE for a missing mailbox and reads the whole command', async () => {
    client.write(`T1 APPEND Nowhere ${lit(message('a'))} ${lit('T2 NOOP\r\n')}\r\nT3 NOOP\r\n`);
    assert.match(await client.line(), /^T1 NO \[TRYCREATE\]/);
    assert.equal(await client.line(), 'T3 OK NOOP completed');
  });
});

describe('IMAP CATENATE', () => {
  let t: ImapTestApp;
  let client: TestClient;
  let uidValidity: number;
  const source =
    'From: src@example.com\r\nSubject: source\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n\r\n' +
    '--s\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--s\r\nContent-Type: text/html\r\n\r\n<b>second</b>\r\n--s--\r\n';
  const header = 'From: src@example.com\r\nSubject: source\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="s"\r\n\r\n';
  before(async () => {
    t = await bootImapTestApp({ limits: { maxMessageSize: 2000 } });
    client = await login(t.app);
    await client.command('CREATE Src');
    await client.command('CREATE Dst');
    assert.match(await client.status(`APPEND Src ${lit(source)}`), /^OK/);
    uidValidity = (await t.app.storage.mailboxes.getByPath(t.userId, 'Src'))!.uidValidity;
  });
  after(async () => {
    client.end();
    await t.close();
  });

  it('builds a message from TEXT literals and URLs: whole, HEADER, part, part.MIME, HEADER.FIELDS, partial', async () => {
    const before = (await bodies(client, 'Dst')).length;
    const cases: Array<[string, string]> = [
      [`URL "/Src/;UID=1"`, source],
      [`URL "/Src;UIDVALIDITY=${uidValidity}/;UID=1/;SECTION=HEADER" TEXT ${lit('new body\r\n')}`, header + 'new body\r\n'],
      [`TEXT ${lit('Subject: parts\r\n\r\n')} URL "/Src/;UID=1/;SECTION=2" TEXT ${lit('\r\n')} URL "/Src/;UID=1/;SECTION=1.MIME"`, 'Subject: parts\r\n\r\n<b>second</b>\r\nContent-Type: text/plain\r\n\r\n'],
      [`URL "/Src/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)" TEXT ${lit('x\r\n')}`, 'Subject: source\r\n\r\nx\r\n'],
      [`TEXT ${lit('Subject: p\r\n\r\n')} URL "/Src/;UID=1/;SECTION=1/;PARTIAL=6.4" URL "/Src/;UID=1/;PARTIAL=100000.5"`, 'Subject: p\r\n\r\npart'],
    ];
    for (const [parts] of cases) assert.match(await client.status(`APPEND Dst CATENATE (${parts})`), /^OK \[APPENDUID \d+ \d+\]/, parts);
    assert.deepEqual((await bodies(client, 'Dst')).slice(before), cases.map(([, expected]) => expected));
  });

  it('answers [BADURL] for a URL that names nothing of the user, and stores nothing', async () => {
    const { messages } = { messages: (await bodies(client, 'Dst')).length };
    const bad = [
      `/Src;UIDVALIDITY=${uidValidity + 1}/;UID=1`,
      '/Src/;UID=99',
      '/Nope/;UID=1',
      '/Src/;UID=1/;SECTION=7',
      '/Src/;UID=1/;SECTION=BOGUS',
      'imap://mallory@localhost/Src/;UID=1',
      '/Src/;UID=1/;URLAUTH=anonymous',
    ];
    for (const url of bad) {
      assert.equal(await client.status(`APPEND Dst CATENATE (TEXT ${lit('a: b\r\n\r\n')} URL "${url}")`), `NO [BADURL ${url}] The URL does not name a message part of yours`);
    }
    assert.match(await client.status('APPEND Dst CATENATE (URL "imap://alice@localhost/Src/;UID=1")'), /^OK/);
    assert.equal((await bodies(client, 'Dst')).length, messages + 1);
  });

  it('answers [TOOBIG] when the parts add up past the message size limit, [TRYCREATE] for a missing mailbox', async () => {
    assert.ok(size(source) * 12 > 2000);
    const parts = Array.from({ length: 12 }, () => 'URL "/Src/;UID=1"').join(' ');
    assert.match(await client.status(`APPEND Dst CATENATE (${parts})`), /^NO \[TOOBIG\]/);
    assert.match(await client.status(`APPEND Gone CATENATE (URL "/Src/;UID=1")`), /^NO \[TRYCREATE\]/);
    assert.match(await client.status('APPEND Dst CATENATE ()'), /^BAD /);
    assert.match(await client.status('APPEND Dst CATENATE (TEXT "quoted")'), /^BAD /);
  });

  it('refuses the literal that takes one APPEND past 10 times the message size limit, before reading it', async () => {
    const one = message('m', 'z'.repeat(1900 - size(message('m', ''))));
    client.write(`M1 APPEND Dst {${size(one)}}\r\n`);
    for (let i = 1; i <= 10; i++) {
      assert.equal(await client.line(), '+ Ready for literal data', `literal ${i}`);
      client.write(`${one} {${size(one)}}\r\n`);
    }
    assert.match(await client.line(), /^M1 NO \[TOOBIG\] The messages of one APPEND exceed 20000 bytes together/);
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
  });

  it('combines with MULTIAPPEND: one bad URL in any message stores none', async () => {
    await client.command('CREATE Both');
    const ok = await client.status(`APPEND Both CATENATE (URL "/Src/;UID=1/;SECTION=HEADER" TEXT ${lit('one\r\n')}) (\\Seen) ${lit(message('plain'))} CATENATE (URL "/Src/;UID=1")`);
    assert.match(ok, /^OK \[APPENDUID \d+ 1:3\]/);
    const bodiesNow = await bodies(client, 'Both');
    assert.deepEqual(bodiesNow, [header + 'one\r\n', message('plain'), source]);
    const bad = await client.status(`APPEND Both ${lit(message('x'))} CATENATE (URL "/Src/;UID=42")`);
    assert.match(bad, /^NO \[BADURL \/Src\/;UID=42\]/);
    assert.match(await status(client, 'Both'), /MESSAGES 3 UIDNEXT 4\)/);
  });
});
