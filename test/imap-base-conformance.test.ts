/**
 * Base protocol conformance (issue 13, "what failed"), as transcripts over the IMAP harness (SQLite, or the MongoDB
 * stand-in with WILDDUCK_TEST_BACKEND=mongodb):
 * - NIL is an astring: SEARCH SUBJECT/BODY/HEADER/KEYWORD NIL search for "NIL", STORE +FLAGS NIL stores the keyword;
 * - SEARCH BODY looks in the body only, TEXT in header and body;
 * - FROM/TO/CC/BCC match the parsed addresses: display names, a comment standing for one, comments inside an address
 *   removed, group names and members;
 * - names that are legal syntax but not modified UTF-7 get NO (LIST: an empty OK), never BAD;
 * - CREATE subscribes only with imap.autoSubscribe; DELETE keeps the subscription (`\NonExistent`), a new mailbox of
 *   that name takes it back, UNSUBSCRIBE drops it;
 * - LIST (SUBSCRIBED RECURSIVEMATCH) gives CHILDINFO to a parent with a subscribed child the patterns do not list,
 *   whether or not the parent is subscribed itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appendMessage, imapTestAppPerSuite, login } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';

/** The untagged lines of a command (the tagged line checked to be OK). */
async function untagged(client: TestClient, command: string): Promise<string[]> {
  const lines = await client.command(command);
  assert.match(lines[lines.length - 1]!, /^TAG OK/, `${command}: ${lines.join(' | ')}`);
  return lines.slice(0, -1);
}

function raw(headers: string, body: string): string {
  return `${headers.split('\n').join('\r\n')}\r\n\r\n${body}\r\n`;
}

