/**
 * IMAP4rev2 (RFC 9051) through `ENABLE IMAP4rev2`: transcripts of an IMAP4rev1 session and an IMAP4rev2 session
 * on the same mailbox, side by side — \Recent gone (SELECT, NOOP, FETCH FLAGS, STATUS), SELECT's LIST line,
 * LIST-STATUS built in, STATUS DELETED, UTF-8 mailbox names, the response codes rev2 lists — and Python's imaplib
 * (`enable('IMAP4rev2')`, ESEARCH answers) over a loopback socket.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendMessage, connect, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { python } from './helpers/python.ts';

/** Logs in and enables IMAP4rev2. */
async function rev2Login(app: Parameters<typeof login>[0]): Promise<TestClient> {
  const client = await login(app);
  assert.deepEqual(await client.command('ENABLE IMAP4rev2'), ['* ENABLED IMAP4rev2', 'TAG OK ENABLE completed']);
  return client;
}

/** CREATE's answer (RFC 8474: with the new mailbox's MAILBOXID). */
const CREATED = /^OK \[MAILBOXID \(F[0-9a-f]{24}\)\] CREATE completed$/;

/** SELECT's untagged lines without the ones that vary per run (UIDVALIDITY, HIGHESTMODSEQ, MAILBOXID). */
async function selectLines(client: TestClient, name: string): Promise<string[]> {
  return (await client.command(`SELECT ${name}`)).filter((l) => !/UIDVALIDITY|HIGHESTMODSEQ|MAILBOXID/.test(l));
}

