/**
 * One user, two front ends on the same app: an IMAP session SELECTed on INBOX sees what the HTTP API changes
 * (upload → EXISTS, flags → FETCH FLAGS, delete → EXPUNGE, at NOOP and during IDLE), and the API lists and
 * reads what IMAP changed (APPEND, STORE, MOVE, EXPUNGE).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { appendMessage, login, message } from './helpers/imap-harness.ts';

describe('HTTP API and IMAP see each other', () => {
  let t: HttpTestApp;
  let user: string;
  let inbox: string;
  let archive: string;

  const list = async (mailbox: string) => {
    const res = await t.request('GET', `/users/${user}/mailboxes/${mailbox}/messages?order=asc`);
    assert.equal(res.status, 200);
    return res.body.results as Array<{ id: number; subject: string; seen: boolean; flagged: boolean; deleted: boolean }>;
  };

  before(async () => {
    t = await bootHttpTestApp();
    user = (await t.request('POST', '/users', { body: { username: 'alice', password: 'secret', address: 'alice@example.com' } })).body.id;
    inbox = (await t.request('GET', `/users/${user}/mailboxes`)).body.results.find((b: { path: string }) => b.path === 'INBOX').id;
    archive = (await t.request('POST', `/users/${user}/mailboxes`, { body: { path: 'Archive' } })).body.id;
  });
  after(() => t.close());

  it('an IMAP session selected on INBOX sees uploads, flag changes and deletes made through the API', async () => {
    const imap = await login(t.app);
    const selected = await imap.command('SELECT INBOX');
    assert.ok(selected.includes('* 0 EXISTS'), selected.join('\n'));

    // upload → EXISTS at NOOP
    for (const subject of ['From the API 1', 'From the API 2']) {
      const res = await t.request('POST', `/users/${user}/mailboxes/${inbox}/messages`, { body: { raw: message(subject), unseen: true } });
      assert.equal(res.status, 200);
    }
    let noop = await imap.command('NOOP');
    assert.ok(noop.includes('* 2 EXISTS'), noop.join('\n'));
    const fetched = (await imap.command('UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).join('\n');
    assert.match(fetched, /Subject: From the API 1/);
    assert.match(fetched, /\* 2 FETCH \(UID 2 FLAGS \(\\Recent\)/, 'unseen, new to this session');

    // flags → FETCH FLAGS at NOOP
    assert.equal((await t.request('PUT', `/users/${user}/mailboxes/${inbox}/messages/1`, { body: { flagged: true, seen: true } })).status, 200);
    noop = await imap.command('NOOP');
    assert.ok(
      noop.some((l) => /^\* 1 FETCH \(.*FLAGS \(([^)]*)\)/.test(l) && /\\Flagged/.test(l) && /\\Seen/.test(l)),
      noop.join('\n'),
    );

    // delete → EXPUNGE while IDLE; then flags of a bulk update, still in IDLE
    const tag = imap.nextTag();
    imap.write(`${tag} IDLE\r\n`);
    assert.match(await imap.line(), /^\+ /);
    assert.equal((await t.request('DELETE', `/users/${user}/mailboxes/${inbox}/messages/1`)).status, 200);
    assert.equal(await imap.line(), '* 1 EXPUNGE');
    assert.equal((await t.request('PUT', `/users/${user}/mailboxes/${inbox}/messages`, { body: { message: '1:*', flagged: true } })).status, 200);
    assert.match(await imap.line(), /^\* 1 FETCH \(.*FLAGS \(\\Flagged( \\Recent)?\)/);
    imap.write('DONE\r\n');
    assert.match(await imap.untilTagged(tag), new RegExp(`${tag} OK`));

    const status = await imap.command('UID FETCH 1:* (FLAGS)');
    assert.deepEqual(
      status.filter((l) => l.startsWith('*')),
      ['* 1 FETCH (UID 2 FLAGS (\\Flagged \\Recent))'],
    );
    await imap.command('LOGOUT');
    await imap.done;
  });

  it('the API lists and reads what an IMAP session appended, stored and moved', async () => {
    const imap = await login(t.app);
    assert.match(await appendMessage(imap, 'INBOX', message('Over IMAP', 'Written in a mail client.\r\n'), '\\Seen'), /^OK/);
    let items = await list(inbox);
    const appended = items.find((m) => m.subject === 'Over IMAP');
    assert.ok(appended, JSON.stringify(items));
    assert.equal(appended.seen, true);
    assert.equal(appended.flagged, false);
    const read = await t.request('GET', `/users/${user}/mailboxes/${inbox}/messages/${appended.id}`);
    assert.equal(read.status, 200);
    assert.match(read.body.text, /Written in a mail client\./);

    assert.match(await imap.status('SELECT INBOX'), /^OK/);
    assert.match(await imap.status(`UID STORE ${appended.id} +FLAGS (\\Flagged \\Answered)`), /^OK/);
    const stored = await t.request('GET', `/users/${user}/mailboxes/${inbox}/messages/${appended.id}`);
    assert.equal(stored.body.flagged, true);
    assert.equal(stored.body.answered, true);

    assert.match(await imap.status(`UID MOVE ${appended.id} Archive`), /^OK/);
    assert.equal((await list(inbox)).some((m) => m.subject === 'Over IMAP'), false, 'gone from INBOX');
    const moved = (await list(archive)).find((m) => m.subject === 'Over IMAP');
    assert.ok(moved);
    assert.equal(moved.flagged, true, 'flags move with the message');
    const eml = await t.request('GET', `/users/${user}/mailboxes/${archive}/messages/${moved.id}/message.eml`);
    assert.match(eml.body as string, /Written in a mail client\./);
    const counters = (await t.request('GET', `/users/${user}/mailboxes/${archive}`)).body;
    assert.equal(counters.total, 1);

    assert.match(await imap.status('SELECT Archive'), /^OK/);
    assert.match(await imap.status(`UID STORE ${moved.id} +FLAGS (\\Deleted)`), /^OK/);
    assert.equal((await list(archive))[0]!.deleted, true, 'the API sees \\Deleted before the expunge');
    assert.match(await imap.status('EXPUNGE'), /^OK/);
    assert.deepEqual(await list(archive), []);
    await imap.command('LOGOUT');
    await imap.done;
  });
});
