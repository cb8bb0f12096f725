/**
 * NOTIFY (RFC 5465) for the selected mailbox and the personal namespace: transcripts on the real stack. Unsolicited
 * responses are awaited as lines the server sends without a command (no NOOP, no IDLE unless the test says so).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendMessage, connect, createWithMessages, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';

/** UIDVALIDITY of a mailbox, through STATUS. */
async function validity(client: TestClient, name: string): Promise<number> {
  const line = (await client.command(`STATUS ${name} (UIDVALIDITY)`))[0]!;
  return Number(line.match(/UIDVALIDITY (\d+)/)![1]);
}

describe('NOTIFY', () => {
  const t = imapTestAppPerSuite();

  it('is announced; SET and NONE; unsupported events get BADEVENT; bad syntax gets BAD', async () => {
    const { greeting } = await connect(t.app);
    assert.match(greeting, / NOTIFY /);
    const client = await login(t.app);
    assert.equal(await client.status('NOTIFY NONE'), 'OK NOTIFY completed');
    assert.equal(await client.status('NOTIFY SET (personal (MessageNew MessageExpunge))'), 'OK NOTIFY completed');
    assert.equal(
      await client.status('NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))'),
      'NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)] Unsupported NOTIFY event',
    );
    assert.match(await client.status('NOTIFY SET (personal (Bogus))'), /^BAD Unknown NOTIFY event/);
    assert.match(await client.status('NOTIFY SET (nowhere (MessageNew))'), /^BAD Invalid NOTIFY filter/);
    assert.match(await client.status('NOTIFY SET'), /^BAD NOTIFY SET expects event groups/);
    assert.match(await client.status('NOTIFY SET (mailboxes (MessageNew))'), /^BAD/);
    assert.match(await client.status('NOTIFY SET (personal (MessageNew (UID) MessageExpunge))'), /^BAD MessageNew fetch attributes are only allowed for the selected mailbox/);
    assert.match(await client.status('NOTIFY SET (selected (MailboxName))'), /^BAD Mailbox events are not allowed for the selected mailbox/);
    assert.match(await client.status('NOTIFY SET (selected (MessageNew (BOGUS) MessageExpunge))'), /^BAD/);
    assert.match(await client.status('NOTIFY BOGUS'), /^BAD NOTIFY expects SET or NONE/);
    assert.equal(await client.status('NOTIFY SET (selected NONE) (personal (MailboxName))'), 'OK NOTIFY completed');
  });

  it('SET (STATUS) answers the STATUS of each watched mailbox first, with the items its events need', async () => {
    const client = await login(t.app);
    await createWithMessages(client, 'Initial', 1);
    const v = await validity(client, 'Initial');
    assert.deepEqual(await client.command('NOTIFY SET STATUS (mailboxes Initial (MessageExpunge))'), ['* STATUS "Initial" (MESSAGES 1)', 'TAG OK NOTIFY completed']);
    assert.deepEqual(await client.command('NOTIFY SET STATUS (mailboxes Initial (MessageNew))'), [
      `* STATUS "Initial" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ${v})`,
      'TAG OK NOTIFY completed',
    ]);
    const flags = await client.command('NOTIFY SET (STATUS) (mailboxes (Initial) (FlagChange))');
    assert.match(flags[0]!, new RegExp(`^\\* STATUS "Initial" \\(UIDVALIDITY ${v} HIGHESTMODSEQ \\d+\\)$`));
    assert.deepEqual(await client.command('NOTIFY SET (mailboxes Initial (MessageNew MessageExpunge FlagChange))'), ['TAG OK NOTIFY completed']);
    // the selected mailbox gets no STATUS: its view reports it
    await client.command('SELECT Initial');
    assert.deepEqual(await client.command('NOTIFY SET STATUS (personal (MessageNew MessageExpunge))').then((l) => l.filter((x) => x.includes('"Initial"'))), []);
  });

  it('pushes STATUS for other mailboxes as they change, between commands, and stops after NONE', async () => {
    const watcher = await login(t.app);
    const other = await login(t.app);
    await createWithMessages(other, 'Elsewhere', 1);
    await createWithMessages(other, 'Ignored', 0);
    const v = await validity(other, 'Elsewhere');
    assert.equal(await watcher.status('NOTIFY SET (subtree Elsewhere (MessageNew MessageExpunge)) (mailboxes Ignored NONE)'), 'OK NOTIFY completed');

    await appendMessage(other, 'Ignored', message('not told'));
    await appendMessage(other, 'Elsewhere', message('told'));
    assert.equal(await watcher.line(), `* STATUS "Elsewhere" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY ${v})`);
    await other.command('SELECT Elsewhere');
    await other.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.command('EXPUNGE');
    assert.equal(await watcher.line(), `* STATUS "Elsewhere" (MESSAGES 1 UIDNEXT 3 UIDVALIDITY ${v})`);
    // a flag change is not asked for: nothing is sent for it; the next command's reply comes alone
    await other.command('STORE 1 +FLAGS.SILENT (\\Flagged)');
    assert.deepEqual(await watcher.command('NOOP'), ['TAG OK NOOP completed']);

    assert.equal(await watcher.status('NOTIFY NONE'), 'OK NOTIFY completed');
    await appendMessage(other, 'Elsewhere', message('after none'));
    assert.deepEqual(await watcher.command('NOOP'), ['TAG OK NOOP completed']);
  });

  it('pushes EXISTS, FETCH with the MessageNew attributes, flag changes and EXPUNGE for the selected mailbox', async () => {
    const watcher = await login(t.app);
    const other = await login(t.app);
    await createWithMessages(other, 'Watched', 1);
    await watcher.command('SELECT Watched');
    assert.equal(await watcher.status('NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))'), 'OK NOTIFY completed');

    await appendMessage(other, 'Watched', message('new one'), '\\Flagged');
    assert.equal(await watcher.line(), '* 2 EXISTS');
    assert.equal(await watcher.line(), '* 2 RECENT');
    assert.equal(await watcher.line(), '* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))');
    await other.command('SELECT Watched');
    await other.command('STORE 1 +FLAGS.SILENT (\\Seen)');
    assert.equal(await watcher.line(), '* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1)');
    await other.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    assert.equal(await watcher.line(), '* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent) UID 1)');
    await other.command('EXPUNGE');
    assert.equal(await watcher.line(), '* 1 EXPUNGE');
    assert.deepEqual(await watcher.command('NOOP'), ['TAG OK NOOP completed']);
  });

  it('selected-delayed holds EXPUNGE back until a command may carry it', async () => {
    const watcher = await login(t.app);
    const other = await login(t.app);
    await createWithMessages(other, 'Delayed', 2);
    await watcher.command('SELECT Delayed');
    assert.equal(await watcher.status('NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))'), 'OK NOTIFY completed');
    await other.command('SELECT Delayed');
    await other.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
    assert.equal(await watcher.line(), '* 1 FETCH (FLAGS (\\Deleted \\Recent) UID 1)');
    await other.command('EXPUNGE');
    await appendMessage(other, 'Delayed', message('after the expunge'));
    // the new message is pushed at once; the expunge waits (message 1 keeps its number until then)
    assert.equal(await watcher.line(), '* 3 EXISTS');
    assert.equal(await watcher.line(), '* 3 RECENT');
    assert.deepEqual(await watcher.command('FETCH 1 (UID)'), ['* 1 FETCH (UID 1)', 'TAG OK FETCH completed']);
    assert.deepEqual(await watcher.command('NOOP'), ['* 1 EXPUNGE', 'TAG OK NOOP completed']);
  });

  it('tells mailbox names and subscriptions as LIST responses, also during IDLE', async () => {
    const watcher = await login(t.app);
    const other = await login(t.app);
    assert.equal(await watcher.status('NOTIFY SET (personal (MailboxName SubscriptionChange MessageNew MessageExpunge))'), 'OK NOTIFY completed');
    await other.command('CREATE Named');
    // CREATE may subscribe (imap.autoSubscribe): then the subscription is taken back first
    const created = await watcher.line();
    assert.match(created, /^\* LIST \((\\Subscribed)?\) "\/" "Named"$/);
    if (created.includes('Subscribed')) {
      await other.command('UNSUBSCRIBE Named');
      assert.equal(await watcher.line(), '* LIST () "/" "Named"');
    }
    await other.command('SUBSCRIBE Named');
    assert.equal(await watcher.line(), '* LIST (\\Subscribed) "/" "Named"');
    await other.command('RENAME Named Renamed');
    assert.equal(await watcher.line(), '* LIST (\\Subscribed) "/" "Renamed" ("OLDNAME" ("Named"))');
    await other.command('UNSUBSCRIBE Renamed');
    assert.equal(await watcher.line(), '* LIST () "/" "Renamed"');

    watcher.write('I1 IDLE\r\n');
    assert.equal(await watcher.line(), '+ idling');
    await appendMessage(other, 'Renamed', message('while idle'));
    assert.match(await watcher.line(), /^\* STATUS "Renamed" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)$/);
    await other.command('DELETE Renamed');
    assert.equal(await watcher.line(), '* LIST (\\NonExistent) "/" "Renamed"');
    watcher.write('DONE\r\n');
    assert.equal(await watcher.line(), 'I1 OK IDLE terminated');
  });
});
