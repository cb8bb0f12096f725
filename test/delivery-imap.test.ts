/**
 * Deliver over LMTP, observe through IMAP: a user's filters (mailbox + flag + seen, spam, delete, not-spam),
 * spam routing by the MTA's header (loaded by default) and duplicate suppression, each outcome read by an IMAP
 * session (SELECT/EXAMINE the target mailbox, FETCH FLAGS and the subject), with the INBOX session selected
 * before the deliveries hearing only the messages that belong there.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { putFilter } from '../storage/delivery-settings.ts';
import { bootImapTestApp, login } from './helpers/imap-harness.ts';
import type { ImapTestApp, TestClient } from './helpers/imap-harness.ts';
import { lmtpDeliver } from './helpers/lmtp-deliver.ts';

function mail(from: string, subject: string, extra = ''): string {
  const id = subject.replace(/\W/g, '');
  return `From: ${from}\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${id}@remote.example>\r\n${extra}\r\nText of ${subject}.\r\n`;
}

/** `[flags (sorted, without \Recent), subject]` of every message in the selected mailbox, in UID order. */
async function listing(client: TestClient): Promise<Array<[string, string]>> {
  const text = await client.raw('FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
  assert.match(text, /\r\nA\d+ OK |^A\d+ OK /);
  const out: Array<[string, string]> = [];
  for (const m of text.matchAll(/^\* \d+ FETCH \(FLAGS \(([^)]*)\)[^\r\n]*\r\nSubject: ([^\r\n]*)/gm)) {
    const flags = m[1]!.split(' ').filter((f) => f && f !== '\\Recent');
    out.push([flags.sort().join(' '), m[2]!]);
  }
  return out;
}

describe('delivery over LMTP observed through IMAP', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp();
    await t.app.storage.mailboxes.create(t.userId, { path: 'Work' });
    const docs = t.app.storage.documents;
    await putFilter(docs, t.userId, { query: { from: 'boss@work.example' }, action: { mailbox: 'Work', flag: true, seen: true } });
    await putFilter(docs, t.userId, { query: { subject: 'newsletter' }, action: { spam: true } });
    await putFilter(docs, t.userId, { query: { subject: 'discard me' }, action: { delete: true } });
    await putFilter(docs, t.userId, { query: { subject: 'keep me' }, action: { spam: false } });
  });
  after(() => t.close());

  it('filters, spam routing and duplicate suppression land where IMAP sees them', async () => {
    const imap = await login(t.app);
    assert.ok((await imap.command('SELECT INBOX')).includes('* 0 EXISTS'));

    const deliveries: Array<[string, string, string?]> = [
      ['The Boss <boss@work.example>', 'quarterly plan'], // Work, \Flagged \Seen
      ['news@shop.example', 'Weekly newsletter'], // filter spam → Junk
      ['printer@office.example', 'discard me please'], // filter delete → accepted, stored nowhere
      ['scanner@remote.example', 'cheap pills', 'X-Spam-Status: Yes, score=12.0\r\n'], // MTA verdict → Junk
      ['friend@remote.example', 'keep me anyway', 'X-Spam-Status: Yes, score=6.0\r\n'], // filter not-spam wins → INBOX
      ['friend@remote.example', 'plain hello'], // INBOX
      ['friend@remote.example', 'plain hello'], // same Message-ID again: accepted, stored once
    ];
    for (const [from, subject, extra] of deliveries) {
      const [reply] = await lmtpDeliver(t.app, 'mta-sender@remote.example', ['alice@example.com'], mail(from, subject, extra));
      assert.match(reply!, /^250 /, subject);
    }

    // the session selected on INBOX hears exactly the two messages that belong there
    const noop = await imap.command('NOOP');
    assert.ok(noop.includes('* 2 EXISTS'), noop.join('\n'));
    assert.deepEqual(await listing(imap), [
      ['', 'keep me anyway'],
      ['', 'plain hello'],
    ]);

    assert.ok((await imap.command('EXAMINE Work')).includes('* 1 EXISTS'));
    assert.deepEqual(await listing(imap), [['\\Flagged \\Seen', 'quarterly plan']]);

    assert.ok((await imap.command('EXAMINE Junk')).includes('* 2 EXISTS'));
    assert.deepEqual(await listing(imap), [
      ['', 'Weekly newsletter'],
      ['', 'cheap pills'],
    ]);

    // nothing else anywhere: the deleted one and the duplicate were never stored
    const status = await imap.command('STATUS Trash (MESSAGES)');
    assert.match(status[0]!, /MESSAGES 0/);
    imap.end();
  });
});
