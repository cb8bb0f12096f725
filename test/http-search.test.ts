/** HTTP API search over real HTTP: structured parameters, the Gmail-like q, mailbox choice, paging, errors. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { internalContext } from '../hooks/context.ts';
import { parseQuery, parseSize } from '../protocols/http/search-query.ts';

const enc = new TextEncoder();

function message(o: { from: string; to: string; cc?: string; subject: string; body: string; attach?: boolean }): Uint8Array {
  const head = [`From: ${o.from}`, `To: ${o.to}`, ...(o.cc ? [`Cc: ${o.cc}`] : []), `Subject: ${o.subject}`, 'Date: Mon, 01 Jan 2024 00:00:00 +0000', 'MIME-Version: 1.0'];
  if (!o.attach) return enc.encode([...head, 'Content-Type: text/plain; charset=utf-8', '', o.body, ''].join('\r\n'));
  return enc.encode(
    [...head, 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', o.body, '--b', 'Content-Type: application/pdf', 'Content-Disposition: attachment; filename="report.pdf"', 'Content-Transfer-Encoding: base64', '', 'JVBERi0xLjQ=', '--b--', ''].join('\r\n'),
  );
}

describe('HTTP API: search', () => {
  let t: HttpTestApp;
  let user: string;
  const boxes: Record<string, string> = {};
  const find = async (qs: string) => {
    const res = await t.request('GET', `/users/${user}/search?${qs}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const subjects = (body: { results: Array<{ subject: string }> }) => body.results.map((m) => m.subject).sort();

  before(async () => {
    t = await bootHttpTestApp();
    user = (await t.request('POST', '/users', { body: { username: 'kim', password: 'x1' } })).body.id;
    for (const b of (await t.request('GET', `/users/${user}/mailboxes`)).body.results) boxes[b.path] = b.id;
    const ctx = internalContext(t.app.log, { id: user, username: 'kim' });
    const put = (box: string, flags: string[], day: string, m: Parameters<typeof message>[0]) =>
      storeMessage(t.app, ctx, { userId: user, mailboxId: boxes[box]!, flags, internalDate: Date.parse(day), source: message(m) });
    await put('INBOX', [], '2024-01-10T12:00:00Z', { from: 'Alice <alice@example.com>', to: 'kim@example.com', subject: 'Quarterly report', body: 'The numbers for Q1 are attached.', attach: true });
    await put('INBOX', ['\\Seen', '\\Flagged'], '2024-02-10T12:00:00Z', { from: 'bob@example.com', to: 'kim@example.com', cc: 'carol@example.com', subject: 'Lunch plans', body: 'Pizza or sushi on friday?' });
    await put('INBOX', ['\\Seen'], '2024-03-10T12:00:00Z', { from: 'carol@example.com', to: 'team@example.com', subject: '=?UTF-8?Q?K=C3=A4se?= tasting', body: 'Bring your own bread. ' + 'x'.repeat(5000) });
    await put('Sent Mail', ['\\Seen'], '2024-02-15T12:00:00Z', { from: 'kim@example.com', to: 'alice@example.com', subject: 'Re: Quarterly report', body: 'Thanks, the numbers look good.' });
    await put('Junk', [], '2024-02-20T12:00:00Z', { from: 'spam@example.net', to: 'kim@example.com', subject: 'Cheap numbers', body: 'Buy now' });
  });
  after(() => t.close());

  it('answers structured parameters across mailboxes, leaving Junk and Trash out', async () => {
    assert.deepEqual(subjects(await find('query=numbers')), ['Quarterly report', 'Re: Quarterly report']);
    assert.deepEqual(subjects(await find('from=alice')), ['Quarterly report']);
    assert.deepEqual(subjects(await find('to=carol')), ['Lunch plans']);
    assert.deepEqual(subjects(await find('subject=k%C3%A4se')), ['Käse tasting']);
    assert.deepEqual(subjects(await find('attachments=true')), ['Quarterly report']);
    assert.deepEqual(subjects(await find('flagged=true')), ['Lunch plans']);
    assert.deepEqual(subjects(await find('unseen=true')), ['Quarterly report']);
    assert.deepEqual(subjects(await find('minSize=4000')), ['Käse tasting']);
    assert.deepEqual(subjects(await find('maxSize=4000&datestart=2024-02-01&dateend=2024-02-28')), ['Lunch plans', 'Re: Quarterly report']);
    assert.deepEqual(subjects(await find(`mailbox=${boxes.Junk}&query=numbers`)), ['Cheap numbers']);
    const all = await find('');
    assert.equal(all.total, 4);
    assert.equal(all.results[0].subject, 'Käse tasting'); // newest first
    assert.equal(all.results[0].mailbox, boxes.INBOX);
  });

  it('understands the Gmail-like q', async () => {
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('from:alice has:attachment'))), ['Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('in:sent numbers'))), ['Re: Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('in:spam'))), ['Cheap numbers']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('is:unread'))), ['Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('is:starred'))), ['Lunch plans']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('after:2024-02-01 before:2024/03/01'))), ['Lunch plans', 'Re: Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('larger:4K'))), ['Käse tasting']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('"look good"'))), ['Re: Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('"good look"'))), []);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('numbers -has:attachment'))), ['Re: Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('subject:"quarterly report" -from:kim'))), ['Quarterly report']);
    assert.deepEqual(subjects(await find('q=' + encodeURIComponent('to:team is:read'))), ['Käse tasting']);
  });

  it('pages results with cursors', async () => {
    const first = await find('limit=3');
    assert.equal(first.results.length, 3);
    assert.equal(first.previousCursor, false);
    const second = await find(`limit=3&next=${first.nextCursor}`);
    assert.equal(second.page, 2);
    assert.equal(second.results.length, 1);
    assert.equal(second.nextCursor, false);
    const back = await find(`limit=3&previous=${second.previousCursor}`);
    assert.deepEqual(back.results.map((m: { id: number }) => m.id), first.results.map((m: { id: number }) => m.id));
  });

  it('refuses bad queries, unknown mailboxes and other users', async () => {
    for (const q of ['is:sleepy', 'before:yesterday', 'larger:big', 'has:kittens']) {
      const res = await t.request('GET', `/users/${user}/search?q=${encodeURIComponent(q)}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.details[0].path, 'query.q');
    }
    assert.equal((await t.request('GET', `/users/${user}/search?q=in:nowhere`)).body.code, 'NoSuchMailbox');
    assert.equal((await t.request('GET', `/users/${user}/search?mailbox=0000000000000000000f423f`)).body.code, 'NoSuchMailbox');
    assert.equal((await t.request('GET', `/users/${user}/search?datestart=soon`)).status, 400);
    assert.equal((await t.request('GET', `/users/${user}/search?next=zzz`)).status, 400);
    const other = (await t.request('POST', '/users', { body: { username: 'lee', password: 'x1' } })).body.id;
    const token = (await t.request('POST', '/authenticate', { body: { username: 'lee', password: 'x1', token: true } })).body.token;
    assert.equal((await t.request('GET', `/users/${user}/search?query=numbers`, { token })).status, 403);
    assert.equal((await t.request('GET', `/users/me/search?query=numbers`, { token })).body.total, 0);
    assert.equal((await t.request('GET', `/users/${user}/search?mailbox=${(await t.request('GET', `/users/${other}/mailboxes`)).body.results[0].id}`)).body.code, 'NoSuchMailbox');
  });

  it('parses the q language into search keys', () => {
    assert.deepEqual(parseQuery('from:"Bob Smith" -is:read hello').keys, [
      { type: 'header', field: 'from', value: 'Bob Smith' },
      { type: 'not', key: { type: 'flag', flag: '\\Seen', present: true } },
      { type: 'text', value: 'hello' },
    ]);
    assert.equal(parseQuery('at 10:30').keys[1]!.type, 'text');
    assert.equal(parseSize('1.5M'), 1572864);
    assert.equal(parseQuery('in:"Work/Projects"').mailbox, 'Work/Projects');
  });
});
