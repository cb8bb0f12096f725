/**
 * Two or more sessions on one mailbox: other sessions' changes arrive as EXISTS / EXPUNGE / FETCH FLAGS only
 * where RFC 3501 §7.4.1 allows (never an EXPUNGE during FETCH, STORE or SEARCH), \Recent goes to exactly one
 * session, IDLE hears changes promptly, a tagged command instead of DONE is served, autologout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { imapTestAppPerSuite, bootImapTestApp, connect, createWithMessages, login, twoSessionsOn, appendMessage, message } from './helpers/imap-harness.ts';

describe('IMAP sessions sharing a mailbox', () => {
  const t = imapTestAppPerSuite();

  it('reports new mail, flag changes and expunges made elsewhere on NOOP, and its own changes once', async () => {
    const [a, b] = await twoSessionsOn(t.app, 'Shared1', 2);
    await appendMessage(b, 'Shared1', message('third'));
    await b.command('STORE 1 +FLAGS (\\Flagged)');
    // B's APPEND reported the new message to B first, so B holds its \Recent
    assert.deepEqual(await a.command('NOOP'), ['* 3 EXISTS', '* 2 RECENT', '* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)', 'TAG OK NOOP completed']);
    await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    assert.deepEqual(await a.command('NOOP'), ['* 2 EXPUNGE', 'TAG OK NOOP completed']);
    assert.deepEqual(await a.command('STORE 1 -FLAGS (\\Flagged)'), ['* 1 FETCH (FLAGS (\\Recent))', 'TAG OK STORE completed']);
    assert.deepEqual(await a.command('NOOP'), ['TAG OK NOOP completed'], 'own change not reported twice');
    assert.deepEqual(await b.command('NOOP'), ['* 1 FETCH (FLAGS () UID 1)', 'TAG OK NOOP completed']);
  });

  it('announces a keyword another session added (FLAGS) before a FETCH shows it', async () => {
    const [a, b] = await twoSessionsOn(t.app, 'Keywords1', 1);
    await b.command('STORE 1 +FLAGS ($Fresh)');
    for (const fetch of ['FETCH 1 (FLAGS)', 'FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])']) {
      const lines = await a.command(fetch);
      const flags = lines.findIndex((l) => l.startsWith('* FLAGS ') && l.includes('$Fresh'));
      const shown = lines.findIndex((l) => l.includes('FETCH (') && l.includes('$Fresh'));
      assert.ok(shown >= 0, lines.join('|'));
      if (fetch === 'FETCH 1 (FLAGS)') assert.ok(flags >= 0 && flags < shown, `FLAGS first: ${lines.join('|')}`);
      else assert.equal(flags, -1, 'announced once');
    }
  });

  it('never sends EXPUNGE during FETCH, STORE or SEARCH, but does during UID FETCH', async () => {
    const [a, b] = await twoSessionsOn(t.app, 'Shared2', 3);
    await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    await appendMessage(b, 'Shared2', message('fourth'));
    // message 1 keeps its sequence number until an EXPUNGE may be sent; the new message is announced
    const fetch = await a.command('FETCH 1:* (UID)');
    assert.deepEqual(fetch, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 4 EXISTS', '* 3 RECENT', 'TAG OK FETCH completed']);
    assert.deepEqual(await a.command('FETCH 1 BODY.PEEK[HEADER]'), ['TAG OK [EXPUNGEISSUED] Some messages were expunged meanwhile']);
    const store = await a.command('STORE 2 +FLAGS (\\Seen)');
    assert.ok(!store.some((l) => l.includes('EXPUNGE')));
    assert.deepEqual(await a.command('SEARCH ALL'), ['* SEARCH 2 3 4', 'TAG OK SEARCH completed'], 'sequence numbers as the client still knows them');
    const uidFetch = await a.command('UID FETCH 4 (UID)');
    assert.deepEqual(uidFetch, ['* 4 FETCH (UID 4)', '* 1 EXPUNGE', 'TAG OK UID FETCH completed']);
    assert.deepEqual(await a.command('FETCH 3 (UID)'), ['* 3 FETCH (UID 4)', 'TAG OK FETCH completed']);
  });

  it('gives \\Recent to exactly one session', async () => {
    const a = await login(t.app);
    const b = await login(t.app);
    const c = await login(t.app);
    await createWithMessages(c, 'Recent1', 2);
    const first = await a.command('SELECT Recent1');
    const second = await b.command('SELECT Recent1');
    assert.ok(first.includes('* 2 RECENT'));
    assert.ok(second.includes('* 0 RECENT'));
    await appendMessage(c, 'Recent1', message('new'));
    const [na, nb] = await Promise.all([a.command('NOOP'), b.command('NOOP')]);
    const recentOf = (lines: string[]) => Number(/^\* (\d+) RECENT$/.exec(lines.find((l) => l.endsWith(' RECENT')) ?? '* -1 RECENT')![1]);
    assert.ok(na.includes('* 3 EXISTS') && nb.includes('* 3 EXISTS'));
    assert.equal(recentOf(na) - 2 + recentOf(nb), 1, `${na.join('|')} / ${nb.join('|')}`);
    const examined = await c.command('EXAMINE Recent1');
    assert.ok(examined.includes('* 0 RECENT'));
  });

  it('never loops on "* 0 EXISTS" after the last message is expunged', async () => {
    const [a, b] = await twoSessionsOn(t.app, 'Empty1', 1);
    await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    assert.deepEqual(await a.command('NOOP'), ['* 1 EXPUNGE', 'TAG OK NOOP completed']);
    assert.deepEqual(await a.command('NOOP'), ['TAG OK NOOP completed']);
    assert.deepEqual(await a.command('FETCH 1:* FLAGS'), ['TAG OK FETCH completed']);
  });

  it('pushes changes to an IDLE session promptly and ends IDLE on DONE', async () => {
    const [a, b] = await twoSessionsOn(t.app, 'Idle1', 1);
    a.write('I1 IDLE\r\n');
    assert.equal(await a.line(), '+ idling');
    const started = Date.now();
    await appendMessage(b, 'Idle1', message('pushed'));
    assert.equal(await a.line(1000), '* 2 EXISTS');
    assert.match(await a.line(1000), /^\* [12] RECENT$/); // whichever session reported it first holds \Recent
    await b.command('STORE 1 +FLAGS (\\Answered)');
    assert.match(await a.line(1000), /^\* 1 FETCH \(FLAGS \(\\Answered( \\Recent)?\) UID 1\)$/);
    await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await b.command('EXPUNGE');
    const lines = [await a.line(1000)];
    if (lines[0]!.includes('FETCH')) lines.push(await a.line(1000));
    assert.equal(lines.pop(), '* 1 EXPUNGE');
    assert.ok(Date.now() - started < 2000);
    a.write('DONE\r\n');
    assert.equal(await a.line(), 'I1 OK IDLE terminated');
  });

  it('serves a tagged command sent instead of DONE', async () => {
    const a = await login(t.app);
    await a.command('SELECT INBOX');
    a.write('I1 IDLE\r\n');
    assert.equal(await a.line(), '+ idling');
    a.write('I2 NOOP\r\n');
    assert.equal(await a.line(), 'I1 OK IDLE terminated');
    assert.equal(await a.line(), 'I2 OK NOOP completed');
  });
});

describe('IMAP timers', () => {
  const t = imapTestAppPerSuite({ imap: { idleRestartSeconds: 1 } });

  it('sends a keep-alive during IDLE every imap.idleRestartSeconds', async () => {
    const a = await login(t.app);
    a.write('I1 IDLE\r\n');
    assert.equal(await a.line(), '+ idling');
    assert.equal(await a.line(2500), '* OK Still here');
    a.write('DONE\r\n');
    assert.equal(await a.line(), 'I1 OK IDLE terminated');
  });

  it('refuses a login beyond imap.maxConnectionsPerUser with LIMIT and counts logouts', async () => {
    const limited = await bootImapTestApp({ imap: { maxConnectionsPerUser: 2 } });
    try {
      const a = await login(limited.app);
      await login(limited.app);
      const { client } = await connect(limited.app);
      assert.match(await client.status('LOGIN alice secret'), /^NO \[LIMIT\]/);
      await a.command('LOGOUT');
      await a.done;
      assert.match(await client.status('LOGIN alice secret'), /^OK/);
    } finally {
      await limited.close();
    }
  });

  it('logs out an idle client with BYE', async () => {
    const { client } = await connect(t.app, { idleTimeoutMs: 150 });
    assert.equal(await client.line(1000), '* BYE Autologout; idle for too long');
    await client.done;
  });
});
