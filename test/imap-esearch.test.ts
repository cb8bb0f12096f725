/**
 * Transcripts for the search extensions on the real stack: ESEARCH (RFC 4731) with CONDSTORE's MODSEQ, SEARCHRES
 * (RFC 5182) `$` in later commands, CONTEXT=SEARCH (RFC 5267) RETURN (UPDATE) / CANCELUPDATE and PARTIAL (RFC 5267,
 * RFC 9394 negative ranges); plus the pure RETURN parser and ESEARCH renderer (hooks/imap-esearch.ts).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { appendMessage, bootImapTestApp, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { ImapTestApp, TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { atom, list } from './helpers/imap-tokens.ts';
import { esearchLine, parseReturnOptions, partialSlice, savedMatches } from '../hooks/imap-esearch.ts';
import { ImapSyntaxError } from '../protocols/imap/types.ts';
import { python } from './helpers/python.ts';

/** A mailbox of `count` messages (subjects s1..sN); returns a client with it selected. */
async function mailbox(t: ImapTestApp, name: string, count: number): Promise<TestClient> {
  const client = await login(t.app);
  assert.match(await client.status(`CREATE ${name}`), /^OK/);
  for (let i = 1; i <= count; i++) assert.match(await appendMessage(client, name, message(`s${i}`, `body ${i}\r\n`)), /^OK/);
  assert.match(await client.status(`SELECT ${name}`), /^OK/);
  return client;
}

/** UIDs of messages 1..n in order. */
async function uids(client: TestClient): Promise<number[]> {
  const lines = await client.command('FETCH 1:* (UID)');
  return lines.filter((l) => l.startsWith('* ')).map((l) => Number(/UID (\d+)/.exec(l)![1]));
}

describe('RETURN options and the ESEARCH line', () => {
  const parse = (...items: string[]) => parseReturnOptions(list(...items.map((item) => atom(item))));

  it('reads RETURN () as ALL, and SAVE alone as no answer', () => {
    assert.equal(parse().all, true);
    assert.equal(parse('SAVE').all, false);
    assert.equal(parse('save', 'min').all, false);
    assert.equal(parse('UPDATE').all, true);
    assert.deepEqual(parse('PARTIAL', '4:2').partial, { from: 2, to: 4 });
    assert.deepEqual(parse('PARTIAL', '-1:-10').partial, { from: -1, to: -10 });
  });

  for (const items of [['FOO'], ['MIN', 'MIN'], ['PARTIAL', '1'], ['PARTIAL', '1:*'], ['PARTIAL', '*:1'], ['PARTIAL', '0:3'], ['PARTIAL', '-1:3'], ['PARTIAL'], ['ALL', 'PARTIAL', '1:2']]) {
    it(`refuses RETURN (${items.join(' ')})`, () => {
      assert.throws(() => parse(...items), ImapSyntaxError);
    });
  }

  it('renders MIN MAX ALL COUNT, leaving out what an empty result has not', () => {
    const options = parse('MIN', 'MAX', 'ALL', 'COUNT');
    assert.equal(esearchLine(options, { tag: 'A1', uid: true, numbers: [3, 4, 5, 9] }), '* ESEARCH (TAG "A1") UID MIN 3 MAX 9 ALL 3:5,9 COUNT 4');
    assert.equal(esearchLine(options, { tag: 'A1', uid: false, numbers: [] }), '* ESEARCH (TAG "A1") COUNT 0');
  });

  it('reports MODSEQ of MIN / MAX alone, else the highest of the result', () => {
    const modseqs = [5, 9, 2];
    assert.equal(esearchLine(parse('MIN'), { tag: 'T', uid: false, numbers: [1, 2, 3], modseqs }), '* ESEARCH (TAG "T") MIN 1 MODSEQ 5');
    assert.equal(esearchLine(parse('MAX'), { tag: 'T', uid: false, numbers: [1, 2, 3], modseqs }), '* ESEARCH (TAG "T") MAX 3 MODSEQ 2');
    assert.equal(esearchLine(parse('COUNT'), { tag: 'T', uid: false, numbers: [1, 2, 3], modseqs }), '* ESEARCH (TAG "T") COUNT 3 MODSEQ 9');
  });

  it('slices PARTIAL ranges from the start and from the end', () => {
    const items = [10, 20, 30, 40, 50];
    assert.deepEqual(partialSlice(items, { from: 2, to: 4 }), [20, 30, 40]);
    assert.deepEqual(partialSlice(items, { from: 6, to: 9 }), []);
    assert.deepEqual(partialSlice(items, { from: -1, to: -2 }), [40, 50]);
    assert.deepEqual(partialSlice(items, { from: -4, to: -9 }), [10, 20]);
    assert.deepEqual(partialSlice(items, { from: -6, to: -9 }), []);
  });

  it('keeps only MIN / MAX for SAVE without ALL or COUNT', () => {
    assert.deepEqual(savedMatches([1, 2, 3], parse('SAVE', 'MIN')), [1]);
    assert.deepEqual(savedMatches([1, 2, 3], parse('SAVE', 'MIN', 'MAX')), [1, 3]);
    assert.deepEqual(savedMatches([1, 2, 3], parse('SAVE', 'MAX', 'COUNT')), [1, 2, 3]);
    assert.deepEqual(savedMatches([1, 2, 3], parse('SAVE')), [1, 2, 3]);
  });
});

