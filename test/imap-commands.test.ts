/**
 * IMAP transcripts on the real stack (SQLite, hooks, storage plugin) over an in-memory duplex: each command
 * group with its response codes, and the generic errors (wrong state, bad syntax, BAD limit → BYE).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootImapTestApp, connect, login, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { deny } from '../hooks/verdict.ts';

describe('IMAP commands', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ imap: { maxBadCommands: 3 } });
  });
  after(() => t.close());

  it('greets with capabilities, answers CAPABILITY, NOOP, ID, NAMESPACE and LOGOUT', async () => {
    const { client, greeting } = await connect(t.app);
    assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN.*\] WildDuck ready$/);
    for (const cap of ['LITERAL+', 'SASL-IR', 'IDLE', 'UIDPLUS', 'MOVE', 'CONDSTORE', 'SPECIAL-USE', 'LIST-EXTENDED', 'UTF8=ACCEPT', 'APPENDLIMIT=']) {
      assert.ok(greeting.includes(cap), cap);
    }
    assert.deepEqual(await client.command('NOOP'), ['TAG OK NOOP completed']);
    const id = await client.command('ID ("name" "test")');
    assert.match(id[0]!, /^\* ID \("name" "WildDuck" "version" "[^"]+" "vendor" "WildDuck"\)$/);
    assert.equal(await client.status('NAMESPACE'), 'BAD Log in first');
    assert.equal(await client.status('LOGIN alice secret').then((s) => s.replace(/\[.*\] /, '')), 'OK alice authenticated');
    assert.deepEqual(await client.command('NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL', 'TAG OK NAMESPACE completed']);
    assert.deepEqual(await client.command('LOGOUT'), ['* BYE Logging out', 'TAG OK LOGOUT completed']);
    await client.done;
    assert.ok(client.closed);
  });

  it('refuses bad logins with AUTHENTICATIONFAILED and supports AUTHENTICATE PLAIN with and without SASL-IR', async () => {
    const { client } = await connect(t.app);
    assert.match(await client.status('LOGIN alice wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    const plain = Buffer.from('\0alice\0secret').toString('base64');
    const tag = client.nextTag();
    client.write(`${tag} AUTHENTICATE PLAIN\r\n`);
    assert.equal(await client.line(), '+ ');
    client.write(`${plain}\r\n`);
    assert.match(await client.untilTagged(tag), /OK \[CAPABILITY [^\]]+\] alice authenticated/);
    assert.equal(await client.status('LOGIN alice secret'), 'BAD Already authenticated');
    const second = (await connect(t.app)).client;
    assert.match(await second.status(`AUTHENTICATE PLAIN ${plain}`), /^OK/);
    const third = (await connect(t.app)).client;
    assert.equal(await third.status('AUTHENTICATE PLAIN *'), 'BAD Authentication cancelled');
    assert.match(await third.status('AUTHENTICATE CRAM-MD5'), /^NO \[CANNOT\]/);
    // malformed base64 (the POP3 AUTH PLAIN crash of issue 9) is a BAD here, and the session goes on
    // (fresh sessions: this suite says BYE after 3 BADs)
    for (const response of ['A', 'AAAAA', 'AGZ1enoA=', 'A=AA']) {
      const fourth = (await connect(t.app)).client;
      assert.equal(await fourth.status(`AUTHENTICATE PLAIN ${response}`), 'BAD Invalid base64 in SASL response', response);
      assert.match(await fourth.status('NOOP'), /^OK/);
      fourth.end();
    }
  });

  it('refuses plaintext passwords from a remote address without TLS (LOGINDISABLED, PRIVACYREQUIRED)', async () => {
    const { client, greeting } = await connect(t.app, { isLoopback: false, remoteAddress: '192.0.2.1' });
    assert.ok(greeting.includes('LOGINDISABLED'));
    assert.ok(!greeting.includes('AUTH=PLAIN'));
    assert.match(await client.status('LOGIN alice secret'), /^NO \[PRIVACYREQUIRED\]/);
    assert.match(await client.status('AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=='), /^NO \[PRIVACYREQUIRED\]/);
    const secure = (await connect(t.app, { isLoopback: false, secure: true })).client;
    assert.match(await secure.status('LOGIN alice secret'), /^OK/);
  });

  it('answers wrong-state commands, unknown commands and syntax errors with BAD, and says BYE after the limit', async () => {
    const { client } = await connect(t.app);
    assert.equal(await client.status('SELECT INBOX'), 'BAD Log in first');
    assert.equal(await client.status('FROB'), 'BAD Unknown command FROB');
    client.write('A9 LOGIN "unterminated\r\n');
    const lines = await client.take((b) => (b.includes('* BYE') ? b.indexOf('\r\n', b.indexOf('* BYE')) + 2 : -1));
    assert.match(lines, /A9 BAD Unterminated quoted string\r\n\* BYE Too many bad commands/);
    await client.done;
  });

  it('lists mailboxes with children, \\Noselect levels, special use and LIST-EXTENDED options', async () => {
    const client = await login(t.app);
    assert.equal(await client.status('CREATE Work/Projects/2024'), 'OK CREATE completed');
    assert.equal(await client.status('SUBSCRIBE Work/Projects/2024'), 'OK SUBSCRIBE completed');
    assert.equal(await client.status('CREATE Archive (USE (\\Archive))'), 'OK CREATE completed');
    assert.match(await client.status('CREATE Bad (USE (\\Bogus))'), /^NO \[USEATTR\]/);
    assert.match(await client.status('CREATE INBOX'), /^NO \[ALREADYEXISTS\]/);
    assert.match(await client.status('CREATE Archive'), /^NO \[ALREADYEXISTS\]/);
    assert.deepEqual(await client.command('LIST "" %'), [
      '* LIST (\\HasNoChildren) "/" "INBOX"',
      '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
      '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
      '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
      '* LIST (\\HasNoChildren \\Sent) "/" "Sent Mail"',
      '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
      '* LIST (\\HasChildren) "/" "Work"',
      'TAG OK LIST completed',
    ]);
    assert.deepEqual(await client.command('LIST "" ""'), ['* LIST (\\Noselect) "/" ""', 'TAG OK LIST completed']);
    assert.deepEqual(await client.command('LIST "Work/" "*"'), [
      '* LIST (\\HasChildren) "/" "Work/Projects"',
      '* LIST (\\HasNoChildren) "/" "Work/Projects/2024"',
      'TAG OK LIST completed',
    ]);
    assert.deepEqual(await client.command('LIST "" inbox'), ['* LIST (\\HasNoChildren) "/" "INBOX"', 'TAG OK LIST completed']);
    // delete the middle level: it stays as a \Noselect level because it has children
    assert.equal(await client.status('DELETE Work/Projects'), 'OK DELETE completed');
    assert.deepEqual(await client.command('LIST "" "Work/%"'), ['* LIST (\\HasChildren \\Noselect) "/" "Work/Projects"', 'TAG OK LIST completed']);
    // the \Noselect level cannot be deleted while it has children (RFC 9051 §6.3.5, RFC 5530 HASCHILDREN)
    assert.match(await client.status('DELETE Work/Projects'), /^NO \[HASCHILDREN\]/);
    assert.match(await client.status('DELETE INBOX'), /^NO \[CANNOT\]/);
    // subscriptions
    assert.equal(await client.status('UNSUBSCRIBE Work'), 'OK UNSUBSCRIBE completed');
    assert.deepEqual(await client.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work"'), [
      '* LIST (\\HasChildren \\Subscribed) "/" "Work"'.replace(' \\Subscribed', '') + ' ("CHILDINFO" ("SUBSCRIBED"))',
      'TAG OK LIST completed',
    ]);
    assert.deepEqual(await client.command('LIST (SPECIAL-USE) "" "*" RETURN (SUBSCRIBED)'), [
      '* LIST (\\HasNoChildren \\Archive) "/" "Archive"', // made by CREATE: not subscribed (imap.autoSubscribe off)
      '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" "Drafts"',
      '* LIST (\\HasNoChildren \\Junk \\Subscribed) "/" "Junk"',
      '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent Mail"',
      '* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" "Trash"',
      'TAG OK LIST completed',
    ]);
    assert.deepEqual(await client.command('LSUB "" "Work/%"'), ['* LSUB (\\Noselect) "/" "Work/Projects"', 'TAG OK LSUB completed']);
    assert.equal(await client.status('LIST (RECURSIVEMATCH) "" "*"'), 'BAD RECURSIVEMATCH needs another selection option');
  });

  it('encodes mailbox names in modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT', async () => {
    const client = await login(t.app);
    assert.equal(await client.status('CREATE "Entw&APw-rfe/R&AOk-sum&AOk-"'), 'OK CREATE completed');
    assert.deepEqual(await client.command('LIST "" "Entw*"'), [
      '* LIST (\\HasChildren) "/" "Entw&APw-rfe"',
      '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/R&AOk-sum&AOk-"',
      'TAG OK LIST completed',
    ]);
    // legal syntax, but not modified UTF-7: NO, not BAD (as Dovecot answers)
    assert.equal(await client.status('CREATE "bad&name"'), 'NO [CANNOT] Unterminated modified UTF-7 in mailbox name: bad&name');
    assert.deepEqual(await client.command('ENABLE UTF8=ACCEPT CONDSTORE'), ['* ENABLED UTF8=ACCEPT CONDSTORE', 'TAG OK ENABLE completed']);
    assert.deepEqual(await client.command('LIST "" "Entwürfe"'), ['* LIST (\\HasChildren) "/" "Entwürfe"', 'TAG OK LIST completed']);
    const status = await client.command('STATUS "Entwürfe/Résumé" (MESSAGES UIDNEXT)');
    assert.equal(status[0], '* STATUS "Entwürfe/Résumé" (MESSAGES 0 UIDNEXT 1)');
  });

  it('renames mailboxes with their children, and renaming INBOX moves its messages', async () => {
    const client = await login(t.app);
    await client.command('CREATE Old/Child');
    assert.equal(await client.status('RENAME Old New/Place'), 'OK RENAME completed');
    assert.deepEqual(await client.command('LIST "" "New/*"'), [
      '* LIST (\\HasChildren) "/" "New/Place"',
      '* LIST (\\HasNoChildren) "/" "New/Place/Child"',
      'TAG OK LIST completed',
    ]);
    assert.match(await client.status('RENAME Missing Other'), /^NO \[NONEXISTENT\]/);
    assert.match(await client.status('RENAME New/Place Trash'), /^NO \[ALREADYEXISTS\]/);
    const other = await login(t.app);
    await appendMessage(other, 'INBOX', message('inbox-1'));
    await appendMessage(other, 'INBOX', message('inbox-2'));
    assert.equal(await client.status('RENAME INBOX "Old Inbox"'), 'OK RENAME completed');
    const status = await client.command('STATUS "Old Inbox" (MESSAGES)');
    assert.equal(status[0], '* STATUS "Old Inbox" (MESSAGES 2)');
    assert.equal((await client.command('STATUS INBOX (MESSAGES)'))[0], '* STATUS "INBOX" (MESSAGES 0)');
  });

  it('APPENDs with flags and date, answers APPENDUID, TRYCREATE for a missing mailbox, and STATUS counts', async () => {
    const client = await login(t.app);
    await client.command('CREATE Appends');
    const tag = client.nextTag();
    const text = message('dated');
    client.write(`${tag} APPEND Appends (\\Seen $Work) "05-Mar-2023 14:15:16 +0200" {${Buffer.byteLength(text)}+}\r\n${text}\r\n`);
    assert.match(await client.untilTagged(tag), new RegExp(`^${tag} OK \\[APPENDUID \\d+ 1\\] APPEND completed\\r\\n$`));
    assert.match(await appendMessage(client, 'Nowhere', message('x')), /^NO \[TRYCREATE\]/);
    assert.match(await appendMessage(client, 'Appends', message('second')), /^OK \[APPENDUID \d+ 2\]/);
    const status = await client.command('STATUS Appends (MESSAGES RECENT UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)');
    assert.match(status[0]!, /^\* STATUS "Appends" \(MESSAGES 2 RECENT 2 UIDNEXT 3 UNSEEN 1 SIZE \d+ HIGHESTMODSEQ \d+\)$/);
    assert.match(await client.status('STATUS Nowhere (MESSAGES)'), /^NO \[NONEXISTENT\]/);
    await client.command('SELECT Appends');
    const fetched = await client.command('FETCH 1 (FLAGS INTERNALDATE)');
    // STATUS HIGHESTMODSEQ above enabled CONDSTORE (RFC 7162 §3.1): FLAGS now come with MODSEQ
    assert.match(fetched[0]!, /^\* 1 FETCH \(FLAGS \(\\Seen \$Work \\Recent\) INTERNALDATE "05-Mar-2023 12:15:16 \+0000" MODSEQ \(\d+\)\)$/);
  });

  it('SELECTs and EXAMINEs with the RFC 3501 untagged data; CLOSE expunges silently, UNSELECT does not', async () => {
    const client = await login(t.app);
    await client.command('CREATE Sel');
    await appendMessage(client, 'Sel', message('one'), '\\Seen');
    await appendMessage(client, 'Sel', message('two'));
    const selected = await client.command('SELECT Sel (CONDSTORE)');
    assert.equal(selected[0], '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)');
    assert.equal(selected[1], '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted');
    assert.equal(selected[2], '* 2 EXISTS');
    assert.equal(selected[3], '* 2 RECENT');
    assert.equal(selected[4], '* OK [UNSEEN 2] First unseen message');
    assert.match(selected[5]!, /^\* OK \[UIDVALIDITY \d+\]/);
    assert.match(selected[6]!, /^\* OK \[UIDNEXT 3\]/);
    assert.match(selected[7]!, /^\* OK \[HIGHESTMODSEQ \d+\]/);
    assert.equal(selected[8], 'TAG OK [READ-WRITE] SELECT completed');
    assert.equal(await client.status('STORE 1 +FLAGS.SILENT (\\Deleted)'), 'OK STORE completed');
    const examined = await client.command('EXAMINE Sel');
    assert.equal(examined[0], '* OK [CLOSED] Previous mailbox closed');
    assert.equal(examined[2], '* OK [PERMANENTFLAGS ()] No permanent flags permitted');
    assert.equal(examined[4], '* 0 RECENT', 'the first SELECT took \\Recent');
    assert.equal(examined[examined.length - 1], 'TAG OK [READ-ONLY] EXAMINE completed');
    assert.match(await client.status('STORE 1 +FLAGS (\\Seen)'), /^NO \[READ-ONLY\]/);
    assert.equal(await client.status('UNSELECT'), 'OK UNSELECT completed');
    assert.equal(await client.status('FETCH 1 FLAGS'), 'BAD No mailbox selected');
    await client.command('SELECT Sel');
    assert.deepEqual(await client.command('CLOSE'), ['TAG OK CLOSE completed']);
    assert.equal((await client.command('STATUS Sel (MESSAGES)'))[0], '* STATUS "Sel" (MESSAGES 1)');
    assert.match(await client.status('SELECT Missing'), /^NO \[NONEXISTENT\]/);
  });

  it('FETCHes items, sections and partial ranges, setting \\Seen for non-PEEK bodies', async () => {
    const client = await login(t.app);
    await client.command('CREATE Fetch');
    await appendMessage(client, 'Fetch', message('parts', 'Line one\r\nLine two\r\n'));
    await client.command('SELECT Fetch');
    const peek = await client.raw('UID FETCH 1 (BODY.PEEK[TEXT]<5.8> RFC822.SIZE)', 'P1');
    assert.match(peek, /^\* 1 FETCH \(UID 1 BODY\[TEXT\]<5> \{8\}\r\none\r\nLin RFC822\.SIZE \d+\)\r\nP1 OK/);
    assert.deepEqual(await client.command('FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS (\\Recent))', 'TAG OK FETCH completed']);
    const body = await client.raw('FETCH 1 BODY[1]', 'P2');
    assert.match(body, /^\* 1 FETCH \(BODY\[1\] \{20\}\r\nLine one\r\nLine two\r\n FLAGS \(\\Seen \\Recent\)\)\r\nP2 OK/);
    assert.equal(await client.status('FETCH 5 FLAGS'), 'BAD Invalid message sequence number');
    assert.deepEqual(await client.command('UID FETCH 99 FLAGS'), ['TAG OK UID FETCH completed']);
    assert.match(await client.status('FETCH 1 (FLAGS'), /^BAD/);
  });

  it('STOREs flags (+, -, replace, .SILENT) and reports UNCHANGEDSINCE conflicts as MODIFIED', async () => {
    const client = await login(t.app);
    await client.command('CREATE Store');
    await appendMessage(client, 'Store', message('a'));
    await appendMessage(client, 'Store', message('b'));
    await client.command('SELECT Store');
    assert.deepEqual(await client.command('STORE 1:2 +FLAGS (\\Flagged $Todo)'), [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo \\*)] Flags permitted',
      '* 1 FETCH (FLAGS (\\Flagged $Todo \\Recent))',
      '* 2 FETCH (FLAGS (\\Flagged $Todo \\Recent))',
      'TAG OK STORE completed',
    ]);
    assert.deepEqual(await client.command('UID STORE 2 -FLAGS (\\Flagged)'), ['* 2 FETCH (FLAGS ($Todo \\Recent) UID 2)', 'TAG OK UID STORE completed']);
    assert.deepEqual(await client.command('STORE 1 FLAGS.SILENT (\\Answered)'), ['TAG OK STORE completed']);
    // message 2 was changed before message 1: UNCHANGEDSINCE its modseq lets 2 through and stops 1
    // the first CONDSTORE-enabling command in a selected mailbox reports HIGHESTMODSEQ first (RFC 7162 §3.1)
    const [highest, fetched] = await client.command('FETCH 2 MODSEQ');
    assert.match(highest!, /^\* OK \[HIGHESTMODSEQ \d+\] /);
    const modseq = Number(/MODSEQ \((\d+)\)/.exec(fetched!)![1]);
    const conditional = await client.command(`STORE 1:2 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Seen)`);
    assert.match(conditional[0]!, /^\* 2 FETCH \(FLAGS \(\$Todo \\Seen \\Recent\) MODSEQ \(\d+\)\)$/);
    assert.equal(conditional[1], 'TAG OK [MODIFIED 1] Conditional STORE failed for some messages');
    // RFC 7162 §3.2: under CONDSTORE a .SILENT STORE still reports each message's new MODSEQ, without FLAGS
    const silent = await client.command(`UID STORE 2 (UNCHANGEDSINCE ${Number.MAX_SAFE_INTEGER}) +FLAGS.SILENT (\\Draft)`);
    assert.match(silent[0]!, /^\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)$/);
    assert.equal(silent[1], 'TAG OK UID STORE completed');
    assert.equal(await client.status('STORE 1 +FLAGS (\\Bogus)'), 'BAD Unknown system flag \\Bogus');
  });

  it('SEARCHes by flags, headers, text and UID, with MODSEQ under CONDSTORE', async () => {
    const client = await login(t.app);
    await client.command('CREATE Search');
    await appendMessage(client, 'Search', message('apples', 'Crunchy fruit\r\n'), '\\Seen');
    await appendMessage(client, 'Search', message('pears', 'Soft fruit\r\n'));
    await appendMessage(client, 'Search', message('plums', 'Stone fruit\r\n'), '\\Flagged');
    await client.command('SELECT Search');
    assert.deepEqual(await client.command('SEARCH UNSEEN'), ['* SEARCH 2 3', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH SUBJECT pears'), ['* SEARCH 2', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('UID SEARCH OR FLAGGED BODY crunchy'), ['* SEARCH 1 3', 'TAG OK UID SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH CHARSET UTF-8 TEXT "stone"'), ['* SEARCH 3', 'TAG OK SEARCH completed']);
    const modseqSearch = await client.command('SEARCH MODSEQ 1');
    assert.match(modseqSearch[0]!, /^\* OK \[HIGHESTMODSEQ \d+\] /);
    assert.match(modseqSearch[1]!, /^\* SEARCH 1 2 3 \(MODSEQ \d+\)$/);
    assert.match(await client.status('SEARCH CHARSET X-NOPE foo'), /^NO \[BADCHARSET\]|^BAD/);
  });

  it('COPYs and MOVEs with COPYUID, TRYCREATE, and EXPUNGEs (also by UID)', async () => {
    const client = await login(t.app);
    await client.command('CREATE Src');
    await client.command('CREATE Dst');
    for (const s of ['m1', 'm2', 'm3', 'm4']) await appendMessage(client, 'Src', message(s));
    await client.command('SELECT Src');
    assert.match(await client.status('COPY 1:2 Dst'), /^OK \[COPYUID \d+ 1:2 1:2\] COPY completed$/);
    assert.match(await client.status('COPY 1 Missing'), /^NO \[TRYCREATE\]/);
    const moved = await client.command('MOVE 2:3 Dst');
    assert.match(moved[0]!, /^\* OK \[COPYUID \d+ 2:3 3:4\] Moved$/);
    assert.deepEqual(moved.slice(1), ['* 2 EXPUNGE', '* 2 EXPUNGE', 'TAG OK MOVE completed']);
    assert.deepEqual(await client.command('UID SEARCH ALL'), ['* SEARCH 1 4', 'TAG OK UID SEARCH completed']);
    await client.command('STORE 1:2 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await client.command('UID EXPUNGE 4'), ['* 2 EXPUNGE', 'TAG OK UID EXPUNGE completed']);
    assert.deepEqual(await client.command('EXPUNGE'), ['* 1 EXPUNGE', 'TAG OK EXPUNGE completed']);
    assert.deepEqual(await client.command('EXPUNGE'), ['TAG OK EXPUNGE completed']);
    assert.equal((await client.command('STATUS Dst (MESSAGES)'))[0], '* STATUS "Dst" (MESSAGES 4)');
  });

  it('DELETE of the selected mailbox: a refused delete leaves it selected without [CLOSED]; a done one closes it', async () => {
    const client = await login(t.app);
    await client.command('CREATE Doomed');
    await appendMessage(client, 'Doomed', message('keep me'));
    await client.command('SELECT Doomed');
    // taps are added at boot in real life; here after boot to keep one app for the suite
    let refuse = true;
    t.app.hooks.mailbox.beforeDelete.tapPromise('test-refuse-delete', async () => (refuse ? deny('CANNOT', 'Kept by policy') : undefined));
    assert.deepEqual(await client.command('DELETE Doomed'), ['TAG NO [CANNOT] Kept by policy']);
    const fetched = await client.command('FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.match(fetched[0]!, /^\* 1 FETCH \(BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}$/);
    assert.equal(fetched[1], 'Subject: keep me');
    assert.equal(fetched[fetched.length - 1], 'TAG OK FETCH completed');
    refuse = false;
    assert.deepEqual(await client.command('DELETE Doomed'), ['* OK [CLOSED] Previous mailbox closed', 'TAG OK DELETE completed']);
    assert.equal(await client.status('FETCH 1 (FLAGS)'), 'BAD No mailbox selected');
  });

  it('lets a plugin deny a command or implement a new verb through imap.command', async () => {
    const hook = t.app.hooks.imap.command;
    const client = await login(t.app);
    // taps are added at boot in real life; here after boot to keep one app for the suite
    hook.for('XHELLO').tapPromise('test-xhello', async () => ({ untagged: ['* XHELLO world'], text: 'Hello done' }));
    hook.for('NAMESPACE').tapPromise('test-deny', async () => deny('NOPERM', 'Not for you'));
    assert.deepEqual(await client.command('XHELLO'), ['* XHELLO world', 'TAG OK Hello done']);
    assert.deepEqual(await client.command('NAMESPACE'), ['TAG NO [NOPERM] Not for you']);
  });
});
