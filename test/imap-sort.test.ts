/**
 * SORT, SORT=DISPLAY (plugins/imap-sort.ts) and THREAD=REFERENCES / REFS / ORDEREDSUBJECT (plugins/imap-thread.ts)
 * over IMAP: transcripts through the harness, the plugins switched off, and Python's imaplib over a real socket.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendMessage, bootImapTestApp, imapTestAppPerSuite, login } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { python } from './helpers/python.ts';

interface Mail {
  from?: string;
  to?: string;
  subject: string;
  date: string;
  id: string;
  refs?: string;
  body?: string;
}

function mail(m: Mail): string {
  return (
    `From: ${m.from ?? 'bob@example.com'}\r\nTo: ${m.to ?? 'alice@example.com'}\r\nSubject: ${m.subject}\r\nDate: ${m.date}\r\n` +
    `Message-ID: <${m.id}@example.com>\r\n${m.refs ? `References: ${m.refs}\r\n` : ''}\r\n${m.body ?? 'hello\r\n'}`
  );
}

/** Five messages: two threads by References, one by subject only, various senders, sizes and dates. */
const MAILS: Mail[] = [
  { from: 'Zoe <zoe@example.com>', to: 'b@example.com', subject: 'Lunch', date: 'Mon, 1 Jan 2024 12:00:00 +0000', id: 'lunch' },
  { from: 'adam@example.com', to: '=?utf-8?q?=C3=84rger?= <c@example.com>', subject: 'Re: Lunch', date: 'Mon, 1 Jan 2024 13:00:00 +0000', id: 'lunch2', refs: '<lunch@example.com>', body: 'x'.repeat(500) + '\r\n' },
  { from: 'Mike <carl@example.com>', to: 'a@example.com', subject: '[team] Budget', date: 'Mon, 1 Jan 2024 09:00:00 +0000', id: 'budget' },
  { from: 'bob@example.com', to: 'd@example.com', subject: 'Re: Lunch', date: 'Mon, 1 Jan 2024 14:00:00 +0000', id: 'lunch3', refs: '<lunch@example.com> <lunch2@example.com>' },
  { from: 'eve@example.com', subject: 'Fwd: budget', date: 'Sun, 31 Dec 2023 10:00:00 -0500', id: 'other' },
];

async function fill(client: TestClient, mailbox: string): Promise<void> {
  await client.command(`CREATE ${mailbox}`);
  for (const m of MAILS) assert.match(await appendMessage(client, mailbox, mail(m)), /^OK/);
  await client.command(`SELECT ${mailbox}`);
}