describe('ESEARCH, SEARCHRES and CONTEXT=SEARCH over IMAP', () => {
  const t = imapTestAppPerSuite();

  it('announces ESEARCH, SEARCHRES and CONTEXT=SEARCH', async () => {
    const client = await login(t.app);
    const [caps] = await run(client, 'CAPABILITY');
    for (const cap of ['ESEARCH', 'SEARCHRES', 'CONTEXT=SEARCH']) assert.ok(caps!.split(' ').includes(cap), cap);
  });

  it('answers SEARCH RETURN with ESEARCH, by sequence number and by UID', async () => {
    const client = await mailbox(t, 'Esearch', 6);
    const u = await uids(client);
    await run(client, 'STORE 4 +FLAGS (\\Deleted)');
    await run(client, 'EXPUNGE');
    assert.deepEqual(await run(client, 'SEARCH RETURN (ALL) ALL'), ['* ESEARCH (TAG "TAG") ALL 1:5', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN () ALL'), ['* ESEARCH (TAG "TAG") ALL 1:5', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (MIN MAX COUNT) ALL'), ['* ESEARCH (TAG "TAG") MIN 1 MAX 5 COUNT 5', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'UID SEARCH RETURN (ALL) ALL'), [
      `* ESEARCH (TAG "TAG") UID ALL ${u[0]}:${u[2]},${u[4]}:${u[5]}`,
      'TAG OK UID SEARCH completed',
    ]);
    assert.deepEqual(await run(client, 'UID SEARCH RETURN (MIN) 1000'), ['* ESEARCH (TAG "TAG") UID', 'TAG OK UID SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (COUNT) 1000'), ['* ESEARCH (TAG "TAG") COUNT 0', 'TAG OK SEARCH completed']);
    assert.match(await client.status('SEARCH RETURN (FOO) ALL'), /^BAD/);
    assert.match(await client.status('SEARCH RETURN ALL'), /^BAD/);
  });

  it('reports HIGHESTMODSEQ when a FETCH turns CONDSTORE on, and MODSEQ in ESEARCH', async () => {
    const client = await mailbox(t, 'EsearchModseq', 4);
    const fetched = await run(client, 'FETCH 1 (MODSEQ)');
    assert.match(fetched[0]!, /^\* OK \[HIGHESTMODSEQ \d+\]/);
    const modseq: number[] = [];
    for (const n of [1, 3, 2, 4]) {
      const [line] = await run(client, `STORE ${n} +FLAGS (\\Seen)`);
      modseq[n] = Number(/MODSEQ \((\d+)\)/.exec(line!)![1]);
    }
    assert.deepEqual(await run(client, 'SEARCH RETURN (MIN) 1:3 MODSEQ 1'), [`* ESEARCH (TAG "TAG") MIN 1 MODSEQ ${modseq[1]}`, 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN () 1:3 MODSEQ 1'), [`* ESEARCH (TAG "TAG") ALL 1:3 MODSEQ ${modseq[2]}`, 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, `SEARCH RETURN (ALL) 2:3 MODSEQ ${modseq[4]}`), ['* ESEARCH (TAG "TAG")', 'TAG OK SEARCH completed']);
  });

  it('saves a result for $ in FETCH, STORE, COPY, SEARCH and their UID forms', async () => {
    const client = await mailbox(t, 'Saved', 5);
    const u = await uids(client);
    // nothing saved yet: $ names no message
    assert.deepEqual(await run(client, 'FETCH $ (UID)'), ['TAG OK FETCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (SAVE) 2,4'), ['TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'FETCH $ (UID)'), [`* 2 FETCH (UID ${u[1]})`, `* 4 FETCH (UID ${u[3]})`, 'TAG OK FETCH completed']);
    assert.deepEqual(await run(client, 'UID FETCH $ (FLAGS)'), [`* 2 FETCH (UID ${u[1]} FLAGS (\\Recent))`, `* 4 FETCH (UID ${u[3]} FLAGS (\\Recent))`, 'TAG OK UID FETCH completed']);
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH 2 4', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'UID SEARCH UID $'), [`* SEARCH ${u[1]} ${u[3]}`, 'TAG OK UID SEARCH completed']);
    // a search using $ may save over it
    assert.deepEqual(await run(client, 'SEARCH RETURN (SAVE COUNT) OR $ 5'), ['* ESEARCH (TAG "TAG") COUNT 3', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH 2 4 5', 'TAG OK SEARCH completed']);
    // MIN with SAVE keeps the minimum only
    assert.deepEqual(await run(client, 'SEARCH RETURN (SAVE MIN) 3:5'), ['* ESEARCH (TAG "TAG") MIN 3', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH 3', 'TAG OK SEARCH completed']);
    assert.match((await run(client, 'STORE $ +FLAGS (\\Flagged)'))[0]!, /^\* 3 FETCH \(FLAGS \(\\Flagged \\Recent\)\)$/);
    assert.match(await client.status('COPY $ Saved'), /^OK \[COPYUID \d+ \d+ \d+\]/);
    // an expunged message drops out of the saved result
    await run(client, 'SEARCH RETURN (SAVE) 1:2');
    await run(client, 'STORE 1 +FLAGS (\\Deleted)');
    await run(client, 'EXPUNGE');
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    // UID EXPUNGE $ expunges the saved messages that are \Deleted
    await run(client, 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await run(client, 'UID EXPUNGE $'), ['* 1 EXPUNGE', 'TAG OK UID EXPUNGE completed']);
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH', 'TAG OK SEARCH completed']);
    // a failed SEARCH with SAVE empties it
    await run(client, 'SEARCH RETURN (SAVE) 1');
    assert.equal(await client.status('SEARCH RETURN (SAVE) BADKEY'), 'BAD Unknown search key BADKEY');
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH', 'TAG OK SEARCH completed']);
    // SELECT forgets it
    await run(client, 'SEARCH RETURN (SAVE) ALL');
    await run(client, 'SELECT Saved');
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH', 'TAG OK SEARCH completed']);
  });

  it('answers PARTIAL ranges, from the end too', async () => {
    const client = await mailbox(t, 'Partial', 5);
    assert.deepEqual(await run(client, 'SEARCH RETURN (PARTIAL 4:2) ALL'), ['* ESEARCH (TAG "TAG") PARTIAL (2:4 2:4)', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (PARTIAL 1:6) 1:2,4:5'), ['* ESEARCH (TAG "TAG") PARTIAL (1:6 1:2,4:5)', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (PARTIAL 6:6) ALL'), ['* ESEARCH (TAG "TAG") PARTIAL (6:6 NIL)', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL'), ['* ESEARCH (TAG "TAG") COUNT 5 PARTIAL (-1:-2 4:5)', 'TAG OK SEARCH completed']);
    assert.match(await client.status('SEARCH RETURN (PARTIAL 1:*) ALL'), /^BAD/);
  });

  it('keeps a RETURN (UPDATE) search up to date: ADDTO, REMOVEFROM before EXPUNGE, new mail, CANCELUPDATE', async () => {
    const client = await mailbox(t, 'Live', 5);
    assert.deepEqual(await client.raw('SEARCH RETURN (UPDATE) SEEN', 'S1').then(lines), ['* ESEARCH (TAG "S1")', 'S1 OK SEARCH completed']);
    assert.deepEqual(await run(client, 'STORE 1,2,4 +FLAGS.SILENT (\\Seen)'), ['* ESEARCH (TAG "S1") ADDTO (0 1:2,4)', 'TAG OK STORE completed']);
    assert.deepEqual(await run(client, 'STORE 1,2 -FLAGS.SILENT (\\Seen)'), ['* ESEARCH (TAG "S1") REMOVEFROM (0 1:2)', 'TAG OK STORE completed']);
    await run(client, 'STORE 3:5 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await run(client, 'EXPUNGE'), [
      '* ESEARCH (TAG "S1") REMOVEFROM (0 4)',
      '* 3 EXPUNGE',
      '* 3 EXPUNGE',
      '* 3 EXPUNGE',
      'TAG OK EXPUNGE completed',
    ]);
    // a message another session delivers: EXISTS first, then ADDTO
    const other = await login(t.app);
    assert.match(await appendMessage(other, 'Live', message('new'), '\\Seen'), /^OK/);
    const noop = await run(client, 'NOOP');
    assert.deepEqual(noop.filter((l) => /EXISTS|ESEARCH/.test(l)), ['* 3 EXISTS', '* ESEARCH (TAG "S1") ADDTO (0 3)']);
    // another session's flag change and expunge
    await other.command('SELECT Live');
    await other.command('STORE 3 +FLAGS.SILENT (\\Deleted)');
    await other.command('STORE 1 +FLAGS.SILENT (\\Seen)');
    await other.command('EXPUNGE');
    const told = await run(client, 'NOOP');
    assert.deepEqual(told, ['* ESEARCH (TAG "S1") REMOVEFROM (0 3)', '* 3 EXPUNGE', '* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1)', '* ESEARCH (TAG "S1") ADDTO (0 1)', 'TAG OK NOOP completed']);
    assert.deepEqual(await run(client, 'CANCELUPDATE "S1"'), ['TAG OK CANCELUPDATE completed']);
    assert.deepEqual(await run(client, 'STORE 1 -FLAGS.SILENT (\\Seen)'), ['TAG OK STORE completed']);
    assert.match(await client.status('CANCELUPDATE "S1"'), /^BAD/);
  });

  it('re-evaluates sequence-number keys of a live search at the messages\' positions', async () => {
    const client = await mailbox(t, 'LiveSeq', 4);
    assert.deepEqual(await client.raw('SEARCH RETURN (UPDATE) 3:* SEEN', 'Q1').then(lines), ['* ESEARCH (TAG "Q1")', 'Q1 OK SEARCH completed']);
    // message 1 is outside 3:*, messages 3 and 4 inside (`*` is the last message)
    assert.deepEqual(await run(client, 'STORE 1,3,4 +FLAGS.SILENT (\\Seen)'), ['* ESEARCH (TAG "Q1") ADDTO (0 3:4)', 'TAG OK STORE completed']);
  });

  it('declines more live searches than a session may keep with NOUPDATE', async () => {
    const client = await mailbox(t, 'LiveMany', 1);
    for (let i = 1; i <= 8; i++) assert.match((await client.raw('SEARCH RETURN (UPDATE) ALL', `M${i}`).then(lines)).pop()!, /^M\d OK/);
    assert.deepEqual(await client.raw('SEARCH RETURN (UPDATE COUNT) ALL', 'M9').then(lines), ['* NO [NOUPDATE "M9"] Too many searches kept up to date', '* ESEARCH (TAG "M9") COUNT 1', 'M9 OK SEARCH completed']);
    // the same tag again replaces its own result; a cancelled one makes room
    assert.match((await client.raw('SEARCH RETURN (UPDATE) ALL', 'M1').then(lines)).pop()!, /^M1 OK/);
    await run(client, 'CANCELUPDATE "M2"');
    assert.deepEqual(await client.raw('SEARCH RETURN (UPDATE COUNT) ALL', 'M9').then(lines), ['* ESEARCH (TAG "M9") COUNT 1', 'M9 OK SEARCH completed']);
  });

  it('keeps UID searches by UID, and forgets live searches on SELECT', async () => {
    const client = await mailbox(t, 'LiveUid', 3);
    const u = await uids(client);
    assert.deepEqual(await client.raw('UID SEARCH RETURN (UPDATE ALL) SUBJECT s2', 'U1').then(lines), [`* ESEARCH (TAG "U1") UID ALL ${u[1]}`, 'U1 OK UID SEARCH completed']);
    await run(client, 'STORE 2 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await run(client, 'EXPUNGE'), [`* ESEARCH (TAG "U1") UID REMOVEFROM (0 ${u[1]})`, '* 2 EXPUNGE', 'TAG OK EXPUNGE completed']);
    await run(client, 'SELECT LiveUid');
    assert.match(await client.status('CANCELUPDATE "U1"'), /^BAD/);
  });
});

describe('ESORT and CONTEXT=SORT over IMAP (plugin imap-esort)', () => {
  const t = imapTestAppPerSuite();

  it('announces ESORT and CONTEXT=SORT, and not when switched off', async () => {
    const client = await login(t.app);
    const [caps] = await client.command('CAPABILITY');
    for (const cap of ['ESORT', 'CONTEXT=SORT']) assert.ok(caps!.split(' ').includes(cap), cap);
    const off = await bootImapTestApp({ plugins: [['imap-esort', false]] });
    try {
      const plain = await login(off.app);
      const [offCaps] = await plain.command('CAPABILITY');
      assert.ok(!offCaps!.includes('ESORT') && !offCaps!.includes('CONTEXT=SORT'));
      assert.match(await plain.status('SELECT INBOX'), /^OK/);
      assert.match(await plain.status('SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL'), /^BAD/);
    } finally {
      await off.close();
    }
  });

  it('answers SORT RETURN with ESEARCH in sort order: MIN / MAX first and last, ALL and PARTIAL ordered', async () => {
    const client = await mailbox(t, 'Esort', 5);
    const u = await uids(client);
    assert.deepEqual(await run(client, 'SORT (ARRIVAL) UTF-8 ALL'), ['* SORT 1 2 3 4 5', 'TAG OK SORT completed']);
    assert.deepEqual(await run(client, 'SORT RETURN (MIN MAX COUNT) (REVERSE ARRIVAL) UTF-8 ALL'), ['* ESEARCH (TAG "TAG") MIN 5 MAX 1 COUNT 5', 'TAG OK SORT completed']);
    assert.deepEqual(await run(client, 'SORT RETURN () (REVERSE SUBJECT) UTF-8 2:4'), ['* ESEARCH (TAG "TAG") ALL 4,3,2', 'TAG OK SORT completed']);
    assert.deepEqual(await run(client, 'SORT RETURN (PARTIAL 2:4) (REVERSE ARRIVAL) UTF-8 ALL'), ['* ESEARCH (TAG "TAG") PARTIAL (2:4 4,3,2)', 'TAG OK SORT completed']);
    assert.deepEqual(await run(client, 'UID SORT RETURN (MAX) (ARRIVAL) UTF-8 ALL'), [`* ESEARCH (TAG "TAG") UID MAX ${u[4]}`, 'TAG OK UID SORT completed']);
    assert.deepEqual(await run(client, 'SORT RETURN (COUNT) (ARRIVAL) UTF-8 1000'), ['* ESEARCH (TAG "TAG") COUNT 0', 'TAG OK SORT completed']);
    assert.match(await client.status('SORT RETURN (PARTIAL 1:*) (ARRIVAL) UTF-8 ALL'), /^BAD/);
    assert.match(await client.status('SORT RETURN (MIN) (NOSUCHKEY) UTF-8 ALL'), /^BAD/);
    // SAVE: `$` for the next command; MIN alone saves the first in sort order
    assert.deepEqual(await run(client, 'SORT RETURN (SAVE MIN) (REVERSE ARRIVAL) UTF-8 ALL'), ['* ESEARCH (TAG "TAG") MIN 5', 'TAG OK SORT completed']);
    assert.deepEqual(await run(client, 'SEARCH $'), ['* SEARCH 5', 'TAG OK SEARCH completed']);
    assert.deepEqual(await run(client, 'SORT (ARRIVAL) UTF-8 $'), ['* SORT 5', 'TAG OK SORT completed']);
  });

  it('keeps a SORT RETURN (UPDATE) result up to date with positions in sort order', async () => {
    const client = await mailbox(t, 'LiveSort', 3);
    const u = await uids(client);
    // subjects s1 s2 s3; REVERSE SUBJECT of the flagged ones
    await run(client, 'STORE 1,3 +FLAGS.SILENT (\\Flagged)');
    assert.deepEqual(await client.raw('UID SORT RETURN (UPDATE ALL) (REVERSE SUBJECT) UTF-8 FLAGGED', 'L1').then(lines), [
      `* ESEARCH (TAG "L1") UID ALL ${u[2]},${u[0]}`,
      'L1 OK UID SORT completed',
    ]);
    // s2 sorts between s3 and s1: position 2
    assert.deepEqual(await run(client, 'STORE 2 +FLAGS.SILENT (\\Flagged)'), [`* ESEARCH (TAG "L1") UID ADDTO (2 ${u[1]})`, 'TAG OK STORE completed']);
    // a flag change that keeps membership says nothing
    assert.deepEqual(await run(client, 'STORE 1:3 +FLAGS.SILENT (\\Seen)'), ['TAG OK STORE completed']);
    // removals from the last position to the first
    assert.deepEqual(await run(client, 'STORE 1,3 -FLAGS.SILENT (\\Flagged)'), [`* ESEARCH (TAG "L1") UID REMOVEFROM (3 ${u[0]}) REMOVEFROM (1 ${u[2]})`, 'TAG OK STORE completed']);
    // a new message from another session sorts first (s9 > s2 in reverse)
    assert.match(await appendMessage(await login(t.app), 'LiveSort', message('s9'), '\\Flagged'), /^OK/);
    const noop = await run(client, 'NOOP');
    assert.deepEqual(noop.filter((l) => l.includes('ESEARCH')), [`* ESEARCH (TAG "L1") UID ADDTO (1 ${u[2]! + 1})`]);
    assert.deepEqual(await run(client, 'CANCELUPDATE "L1"'), ['TAG OK CANCELUPDATE completed']);
  });
});

const PYTHON_SEARCHRES = `
import imaplib, json, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice', 'secret')
m.select('Clients')
out = {}
typ, data = m._simple_command('SEARCH', 'RETURN', '(SAVE MIN COUNT)', 'SUBJECT', 's2')
out['esearch'] = [d.decode() for d in m.untagged_responses.pop('ESEARCH', [])]
typ, data = m.fetch('$', '(UID)')
out['fetch'] = [d.decode() for d in data]
typ, data = m._simple_command('SORT', 'RETURN', '(ALL)', '(REVERSE ARRIVAL)', 'UTF-8', 'ALL')
out['esort'] = [d.decode() for d in m.untagged_responses.pop('ESEARCH', [])]
m.logout()
print(json.dumps(out))
`;

describe('search extensions with real clients', () => {
  const t = imapListenerPerSuite();
  before(async () => {
    const c = await mailbox(t, 'Clients', 4);
    c.end();
  });

  it('imapflow asks for MIN MAX COUNT ALL and PARTIAL through ESEARCH', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: t.port, secure: false, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('Clients');
      const result = await client.search({ all: true }, { uid: true, returnOptions: ['MIN', 'MAX', 'COUNT', 'ALL'] });
      assert.deepEqual({ ...(result as object) }, { min: 1, max: 4, count: 4, all: '1:4' });
      const page = (await client.search({ all: true }, { uid: true, returnOptions: [{ partial: '-1:-2' }] })) as { partial?: { range: string } };
      assert.equal(page.partial?.range, '-1:-2');
    } finally {
      await client.logout();
    }
  });

  it('Python imaplib saves a result, fetches $ and asks for ESORT', async () => {
    const { code, stdout, stderr } = await python(PYTHON_SEARCHRES, [String(t.port)]);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout) as { esearch: string[]; fetch: string[]; esort: string[] };
    assert.equal(out.esearch.length, 1);
    assert.match(out.esearch[0]!, /^\(TAG "[A-Z0-9]+"\) MIN 2 COUNT 1$/);
    assert.deepEqual(out.fetch, ['2 (UID 2)']);
    assert.match(out.esort[0]!, /^\(TAG "[A-Z0-9]+"\) ALL 4,3,2,1$/);
  });
});

/** A command's lines, its own tag written TAG inside ESEARCH too. */
async function run(client: TestClient, command: string): Promise<string[]> {
  return (await client.command(command)).map((line) => line.replace(/^\* ESEARCH \(TAG "A\d+"\)/, '* ESEARCH (TAG "TAG")'));
}

/** A raw command's lines (CRLF split, empty dropped). */
function lines(text: string): string[] {
  return text.split('\r\n').filter(Boolean);
}