describe('IMAP4rev2 (ENABLE IMAP4rev2)', () => {
  // each test opens its own sessions and keeps them to the end of the suite
  const t = imapTestAppPerSuite({ imap: { maxConnectionsPerUser: 100 } });

  it('is announced next to IMAP4rev1 and enabled once, only before a mailbox is selected', async () => {
    const { client, greeting } = await connect(t.app);
    assert.match(greeting, /\[CAPABILITY IMAP4rev1 IMAP4rev2 /);
    assert.equal(await client.status('ENABLE IMAP4rev2'), 'BAD Log in first');
    assert.match(await client.status('LOGIN alice secret'), /^OK \[CAPABILITY IMAP4rev1 IMAP4rev2 /);
    assert.deepEqual(await client.command('ENABLE imap4REV2 CONDSTORE'), ['* ENABLED IMAP4rev2 CONDSTORE', 'TAG OK ENABLE completed']);
    assert.deepEqual(await client.command('ENABLE IMAP4rev2'), ['* ENABLED', 'TAG OK ENABLE completed'], 'already on: not listed again');

    const late = await login(t.app);
    await late.command('SELECT INBOX');
    assert.deepEqual(await late.command('ENABLE IMAP4rev2'), ['* ENABLED', 'TAG OK ENABLE completed'], 'not while a mailbox is selected');
    assert.ok((await late.command('STATUS INBOX (RECENT)'))[0]!.startsWith('* STATUS'), 'still an IMAP4rev1 session');
  });

  it('SELECT: IMAP4rev1 gets RECENT and [UNSEEN], IMAP4rev2 the mailbox LIST line instead; rev2 claims no \\Recent', async () => {
    const writer = await login(t.app);
    await writer.command('CREATE Both');
    await appendMessage(writer, 'Both', message('first'), '\\Seen');
    await appendMessage(writer, 'Both', message('second'));

    // the rev2 session selects first: it takes no \Recent, so the rev1 session that follows still gets both
    const rev2 = await rev2Login(t.app);
    assert.deepEqual(await selectLines(rev2, 'Both'), [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted',
      '* 2 EXISTS',
      '* LIST () "/" "Both"',
      '* OK [UIDNEXT 3] Predicted next UID',
      'TAG OK [READ-WRITE] SELECT completed',
    ]);
    const rev1 = await login(t.app);
    assert.deepEqual(await selectLines(rev1, 'Both'), [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted',
      '* 2 EXISTS',
      '* 2 RECENT',
      '* OK [UNSEEN 2] First unseen message',
      '* OK [UIDNEXT 3] Predicted next UID',
      'TAG OK [READ-WRITE] SELECT completed',
    ]);

    assert.deepEqual(await rev1.command('FETCH 1:2 (FLAGS)'), ['* 1 FETCH (FLAGS (\\Seen \\Recent))', '* 2 FETCH (FLAGS (\\Recent))', 'TAG OK FETCH completed']);
    assert.deepEqual(await rev2.command('FETCH 1:2 (FLAGS)'), ['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS ())', 'TAG OK FETCH completed']);

    // a new message: EXISTS for both, RECENT only for rev1
    assert.match(await appendMessage(writer, 'Both', message('third')), /^OK \[APPENDUID \d+ 3\] APPEND completed$/);
    assert.deepEqual(await rev1.command('NOOP'), ['* 3 EXISTS', '* 3 RECENT', 'TAG OK NOOP completed'], 'RECENT counts all three');
    assert.deepEqual(await rev2.command('NOOP'), ['* 3 EXISTS', 'TAG OK NOOP completed']);

    // flag changes from elsewhere: the unsolicited FETCH carries UID (RFC 9051 §7.5.2), without \Recent in rev2
    await writer.command('SELECT Both');
    await writer.command('STORE 3 +FLAGS.SILENT (\\Flagged)');
    assert.deepEqual(await rev2.command('NOOP'), ['* 3 FETCH (FLAGS (\\Flagged) UID 3)', 'TAG OK NOOP completed']);
    assert.deepEqual(await rev1.command('NOOP'), ['* 3 FETCH (FLAGS (\\Flagged \\Recent) UID 3)', 'TAG OK NOOP completed']);
  });

  it('SEARCH: rev1 gets * SEARCH, rev2 * ESEARCH with its tag (ALL by default, nothing when no match), RETURN options in both', async () => {
    const writer = await login(t.app);
    await writer.command('CREATE Searched');
    for (const subject of ['apple', 'banana', 'apple pie']) await appendMessage(writer, 'Searched', message(subject));
    const rev1 = await login(t.app);
    const rev2 = await rev2Login(t.app);
    await rev1.command('EXAMINE Searched');
    await rev2.command('EXAMINE Searched');
    assert.deepEqual(await rev1.command('SEARCH SUBJECT apple'), ['* SEARCH 1 3', 'TAG OK SEARCH completed']);
    const tag = rev2.nextTag();
    assert.equal(await rev2.raw('SEARCH SUBJECT apple', tag), `* ESEARCH (TAG "${tag}") ALL 1,3\r\n${tag} OK SEARCH completed\r\n`);
    assert.deepEqual(await rev2.command('UID SEARCH SUBJECT apple'), [`* ESEARCH (TAG "A${Number(tag.slice(1)) + 1}") UID ALL 1,3`, 'TAG OK UID SEARCH completed']);
    assert.deepEqual(await rev2.command('SEARCH SUBJECT cherry'), [`* ESEARCH (TAG "A${Number(tag.slice(1)) + 2}")`, 'TAG OK SEARCH completed']);
    assert.deepEqual(await rev1.command('SEARCH SUBJECT cherry'), ['* SEARCH', 'TAG OK SEARCH completed']);
    for (const client of [rev1, rev2]) {
      const lines = await client.command('SEARCH RETURN (MIN MAX COUNT) SUBJECT apple');
      assert.match(lines[0]!, /^\* ESEARCH \(TAG "A\d+"\) MIN 1 MAX 3 COUNT 2$/);
    }
    // nothing is \Recent in rev2: RECENT and NEW find nothing there, while rev1 (which claimed them) finds all three
    assert.deepEqual(await rev1.command('SEARCH RECENT'), ['* SEARCH 1 2 3', 'TAG OK SEARCH completed']);
    assert.match((await rev2.command('SEARCH NEW'))[0]!, /^\* ESEARCH \(TAG "A\d+"\)$/);
  });

  it('SELECT of a special-use mailbox: its LIST line carries the attribute; a failed SELECT closes the previous one', async () => {
    const rev2 = await rev2Login(t.app);
    const lines = await selectLines(rev2, 'Trash');
    assert.ok(lines.includes('* LIST (\\Trash) "/" "Trash"'), lines.join('\n'));
    assert.deepEqual(await rev2.command('SELECT Nowhere'), ['* OK [CLOSED] Previous mailbox closed', 'TAG NO [NONEXISTENT] No such mailbox']);
    assert.equal(await rev2.status('FETCH 1 FLAGS'), 'BAD No mailbox selected');
  });

  it('STATUS: RECENT is BAD in rev2, DELETED counts \\Deleted messages in both and follows flag changes', async () => {
    const writer = await login(t.app);
    await writer.command('CREATE Counted');
    await appendMessage(writer, 'Counted', message('a'), '\\Deleted');
    await appendMessage(writer, 'Counted', message('b'));
    const rev1 = await login(t.app);
    const rev2 = await rev2Login(t.app);
    assert.deepEqual(await rev1.command('STATUS Counted (MESSAGES RECENT DELETED)'), ['* STATUS "Counted" (MESSAGES 2 RECENT 2 DELETED 1)', 'TAG OK STATUS completed']);
    assert.equal(await rev2.status('STATUS Counted (MESSAGES RECENT)'), 'BAD IMAP4rev2 has no RECENT status item');
    assert.deepEqual(await rev2.command('STATUS Counted (MESSAGES DELETED)'), ['* STATUS "Counted" (MESSAGES 2 DELETED 1)', 'TAG OK STATUS completed']);

    await appendMessage(writer, 'Counted', message('c'), '\\Deleted \\Seen');
    assert.deepEqual(await rev2.command('STATUS Counted (DELETED)'), ['* STATUS "Counted" (DELETED 2)', 'TAG OK STATUS completed'], 'a new message counts');
    await writer.command('SELECT Counted');
    await writer.command('STORE 2 +FLAGS.SILENT (\\Deleted)');
    assert.deepEqual(await rev2.command('STATUS Counted (DELETED)'), ['* STATUS "Counted" (DELETED 3)', 'TAG OK STATUS completed'], 'a flag change counts');
    await writer.command('EXPUNGE');
    assert.deepEqual(await rev2.command('STATUS Counted (MESSAGES DELETED)'), ['* STATUS "Counted" (MESSAGES 0 DELETED 0)', 'TAG OK STATUS completed']);
    assert.equal(await rev2.status('STATUS Counted (BOGUS)'), 'BAD Invalid status item');
  });

  it('LIST RETURN (STATUS ...) is built in for rev2 (no list-status plugin loaded here), BAD for rev1', async () => {
    const rev1 = await login(t.app);
    const rev2 = await rev2Login(t.app);
    await rev1.command('CREATE Tree/Leaf');
    await rev1.command('DELETE Tree'); // Tree stays as a \Noselect level: no STATUS line for it
    await appendMessage(rev1, 'Tree/Leaf', message('leaf'));
    assert.equal(await rev1.status('LIST "" "Tree*" RETURN (STATUS (MESSAGES))'), 'BAD Unsupported return option STATUS');
    assert.deepEqual(await rev2.command('LIST "" "Tree*" RETURN (STATUS (MESSAGES UNSEEN DELETED))'), [
      '* LIST (\\HasChildren \\Noselect) "/" "Tree"',
      '* LIST (\\HasNoChildren) "/" "Tree/Leaf"',
      '* STATUS "Tree/Leaf" (MESSAGES 1 UNSEEN 1 DELETED 0)',
      'TAG OK LIST completed',
    ]);
    assert.equal(await rev2.status('LIST "" "*" RETURN (STATUS)'), 'BAD STATUS needs a list of status items');
    assert.equal(await rev2.status('LIST "" "*" RETURN (STATUS (RECENT))'), 'BAD IMAP4rev2 has no RECENT status item');
    assert.equal(await rev2.status('LIST "" "*" RETURN (XOTHER)'), 'BAD Unsupported return option XOTHER');
  });

  it('mailbox names are UTF-8 in rev2 and modified UTF-7 in rev1, for the same mailbox', async () => {
    const rev1 = await login(t.app);
    const rev2 = await rev2Login(t.app);
    assert.match(await rev2.status('CREATE "Entwürfe/Ünï"'), CREATED);
    assert.deepEqual(await rev1.command('LIST "" "Entw*"'), ['* LIST (\\HasChildren) "/" "Entw&APw-rfe"', '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/&ANw-n&AO8-"', 'TAG OK LIST completed']);
    assert.deepEqual(await rev2.command('LIST "" "Entw*"'), ['* LIST (\\HasChildren) "/" "Entwürfe"', '* LIST (\\HasNoChildren) "/" "Entwürfe/Ünï"', 'TAG OK LIST completed']);
    assert.deepEqual(await rev2.command('STATUS "Entwürfe/Ünï" (MESSAGES)'), ['* STATUS "Entwürfe/Ünï" (MESSAGES 0)', 'TAG OK STATUS completed']);
    assert.deepEqual(await rev1.command('STATUS "Entw&APw-rfe/&ANw-n&AO8-" (MESSAGES)'), ['* STATUS "Entw&APw-rfe/&ANw-n&AO8-" (MESSAGES 0)', 'TAG OK STATUS completed']);

    // a name written in another Unicode normalization form is taken as its NFC form; CREATE and SELECT say so
    const decomposed = 'Cafe\u0301';
    const created = await rev2.command(`CREATE "${decomposed}"`);
    assert.equal(created[0], `* LIST () "/" "Caf\u00e9" ("OLDNAME" ("${decomposed}"))`);
    assert.match(created[1]!, /^TAG OK \[MAILBOXID \(F[0-9a-f]{24}\)\] CREATE completed$/);
    assert.equal(created.length, 2);
    const lines = await selectLines(rev2, `"${decomposed}"`);
    assert.ok(lines.includes(`* LIST () "/" "Caf\u00e9" ("OLDNAME" ("${decomposed}"))`), lines.join('\n'));
    assert.ok((await selectLines(rev2, '"Caf\u00e9"')).includes('* LIST () "/" "Caf\u00e9"'), 'written in NFC: no OLDNAME');
  });

  it('response codes: ALREADYEXISTS, NONEXISTENT, HASCHILDREN, TRYCREATE, APPENDUID, COPYUID', async () => {
    const rev2 = await rev2Login(t.app);
    assert.match(await rev2.status('CREATE Codes/Child'), CREATED);
    assert.match(await rev2.status('CREATE Codes'), /^NO \[ALREADYEXISTS\]/);
    assert.match(await rev2.status('DELETE NoSuchBox'), /^NO \[NONEXISTENT\]/);
    assert.match(await rev2.status('RENAME NoSuchBox Elsewhere'), /^NO \[NONEXISTENT\]/);
    assert.match(await rev2.status('RENAME Codes INBOX'), /^NO \[ALREADYEXISTS\]/);
    assert.equal(await rev2.status('DELETE Codes'), 'OK DELETE completed', 'the parent goes, its child stays');
    assert.equal(await rev2.status('DELETE Codes'), 'NO [HASCHILDREN] Mailbox has inferior hierarchical names');
    assert.match(await appendMessage(rev2, 'Codes/Child', message('coded')), /^OK \[APPENDUID \d+ 1\]/);
    assert.match(await appendMessage(rev2, 'NoSuchBox', message('lost')), /^NO \[TRYCREATE\]/);
    await rev2.command('SELECT Codes/Child');
    assert.match(await rev2.status('COPY 1 NoSuchBox'), /^NO \[TRYCREATE\]/);
    assert.match(await rev2.status('COPY 1 INBOX'), /^OK \[COPYUID \d+ 1 \d+\]/);
  });

  it('CLOSE expunges silently, EXPUNGE reports, UNSELECT keeps \\Deleted messages; LSUB still answers', async () => {
    const rev2 = await rev2Login(t.app);
    await rev2.command('CREATE Closing');
    for (const subject of ['x', 'y', 'z']) await appendMessage(rev2, 'Closing', message(subject), '\\Deleted');
    await rev2.command('SELECT Closing');
    assert.deepEqual(await rev2.command('UID EXPUNGE 1'), ['* 1 EXPUNGE', 'TAG OK UID EXPUNGE completed']);
    assert.deepEqual(await rev2.command('UNSELECT'), ['TAG OK UNSELECT completed']);
    assert.deepEqual(await rev2.command('STATUS Closing (MESSAGES DELETED)'), ['* STATUS "Closing" (MESSAGES 2 DELETED 2)', 'TAG OK STATUS completed']);
    await rev2.command('SELECT Closing');
    assert.deepEqual(await rev2.command('CLOSE'), ['TAG OK CLOSE completed']);
    assert.deepEqual(await rev2.command('STATUS Closing (MESSAGES)'), ['* STATUS "Closing" (MESSAGES 0)', 'TAG OK STATUS completed']);
    await rev2.command('SUBSCRIBE Closing'); // CREATE subscribes only with imap.autoSubscribe
    assert.deepEqual(await rev2.command('LSUB "" "Closing"'), ['* LSUB (\\HasNoChildren) "/" "Closing"', 'TAG OK LSUB completed']);
  });
});

describe('IMAP4rev2 with the list-status plugin loaded', () => {
  const t = imapTestAppPerSuite({ plugins: ['list-status'] });

  it('the plugin answers rev1 sessions; rev2 sessions get the built-in LIST-STATUS (with DELETED, which the plugin does not know)', async () => {
    const rev1 = await login(t.app);
    const rev2 = await rev2Login(t.app);
    await appendMessage(rev1, 'INBOX', message('counted'), '\\Deleted');
    assert.equal(await rev1.status('LIST "" INBOX RETURN (STATUS (DELETED))'), 'BAD Invalid status item', "the plugin's answer");
    assert.deepEqual(await rev1.command('LIST "" INBOX RETURN (STATUS (MESSAGES))'), ['* LIST (\\HasNoChildren) "/" "INBOX"', '* STATUS "INBOX" (MESSAGES 1)', 'TAG OK LIST completed']);
    assert.deepEqual(await rev2.command('LIST "" INBOX RETURN (STATUS (MESSAGES DELETED))'), [
      '* LIST (\\HasNoChildren) "/" "INBOX"',
      '* STATUS "INBOX" (MESSAGES 1 DELETED 1)',
      'TAG OK LIST completed',
    ]);
  });
});

/** Python's imaplib in IMAP4rev2 mode: prints one JSON object of what it saw. */
const PYTHON_REV2 = `
import imaplib, json, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
out = {'caps': sorted(m.capabilities)}
m.login('alice', 'secret')
out['enable'] = m.enable('IMAP4rev2')[0]
m.append('INBOX', None, None, b'From: py@example.com\\r\\nSubject: rev2\\r\\n\\r\\nHello\\r\\n')
out['select'] = m.select('INBOX')[1][0].decode()
out['recent'] = 'RECENT' in m.untagged_responses
out['list'] = [x.decode() for x in m.untagged_responses.get('LIST', [])]
out['fetch'] = m.fetch('1', '(FLAGS)')[1][0].decode()
out['status'] = m.status('INBOX', '(MESSAGES DELETED)')[1][0].decode()
typ, data = m._simple_command('LIST', '""', 'INBOX', 'RETURN', '(STATUS (MESSAGES))')
out['liststatus'] = [x.decode() for x in m._untagged_response(typ, data, 'STATUS')[1]]
out['search'] = m.search(None, 'ALL')[0]
out['esearch'] = [x.decode() for x in m.untagged_responses.pop('ESEARCH', [])]
m.logout()
print(json.dumps(out))
`;

describe('IMAP4rev2 with a real client (python imaplib)', () => {
  const t = imapListenerPerSuite();

  it('enables IMAP4rev2 and sees no \\Recent, the SELECT LIST line, STATUS DELETED and LIST-STATUS', async () => {
    const run = await python(PYTHON_REV2, [String(t.port)]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.ok((out.caps as string[]).includes('IMAP4REV2'));
    assert.equal(out.enable, 'OK');
    assert.equal(out.select, '1');
    assert.equal(out.recent, false);
    assert.deepEqual(out.list, ['() "/" "INBOX"']);
    assert.equal(out.fetch, '1 (FLAGS ())');
    assert.equal(out.status, '"INBOX" (MESSAGES 1 DELETED 0)');
    assert.deepEqual(out.liststatus, ['"INBOX" (MESSAGES 1)']);
    assert.equal(out.search, 'OK');
    assert.equal((out.esearch as string[]).length, 1);
    assert.match((out.esearch as string[])[0]!, /^\(TAG "[A-Z]+\d+"\) ALL 1$/);
  });
});