describe('IMAP SORT and THREAD', () => {
  const t = imapTestAppPerSuite();
  let c: TestClient;
  before(async () => {
    c = await login(t.app);
    await fill(c, 'Sorted');
  });
  after(() => c.end());

  it('announces SORT, SORT=DISPLAY and the three THREAD algorithms', async () => {
    const caps = (await c.command('CAPABILITY'))[0]!.split(' ');
    for (const cap of ['SORT', 'SORT=DISPLAY', 'THREAD=REFERENCES', 'THREAD=REFS', 'THREAD=ORDEREDSUBJECT']) assert.ok(caps.includes(cap), cap);
  });

  it('sorts by each key, with REVERSE and several keys', async () => {
    const sort = async (spec: string, search = 'ALL') => (await c.command(`SORT ${spec} UTF-8 ${search}`))[0];
    assert.equal(await sort('(ARRIVAL)'), '* SORT 1 2 3 4 5');
    assert.equal(await sort('(DATE)'), '* SORT 5 3 1 2 4', 'Dec 31 -0500 is the earliest');
    assert.equal(await sort('(REVERSE DATE)'), '* SORT 4 2 1 3 5');
    assert.equal(await sort('(SUBJECT)'), '* SORT 3 5 1 2 4', 'base subjects BUDGET, BUDGET, LUNCH ×3; ties in mailbox order');
    assert.equal(await sort('(SUBJECT REVERSE DATE)'), '* SORT 3 5 4 2 1');
    assert.equal(await sort('(FROM)'), '* SORT 2 4 3 5 1', 'the address mailbox: adam bob carl eve zoe');
    assert.equal(await sort('(DISPLAYFROM)'), '* SORT 2 4 5 3 1', 'display names: adam@… bob@… eve@… Mike Zoe');
    assert.equal(await sort('(TO)'), '* SORT 3 5 1 2 4', 'a alice b c d');
    assert.equal(await sort('(DISPLAYTO)'), '* SORT 3 5 2 1 4', 'the decoded name Ärger sorts with the As (i;unicode-casemap)');
    assert.equal(await sort('(CC)'), '* SORT 1 2 3 4 5', 'no Cc anywhere: all equal');
    assert.match((await sort('(REVERSE SIZE)'))!, /^\* SORT 2 /, 'the long body first');
  });

  it('sorts only what the search criteria match, by sequence number or UID', async () => {
    assert.equal((await c.command('SORT (DATE) UTF-8 SUBJECT lunch'))[0], '* SORT 1 2 4');
    assert.equal((await c.command('SORT (DATE) "US-ASCII" FROM bob NOT 4'))[0], '* SORT');
    assert.equal((await c.command('SORT (REVERSE ARRIVAL) UTF-8 OR 1 5'))[0], '* SORT 5 1');
    assert.deepEqual(await c.command('UID SORT (SUBJECT) UTF-8 UID 2:5'), ['* SORT 3 5 2 4', 'TAG OK UID SORT completed']);
    await c.command('SEARCH RETURN (SAVE) SUBJECT lunch');
    assert.equal((await c.command('SORT (REVERSE DATE) UTF-8 $'))[0], '* SORT 4 2 1', "SEARCHRES's saved result");
    assert.equal((await c.command('THREAD REFS UTF-8 $ NOT 2'))[0], '* THREAD (1 4)');
    assert.deepEqual(await c.command('SORT (SUBJECT) ISO-8859-1 SUBJECT LUNCH'), ['* SORT 1 2 4', 'TAG OK SORT completed'], 'any charset iconv knows');
  });

  it('reports MODSEQ when the search used it', async () => {
    // the first CONDSTORE-enabling command in the selected mailbox reports HIGHESTMODSEQ first (RFC 7162 §3.1)
    const [highest, line, tagged] = await c.command('SORT (ARRIVAL) UTF-8 MODSEQ 1');
    assert.match(highest!, /^\* OK \[HIGHESTMODSEQ \d+\] /);
    assert.match(line!, /^\* SORT 1 2 3 4 5 \(MODSEQ \d+\)$/);
    assert.equal(tagged, 'TAG OK SORT completed');
  });

  it('answers BAD for bad syntax and NO [BADCHARSET] for an unknown charset', async () => {
    for (const command of ['SORT', 'SORT ALL', 'SORT () UTF-8 ALL', 'SORT (SIZE FOO) UTF-8 ALL', 'SORT (REVERSE) UTF-8 ALL', 'SORT (REVERSE REVERSE SIZE) UTF-8 ALL', 'SORT (SIZE) UTF-8', 'SORT (SIZE) UTF-8 NOSUCHKEY']) {
      assert.match(await c.status(command), /^BAD /, command);
    }
    assert.match(await c.status('SORT (SIZE) X-NO-SUCH-CHARSET ALL'), /^NO \[BADCHARSET/);
    for (const command of ['THREAD', 'THREAD FOO UTF-8 ALL', 'THREAD REFERENCES', 'THREAD REFERENCES UTF-8', 'THREAD (REFERENCES) UTF-8 ALL']) {
      assert.match(await c.status(command), /^BAD /, command);
    }
  });

  it('threads by REFERENCES, REFS and ORDEREDSUBJECT', async () => {
    assert.deepEqual(await c.command('THREAD REFERENCES UTF-8 ALL'), ['* THREAD (3 5)(1 2 4)', 'TAG OK THREAD completed']);
    assert.equal((await c.command('THREAD REFS UTF-8 ALL'))[0], '* THREAD (5)(3)(1 2 4)', 'no subject merge; threads by their latest message');
    assert.equal((await c.command('THREAD ORDEREDSUBJECT UTF-8 ALL'))[0], '* THREAD (5 3)(1 (2)(4))');
    assert.equal((await c.command('UID THREAD REFERENCES UTF-8 NOT UID 2'))[0], '* THREAD (3 5)(1 4)');
    assert.equal((await c.command('THREAD REFERENCES UTF-8 SUBJECT nothing-matches'))[0], '* THREAD');
  });

  it('needs a selected mailbox', async () => {
    const other = await login(t.app);
    assert.equal(await other.status('SORT (SIZE) UTF-8 ALL'), 'BAD No mailbox selected');
    assert.equal(await other.status('THREAD REFS UTF-8 ALL'), 'BAD No mailbox selected');
    other.end();
  });

  it('holds EXPUNGE back from sequence-number answers; UID SORT may carry it', async () => {
    const a = await login(t.app);
    const b = await login(t.app);
    await fill(a, 'Shared');
    await b.command('SELECT Shared');
    await a.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await a.command('EXPUNGE');
    const sorted = await b.command('SORT (ARRIVAL) UTF-8 ALL');
    assert.equal(sorted[0], '* SORT 2 3 4 5', 'as SEARCH: the expunged message is left out, the others keep their numbers until it is reported');
    assert.ok(!sorted.some((l) => / EXPUNGE$/.test(l)), sorted.join('\n'));
    const threaded = await b.command('THREAD ORDEREDSUBJECT UTF-8 ALL');
    assert.ok(!threaded.some((l) => / EXPUNGE$/.test(l)));
    const bySid = await b.command('UID SORT (ARRIVAL) UTF-8 ALL');
    assert.deepEqual(bySid, ['* SORT 2 3 4 5', '* 1 EXPUNGE', 'TAG OK UID SORT completed']);
    a.end();
    b.end();
  });
});

describe('IMAP SORT and THREAD switched off', () => {
  it("['imap-sort', false] and ['imap-thread', false] take the capabilities and commands away", async () => {
    const t = await bootImapTestApp({ plugins: [['imap-sort', false], ['imap-thread', false]] });
    try {
      const c = await login(t.app);
      const caps = (await c.command('CAPABILITY'))[0]!;
      assert.doesNotMatch(caps, / SORT| THREAD=/);
      await c.command('SELECT INBOX');
      assert.match(await c.status('SORT (SIZE) UTF-8 ALL'), /^BAD Unknown command/);
      assert.match(await c.status('THREAD REFS UTF-8 ALL'), /^BAD Unknown command/);
      c.end();
    } finally {
      await t.close();
    }
  });
});

const PYTHON_SORT = `
import imaplib, json, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice', 'secret')
m.select('Sorted')
out = {}
out['sort'] = m.sort('(REVERSE DATE)', 'UTF-8', 'ALL')[1][0].decode()
out['uidsort'] = m.uid('SORT', '(SUBJECT)', 'UTF-8', 'ALL')[1][0].decode()
out['thread'] = m.thread('REFERENCES', 'UTF-8', 'ALL')[1][0].decode()
m.logout()
print(json.dumps(out))
`;

describe('IMAP SORT and THREAD with a real client', () => {
  const t = imapListenerPerSuite();
  before(async () => {
    const c = await login(t.app);
    await fill(c, 'Sorted');
    c.end();
  });

  it('Python imaplib sorts and threads', async () => {
    const { code, stdout, stderr } = await python(PYTHON_SORT, [String(t.port)]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { sort: '4 2 1 3 5', uidsort: '3 5 1 2 4', thread: '(3 5)(1 2 4)' });
  });
});
