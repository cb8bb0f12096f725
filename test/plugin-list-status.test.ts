/** LIST-STATUS (RFC 5819), the plugin guide's worked example: transcripts on the real stack, on and off. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootImapTestApp, login, appendMessage, message, connect } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { parseListLine } from '../plugins/list-status.ts';

describe('list-status: parseListLine', () => {
  it('reads attributes and the name as written (atom, quoted, literal)', () => {
    assert.deepEqual(parseListLine('* LIST (\\HasNoChildren) "/" INBOX'), { attributes: ['\\HasNoChildren'], name: 'INBOX', text: 'INBOX' });
    assert.deepEqual(parseListLine('* LIST () "/" "a \\"b\\"" ("CHILDINFO" ("SUBSCRIBED"))'), { attributes: [], name: '"a \\"b\\""', text: 'a "b"' });
    assert.deepEqual(parseListLine('* LIST () "/" {2}\r\nab'), { attributes: [], name: '{2}\r\nab', text: 'ab' });
    assert.equal(parseListLine('* LSUB () "/" x'), null);
  });
});

describe('list-status plugin', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ plugins: ['list-status'] });
  });
  after(() => t.close());

  it('announces LIST-STATUS and answers STATUS after each selectable LIST line', async () => {
    const { greeting } = await connect(t.app);
    assert.ok(greeting.includes(' LIST-STATUS'));
    const client = await login(t.app);
    assert.match(await appendMessage(client, 'INBOX', message('one')), /^OK/);
    assert.match(await appendMessage(client, 'INBOX', message('two'), '\\Seen'), /^OK/);
    assert.match(await client.status('CREATE "Work/Projekte &AOQ-"'), /^OK/);
    const inbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!;

    const lines = await client.command('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE))');
    const inboxAt = lines.indexOf('* LIST (\\HasNoChildren) "/" "INBOX"');
    assert.ok(inboxAt >= 0, lines.join('\n'));
    const counters = await t.app.storage.mailboxes.counters(inbox.id);
    assert.equal(lines[inboxAt + 1], `* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY ${inbox.uidValidity} SIZE ${counters.size})`);
    const work = lines.findIndex((l) => l.endsWith('"/" "Work/Projekte &AOQ-"'));
    assert.match(lines[work + 1]!, /^\* STATUS "Work\/Projekte &AOQ-" \(MESSAGES 0 UNSEEN 0 UIDNEXT 1 /);
    assert.equal(lines.filter((l) => l.startsWith('* STATUS')).length, lines.filter((l) => l.startsWith('* LIST') && !l.includes('\\Noselect')).length);
    assert.equal(lines[lines.length - 1], 'TAG OK LIST completed');
  });

  it('leaves plain LIST alone, keeps other return options, and refuses bad STATUS items', async () => {
    const client = await login(t.app);
    const plain = await client.command('LIST "" "INBOX"');
    assert.deepEqual(plain, ['* LIST (\\HasNoChildren) "/" "INBOX"', 'TAG OK LIST completed']);
    const both = await client.command('LIST "" "INBOX" RETURN (SUBSCRIBED STATUS (MESSAGES))');
    assert.deepEqual(both, ['* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"', '* STATUS "INBOX" (MESSAGES 2)', 'TAG OK LIST completed']);
    // RFC 8474: MAILBOXID is a STATUS item, so LIST-STATUS answers it too (the same id STATUS gives)
    const [, idLine] = await client.command('LIST "" "INBOX" RETURN (STATUS (MAILBOXID MESSAGES))');
    const [statusLine] = await client.command('STATUS INBOX (MAILBOXID MESSAGES)');
    assert.match(idLine!, /^\* STATUS "INBOX" \(MAILBOXID \(F[0-9a-f]{24}\) MESSAGES 2\)$/);
    assert.equal(idLine, statusLine);
    assert.equal(await client.status('LIST "" "*" RETURN (STATUS (BOGUS))'), 'BAD Invalid status item');
    assert.equal(await client.status('LIST "" "*" RETURN (STATUS)'), 'BAD STATUS needs a list of status items');
    assert.equal(await client.status('LIST "" "*" RETURN (XOTHER)'), 'BAD Unsupported return option XOTHER');
  });

  it('switched off: no capability, and RETURN (STATUS ...) is BAD', async () => {
    const off = await bootImapTestApp();
    try {
      const { greeting } = await connect(off.app);
      assert.ok(!greeting.includes('LIST-STATUS'));
      const client = await login(off.app);
      assert.equal(await client.status('LIST "" "*" RETURN (STATUS (MESSAGES))'), 'BAD Unsupported return option STATUS');
    } finally {
      await off.close();
    }
  });
});
