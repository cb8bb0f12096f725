/**
 * QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, SELECT/EXAMINE (QRESYNC ...) with VANISHED (EARLIER) and changed flags,
 * VANISHED instead of EXPUNGE once enabled, UID FETCH (CHANGEDSINCE m VANISHED), the error cases, and the answer
 * after the change log was pruned. Transcripts on the real stack, then imapflow syncing with QRESYNC.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { appendMessage, connect, createWithMessages, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';

/** The number in `[NAME n]` of a SELECT's lines. */
function code(lines: string[], name: string): number {
  const line = lines.find((l) => l.includes(`[${name} `));
  assert.ok(line, `${name} in ${lines.join(' | ')}`);
  return Number(line.match(new RegExp(`\\[${name} (\\d+)\\]`))![1]);
}

async function qresyncClient(app: Parameters<typeof login>[0]): Promise<TestClient> {
  const client = await login(app);
  assert.deepEqual(await client.command('ENABLE QRESYNC'), ['* ENABLED QRESYNC', 'TAG OK ENABLE completed']);
  return client;
}

describe('QRESYNC', () => {
  const t = imapTestAppPerSuite();

  it('is announced, enabled by ENABLE (with CONDSTORE), and its SELECT parameter needs the ENABLE first', async () => {
    const { greeting } = await connect(t.app);
    assert.match(greeting, / CONDSTORE QRESYNC /);
    const plain = await login(t.app);
    await createWithMessages(plain, 'Enable', 1);
    assert.match(await plain.status('SELECT Enable (QRESYNC (1 1))'), /^BAD \[CLIENTBUG\] QRESYNC is not enabled/);
    assert.match(await plain.status('SELECT Enable'), /^OK/);
    assert.match(await plain.status('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)'), /^BAD \[CLIENTBUG\] QRESYNC is not enabled/);

    const client = await qresyncClient(t.app);
    // QRESYNC implies CONDSTORE: FLAGS come with MODSEQ
    const selected = await client.command('SELECT Enable');
    assert.match(selected[selected.length - 1]!, /^TAG OK \[READ-WRITE\]/);
    assert.match((await client.command('FETCH 1 (FLAGS)'))[0]!, /^\* 1 FETCH \(FLAGS \(\) MODSEQ \(\d+\)\)$/);
    assert.deepEqual(await client.command('ENABLE QRESYNC'), ['* ENABLED', 'TAG OK ENABLE completed']);
    // syntax of the parameter
    assert.match(await client.status('SELECT Enable (QRESYNC)'), /^BAD/);
    assert.match(await client.status('SELECT Enable (QRESYNC (0 1))'), /^BAD Invalid QRESYNC uidvalidity/);
    assert.match(await client.status('SELECT Enable (QRESYNC (1 x))'), /^BAD Invalid QRESYNC mod-sequence/);
    assert.match(await client.status('SELECT Enable (QRESYNC (1 1 1:x))'), /^BAD/);
    assert.match(await client.status('SELECT Enable (QRESYNC (1 1 1:2 (1:2)))'), /^BAD Invalid QRESYNC seq-match-data/);
    // the modifier: UID FETCH only, with CHANGEDSINCE
    await client.command('SELECT Enable');
    assert.match(await client.status('UID FETCH 1:* (FLAGS) (VANISHED)'), /^BAD VANISHED requires CHANGEDSINCE/);
    assert.match(await client.status('FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)'), /^BAD VANISHED is only allowed with UID FETCH/);
    assert.match(await client.status('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)'), /^BAD Unknown FETCH modifier/);
  });

  it('SELECT (QRESYNC ...) reports what vanished and what changed since the client last saw the mailbox', async () => {
    const a = await login(t.app);
    await createWithMessages(a, 'Resync', 6);
    const first = await a.command('SELECT Resync');
    const validity = code(first, 'UIDVALIDITY');
    const seen = code(first, 'HIGHESTMODSEQ');
    // changes the resyncing client did not see: a flag, two expunges, one new message
    await a.command('UID STORE 2 +FLAGS (\\Flagged)');
    await a.command('UID STORE 3,5 +FLAGS (\\Deleted)');
    await a.command('EXPUNGE');
    await appendMessage(a, 'Resync', message('Resync-7'));
    await a.command('LOGOUT');

    const b = await qresyncClient(t.app);
    const lines = await b.command(`SELECT Resync (QRESYNC (${validity} ${seen}))`);
    assert.ok(lines.includes('* 5 EXISTS'), lines.join('\n'));
    const after = lines.slice(lines.findIndex((l) => l.includes('[HIGHESTMODSEQ')) + 1);
    assert.equal(after[0], '* VANISHED (EARLIER) 3,5');
    assert.match(after[1]!, /^\* 2 FETCH \(FLAGS \(\\Flagged\) UID 2 MODSEQ \(\d+\)\)$/);
    assert.match(after[2]!, /^\* 5 FETCH \(FLAGS \(\) UID 7 MODSEQ \(\d+\)\)$/); // \Recent went to the appending session
    assert.match(after[3]!, /^TAG OK \[READ-WRITE\]/);
    const now = code(lines, 'HIGHESTMODSEQ');

    // reselecting says CLOSED first; known-uids limits both answers
    const known = await b.command(`EXAMINE Resync (QRESYNC (${validity} ${seen} 1:4))`);
    assert.equal(known[0], '* OK [CLOSED] Previous mailbox closed');
    const tail = known.slice(known.findIndex((l) => l.includes('[HIGHESTMODSEQ')) + 1);
    assert.equal(tail[0], '* VANISHED (EARLIER) 3');
    assert.match(tail[1]!, /^\* 2 FETCH \(FLAGS \(\\Flagged\) UID 2 MODSEQ/);
    assert.match(tail[2]!, /^TAG OK \[READ-ONLY\]/);
    // with seq-match-data (accepted; the answer is the same)
    const matched = await b.command(`EXAMINE Resync (QRESYNC (${validity} ${seen} 1:7 (1:3 1:3)))`);
    assert.ok(matched.includes('* VANISHED (EARLIER) 3,5'), matched.join('\n'));

    // up to date: nothing more than a plain SELECT; another UIDVALIDITY: the parameter is ignored
    const current = await b.command(`SELECT Resync (QRESYNC (${validity} ${now}))`);
    assert.match(current[current.length - 2]!, /HIGHESTMODSEQ/);
    const other = await b.command(`SELECT Resync (QRESYNC (${validity + 1} ${seen}))`);
    assert.ok(!other.some((l) => l.includes('VANISHED') || l.includes('FETCH')), other.join('\n'));
    // a modseq of 0: every message's flags, and every UID expunged so far
    const all = await b.command(`SELECT Resync (QRESYNC (${validity} 0))`);
    assert.ok(all.includes('* VANISHED (EARLIER) 3,5'), all.join('\n'));
    assert.equal(all.filter((l) => / FETCH \(/.test(l)).length, 5);
  });

  it('reports expunges as VANISHED once enabled, for the session itself and for others; others keep EXPUNGE', async () => {
    const a = await qresyncClient(t.app);
    await createWithMessages(a, 'Live', 5);
    await a.command('CREATE LiveTarget');
    const b = await qresyncClient(t.app);
    const plain = await login(t.app);
    await a.command('SELECT Live');
    await b.command('SELECT Live');
    await plain.command('SELECT Live');

    await a.command('UID STORE 2,4 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await a.command('EXPUNGE'), ['* VANISHED 2,4', 'TAG OK EXPUNGE completed']);
    const noop = await b.command('NOOP');
    assert.ok(noop.includes('* VANISHED 2,4'), noop.join('\n'));
    assert.ok(!noop.some((l) => l.endsWith('EXPUNGE')), noop.join('\n'));
    const old = await plain.command('NOOP');
    assert.deepEqual(old.filter((l) => l.endsWith('EXPUNGE')), ['* 2 EXPUNGE', '* 3 EXPUNGE']);

    // MOVE and UID EXPUNGE too
    const moved = await a.command('UID MOVE 3 LiveTarget');
    assert.match(moved[0]!, /^\* OK \[COPYUID \d+ 3 1\]/);
    assert.equal(moved[1], '* VANISHED 3');
    await a.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await a.command('UID EXPUNGE 5'), ['* VANISHED 5', 'TAG OK UID EXPUNGE completed']);
    // not during FETCH by sequence number (RFC 3501 §7.4.1 holds for VANISHED too), then at NOOP
    const during = await b.command('FETCH 1:* (UID)');
    assert.ok(!during.some((l) => l.includes('VANISHED')), during.join('\n'));
    assert.ok((await b.command('NOOP')).includes('* VANISHED 3,5'));
  });

  it('UID FETCH (CHANGEDSINCE m VANISHED) lists expunged UIDs in the set before the changed messages', async () => {
    const a = await qresyncClient(t.app);
    await createWithMessages(a, 'Fetch', 6);
    const since = code(await a.command('SELECT Fetch'), 'HIGHESTMODSEQ');
    await a.command('UID STORE 1,6 +FLAGS.SILENT (\\Deleted)');
    await a.command('EXPUNGE');
    await a.command('UID STORE 4 +FLAGS.SILENT (\\Seen)');

    const lines = await a.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${since} VANISHED)`);
    assert.equal(lines[0], '* VANISHED (EARLIER) 1,6');
    assert.match(lines[1]!, /^\* 3 FETCH \(UID 4 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)$/);
    assert.equal(lines[2], 'TAG OK UID FETCH completed');
    const part = await a.command(`UID FETCH 2:5 (FLAGS) (CHANGEDSINCE ${since} VANISHED)`);
    assert.ok(!part.some((l) => l.includes('VANISHED')), part.join('\n'));
    assert.equal(part.length, 2);
    // CHANGEDSINCE alone: no VANISHED
    const plain = await a.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${since})`);
    assert.ok(!plain.some((l) => l.includes('VANISHED')));
  });

  it('after the change log was pruned, answers with every UID not in the mailbox (a larger set, RFC 7162 §3.2.5.2)', async () => {
    const a = await qresyncClient(t.app);
    await createWithMessages(a, 'Pruned', 6);
    const first = await a.command('SELECT Pruned');
    const validity = code(first, 'UIDVALIDITY');
    const seen = code(first, 'HIGHESTMODSEQ');
    await a.command('UID STORE 2 +FLAGS.SILENT (\\Deleted)');
    await a.command('EXPUNGE');
    const later = code(await a.command('SELECT Pruned'), 'HIGHESTMODSEQ');
    await a.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
    await a.command('EXPUNGE');
    await a.command('UNSELECT');
    // exact while the log holds the expunges
    assert.ok((await a.command(`SELECT Pruned (QRESYNC (${validity} ${later}))`)).includes('* VANISHED (EARLIER) 5'));
    await a.command('UNSELECT');

    await t.app.storage.changes.prune(Date.now() + 60_000);
    const lines = await a.command(`SELECT Pruned (QRESYNC (${validity} ${seen}))`);
    assert.ok(lines.includes('* VANISHED (EARLIER) 2,5'), lines.join('\n'));
    const known = await a.command(`SELECT Pruned (QRESYNC (${validity} ${later} 3:6))`);
    assert.ok(known.includes('* VANISHED (EARLIER) 5'), known.join('\n'));
    const fetched = await a.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${seen} VANISHED)`);
    assert.equal(fetched[0], '* VANISHED (EARLIER) 2,5');
  });
});

describe('QRESYNC with imapflow', () => {
  const t = imapListenerPerSuite();

  function flow(): { client: ImapFlow; vanished: Array<{ uid: number; earlier: boolean }>; flags: Array<{ uid?: number; flags: Set<string> }> } {
    const vanished: Array<{ uid: number; earlier: boolean }> = [];
    const flags: Array<{ uid?: number; flags: Set<string> }> = [];
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: t.port,
      secure: false,
      doSTARTTLS: false,
      qresync: true,
      auth: { user: 'alice', pass: 'secret' },
      logger: false,
      expungeHandler: async (event: { uid?: number; earlier?: boolean; vanished: boolean }) => {
        if (event.vanished && event.uid) vanished.push({ uid: event.uid, earlier: Boolean(event.earlier) });
      },
    } as ConstructorParameters<typeof ImapFlow>[0]);
    client.on('flags', (event: { uid?: number; flags: Set<string> }) => flags.push(event));
    return { client, vanished, flags };
  }

  it('resyncs a mailbox: flags changed and messages expunged while away, then live VANISHED', async () => {
    const setup = await login(t.app);
    await createWithMessages(setup, 'Phone', 5);

    // the client's first visit: it remembers UIDVALIDITY and HIGHESTMODSEQ
    const first = flow();
    await first.client.connect();
    assert.ok(first.client.enabled.has('QRESYNC'), 'imapflow enabled QRESYNC');
    const box = await first.client.mailboxOpen('Phone');
    const uidValidity = box.uidValidity;
    const seen = box.highestModseq!;
    await first.client.logout();

    // while it is away
    await setup.command('SELECT Phone');
    await setup.command('UID STORE 1 +FLAGS (\\Seen)');
    await setup.command('UID STORE 2,4 +FLAGS.SILENT (\\Deleted)');
    await setup.command('EXPUNGE');

    const again = flow();
    await again.client.connect();
    const reopened = await again.client.mailboxOpen('Phone', { uidValidity, changedSince: seen } as never);
    assert.equal(reopened.exists, 3);
    assert.ok(reopened.highestModseq! > seen);
    assert.deepEqual(again.vanished, [
      { uid: 2, earlier: true },
      { uid: 4, earlier: true },
    ]);
    const changed = again.flags.find((f) => f.uid === 1);
    assert.ok(changed && changed.flags.has('\\Seen'), again.flags.map((f) => `${f.uid}: ${[...f.flags].join(' ')}`).join('; '));

    // a fetch with CHANGEDSINCE asks for VANISHED too
    again.vanished.length = 0;
    const messages = [];
    for await (const m of again.client.fetch('1:*', { flags: true }, { uid: true, changedSince: seen })) messages.push(m.uid);
    assert.deepEqual(messages, [1]);
    assert.deepEqual(again.vanished.map((v) => v.uid), [2, 4]);

    // live: another session expunges; imapflow hears VANISHED (not EARLIER) and counts it
    again.vanished.length = 0;
    await setup.command('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
    await setup.command('EXPUNGE');
    await again.client.noop();
    assert.deepEqual(again.vanished, [{ uid: 5, earlier: false }]);
    assert.equal(again.client.mailbox && again.client.mailbox.exists, 2);
    await again.client.logout();
  });
});