describe('NIL as an astring', () => {
  const t = imapTestAppPerSuite();

  it('searches for the string NIL and stores the keyword NIL', async () => {
    const client = await login(t.app);
    await client.command('CREATE Nil');
    assert.equal(await appendMessage(client, 'Nil', raw('Subject: NiL\nX-Note: nil here', 'nil')), 'OK [APPENDUID ' + (await uidValidity(client, 'Nil')) + ' 1] APPEND completed');
    await appendMessage(client, 'Nil', raw('Subject: other', 'nothing'));
    await client.command('SELECT Nil');
    assert.deepEqual(await untagged(client, 'SEARCH SUBJECT NIL'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH BODY nil'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH HEADER X-Note NIL'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH KEYWORD NIL'), ['* SEARCH']);
    assert.equal(await client.status('STORE 1 -FLAGS (\\Recent)'), 'OK STORE completed'); // \Recent cannot be stored or removed
    const stored = await untagged(client, 'STORE 1 +FLAGS NIL');
    assert.ok(stored.includes('* 1 FETCH (FLAGS (NIL \\Recent))'), stored.join(' | '));
    assert.deepEqual(await untagged(client, 'FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS (NIL \\Recent))']);
    assert.deepEqual(await untagged(client, 'SEARCH KEYWORD NIL'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH UNKEYWORD nil'), ['* SEARCH 2']);
    // NIL as a mailbox name or LIST pattern is the name "NIL" (`CREATE Nil` above made "NIL")
    assert.deepEqual(await client.command('LIST "" NIL'), ['* LIST (\\HasNoChildren) "/" "NIL"', 'TAG OK LIST completed']);
    assert.deepEqual(await client.command('LIST "" nil/%'), ['TAG OK LIST completed']);
    client.end();
  });
});

async function uidValidity(client: TestClient, mailbox: string): Promise<number> {
  const lines = await untagged(client, `STATUS ${mailbox} (UIDVALIDITY)`);
  return Number(/UIDVALIDITY (\d+)/.exec(lines[0]!)![1]);
}

describe('SEARCH BODY, TEXT and address keys', () => {
  const t = imapTestAppPerSuite();

  it('BODY looks in the body only; TEXT in header and body', async () => {
    const client = await login(t.app);
    await client.command('CREATE Words');
    await appendMessage(client, 'Words', raw('Subject: zebra crossing\nFrom: Walrus <walrus@example.org>', 'a quiet giraffe'));
    await appendMessage(client, 'Words', raw('Subject: giraffe news', 'no stripes here'));
    await client.command('SELECT Words');
    assert.deepEqual(await untagged(client, 'SEARCH BODY zebra'), ['* SEARCH']);
    assert.deepEqual(await untagged(client, 'SEARCH BODY walrus'), ['* SEARCH']);
    assert.deepEqual(await untagged(client, 'SEARCH BODY giraffe'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH TEXT zebra'), ['* SEARCH 1']);
    assert.deepEqual(await untagged(client, 'SEARCH TEXT giraffe'), ['* SEARCH 1 2']);
    assert.deepEqual(await untagged(client, 'SEARCH TEXT stripes'), ['* SEARCH 2']);
    assert.deepEqual(await untagged(client, 'SEARCH NOT BODY giraffe'), ['* SEARCH 2']);
    client.end();
  });

  it('FROM / TO / CC / BCC match parsed addresses: names, a comment as the name, comments inside an address, groups', async () => {
    const client = await login(t.app);
    await client.command('CREATE People');
    const messages = [
      'From: plain-from@domain.org\nTo: plain-to@domain.org',
      'From: Named Sender <named-from@domain.org>\nCc: Carbon Copy <cc-person@domain.org>',
      'From: <commented (a comment)@ (another) domain.org>\nBcc: <hidden@domain.org>',
      'From: trailing@domain.org (Trailing Name)\nTo: to-user@domain.org (Recipient Name)',
      'From: sender@domain.org\nTo: team: first@domain.org, second@domain.org;, others: third@domain.org;',
      'From: sender@domain.org\nTo: undisclosed:;',
    ];
    for (const [i, headers] of messages.entries()) await appendMessage(client, 'People', raw(`${headers}\nSubject: m${i + 1}`, 'body'));
    await client.command('SELECT People');
    assert.deepEqual(await untagged(client, 'SEARCH FROM named-from@domain.org'), ['* SEARCH 2']);
    assert.deepEqual(await untagged(client, 'SEARCH FROM "named sender"'), ['* SEARCH 2']);
    // comments inside the address are not part of it
    assert.deepEqual(await untagged(client, 'SEARCH FROM commented@domain.org'), ['* SEARCH 3']);
    assert.deepEqual(await untagged(client, 'SEARCH FROM "a comment"'), ['* SEARCH']);
    // a comment after a bare address stands for the display name
    assert.deepEqual(await untagged(client, 'SEARCH FROM "trailing name"'), ['* SEARCH 4']);
    assert.deepEqual(await untagged(client, 'SEARCH FROM ailing'), ['* SEARCH 4']);
    assert.deepEqual(await untagged(client, 'SEARCH TO "recipient name"'), ['* SEARCH 4']);
    assert.deepEqual(await untagged(client, 'SEARCH CC "carbon copy"'), ['* SEARCH 2']);
    assert.deepEqual(await untagged(client, 'SEARCH BCC hidden@domain.org'), ['* SEARCH 3']);
    // groups: their names and their members
    assert.deepEqual(await untagged(client, 'SEARCH TO team'), ['* SEARCH 5']);
    assert.deepEqual(await untagged(client, 'SEARCH TO third@domain.org'), ['* SEARCH 5']);
    assert.deepEqual(await untagged(client, 'SEARCH TO undisclosed'), ['* SEARCH 6']);
    assert.deepEqual(await untagged(client, 'SEARCH TO domain.org'), ['* SEARCH 1 4 5']);
    client.end();
  });
});

describe('ENVELOPE addresses', () => {
  const t = imapTestAppPerSuite();

  it('keeps source routes, leaves comments out of groups, and takes a trailing comment as the name', async () => {
    const client = await login(t.app);
    await client.command('CREATE Env');
    const headers = [
      'From: <@route:user@domain>',
      'Sender: <@r1,@r2:other@domain>',
      'Reply-To: user@domain (Real Name)',
      'To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;',
      'Cc: group:;, group2: (foo) ;',
      'Bcc: <inside (not a name)@ (nor this) domain.org>',
      'Subject: env',
    ].join('\n');
    await appendMessage(client, 'Env', raw(headers, 'body'));
    await client.command('EXAMINE Env');
    assert.deepEqual(await untagged(client, 'FETCH 1 ENVELOPE'), [
      '* 1 FETCH (ENVELOPE (NIL "env" ((NIL "@route" "user" "domain")) ((NIL "@r1,@r2" "other" "domain")) (("Real Name" NIL "user" "domain")) ' +
        '((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ' +
        '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) ((NIL NIL "inside" "domain.org")) NIL NIL))',
    ]);
    client.end();
  });
});

describe('mailbox names that are not modified UTF-7', () => {
  const t = imapTestAppPerSuite();

  it('answers NO for a name argument and an empty OK for a LIST pattern, and the session goes on', async () => {
    const client = await login(t.app);
    const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}";
    assert.match(await client.status(`SELECT ${name}`), /^NO \[CANNOT\] /);
    assert.match(await client.status(`CREATE ${name}`), /^NO \[CANNOT\] /);
    assert.match(await client.status('STATUS "a&Jjo" (MESSAGES)'), /^NO \[CANNOT\] /);
    assert.match(await client.status('RENAME INBOX "x&AGE-"'), /^NO \[CANNOT\] /); // encoded ASCII
    assert.deepEqual(await client.command(`LIST "" ${name}%*`), ['TAG OK LIST completed']);
    assert.deepEqual(await client.command(`LIST "" (${name} INBOX)`), ['* LIST (\\HasNoChildren) "/" "INBOX"', 'TAG OK LIST completed']);
    assert.deepEqual(await client.command(`LSUB "" ${name}*`), ['TAG OK LSUB completed']);
    // APPEND to such a name: NO, and the message literal (small or large) is consumed, not read as commands
    assert.match(await appendMessage(client, '"bad&name"', raw('Subject: x', 'small')), /^NO \[CANNOT\] /);
    assert.match(await appendMessage(client, '"bad&name"', raw('Subject: y', 'line of a large message\r\n'.repeat(20000))), /^NO \[CANNOT\] /);
    // a literal `~foo` is an atom, not literal8
    assert.deepEqual(await client.command('LIST "" ~foo'), ['TAG OK LIST completed']);
    assert.match(await client.status('SELECT ~foo'), /^NO \[NONEXISTENT\]/);
    // still BAD: 8-bit in a quoted name without UTF8=ACCEPT is not IMAP4rev1 syntax
    assert.match(await client.status('SELECT "caf\u00e9"'), /^BAD /);
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
    client.end();
  });
});

describe('subscriptions', () => {
  const t = imapTestAppPerSuite();

  it('CREATE does not subscribe (imap.autoSubscribe off); the special-use mailboxes of a new user are subscribed', async () => {
    const client = await login(t.app);
    assert.equal(await client.status('CREATE Plain/Child'), 'OK CREATE completed');
    assert.deepEqual(await untagged(client, 'LSUB "" *'), [
      '* LSUB (\\HasNoChildren) "/" "INBOX"',
      '* LSUB (\\HasNoChildren \\Drafts) "/" "Drafts"',
      '* LSUB (\\HasNoChildren \\Junk) "/" "Junk"',
      '* LSUB (\\HasNoChildren \\Sent) "/" "Sent Mail"',
      '* LSUB (\\HasNoChildren \\Trash) "/" "Trash"',
    ]);
    client.end();
  });

  it('DELETE keeps the subscription: \\NonExistent in LIST (SUBSCRIBED), \\Noselect in LSUB, taken back by CREATE', async () => {
    const client = await login(t.app);
    await client.command('CREATE Gone');
    assert.equal(await client.status('SUBSCRIBE Gone'), 'OK SUBSCRIBE completed');
    assert.equal(await client.status('DELETE Gone'), 'OK DELETE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED) "" Gone'), ['* LIST (\\NonExistent \\Subscribed) "/" "Gone"']);
    assert.deepEqual(await untagged(client, 'LIST "" Gone'), []);
    assert.deepEqual(await untagged(client, 'LIST "" * RETURN (SUBSCRIBED)').then((l) => l.filter((x) => x.includes('Gone'))), []);
    assert.deepEqual(await untagged(client, 'LSUB "" Gone'), ['* LSUB (\\Noselect) "/" "Gone"']);
    assert.match(await client.status('SELECT Gone'), /^NO \[NONEXISTENT\]/);
    // the name is subscribed again when a mailbox of that name comes back
    assert.equal(await client.status('CREATE Gone'), 'OK CREATE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED) "" Gone'), ['* LIST (\\HasNoChildren \\Subscribed) "/" "Gone"']);
    // and UNSUBSCRIBE of a deleted name drops the kept subscription
    assert.equal(await client.status('DELETE Gone'), 'OK DELETE completed');
    assert.equal(await client.status('UNSUBSCRIBE Gone'), 'OK UNSUBSCRIBE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED) "" Gone'), []);
    assert.deepEqual(await untagged(client, 'LSUB "" Gone'), []);
    assert.equal(await client.status('CREATE Gone'), 'OK CREATE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED) "" Gone'), []);
    // SUBSCRIBE of a name without a mailbox is refused
    assert.match(await client.status('SUBSCRIBE Never'), /^NO \[NONEXISTENT\]/);
    client.end();
  });

  it('CHILDINFO: for a parent, subscribed or not, whose subscribed child the patterns do not list', async () => {
    const client = await login(t.app);
    for (const name of ['cx/child', 'cy/child', 'cz/a', 'cz/b']) assert.equal(await client.status(`CREATE ${name}`), 'OK CREATE completed');
    for (const name of ['cx', 'cx/child', 'cy/child', 'cz/a', 'cz/b']) assert.equal(await client.status(`SUBSCRIBE ${name}`), 'OK SUBSCRIBE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" c%'), [
      '* LIST (\\HasChildren \\Subscribed) "/" "cx" ("CHILDINFO" ("SUBSCRIBED"))',
      '* LIST (\\HasChildren) "/" "cy" ("CHILDINFO" ("SUBSCRIBED"))',
      '* LIST (\\HasChildren) "/" "cz" ("CHILDINFO" ("SUBSCRIBED"))',
    ]);
    // a child the patterns list speaks for itself
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (cy cy/child)'), ['* LIST (\\HasNoChildren \\Subscribed) "/" "cy/child"']);
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" cx*'), [
      '* LIST (\\HasChildren \\Subscribed) "/" "cx"',
      '* LIST (\\HasNoChildren \\Subscribed) "/" "cx/child"',
    ]);
    // one of two children listed: the other still earns CHILDINFO
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (cz cz/a)'), [
      '* LIST (\\HasChildren) "/" "cz" ("CHILDINFO" ("SUBSCRIBED"))',
      '* LIST (\\HasNoChildren \\Subscribed) "/" "cz/a"',
    ]);
    // without RECURSIVEMATCH only subscribed names, no CHILDINFO
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED) "" c%'), ['* LIST (\\HasChildren \\Subscribed) "/" "cx"']);
    // a deleted subscribed child still counts (RETURN (CHILDREN) reports existing children only)
    assert.equal(await client.status('DELETE cy/child'), 'OK DELETE completed');
    assert.deepEqual(await untagged(client, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" cy RETURN (CHILDREN)'), ['* LIST (\\HasNoChildren) "/" "cy" ("CHILDINFO" ("SUBSCRIBED"))']);
    client.end();
  });
});

describe('imap.autoSubscribe', () => {
  const t = imapTestAppPerSuite({ imap: { autoSubscribe: true } });

  it('subscribes what CREATE makes, the new parent levels too', async () => {
    const client = await login(t.app);
    assert.equal(await client.status('CREATE Auto/Sub'), 'OK CREATE completed');
    assert.deepEqual(await untagged(client, 'LSUB "" Auto*'), ['* LSUB (\\HasChildren) "/" "Auto"', '* LSUB (\\HasNoChildren) "/" "Auto/Sub"']);
    client.end();
  });
});
