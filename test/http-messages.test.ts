/** HTTP API messages over real HTTP: list and pages, parsed JSON with sanitized HTML, source and attachment downloads, flags, moves, deletes, uploads. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { internalContext } from '../hooks/context.ts';
import type { Plugin } from '../hooks/host.ts';
import { deny } from '../hooks/verdict.ts';

const enc = new TextEncoder();

/** 40 KiB of bytes 0..255: stored as a blob, base64 on the wire. */
const binary = Buffer.from(Array.from({ length: 40 * 1024 }, (_, i) => (i * 7) % 256));

function multipart(): Uint8Array {
  const b64 = binary.toString('base64').replace(/.{76}/g, '$&\r\n');
  return enc.encode(
    [
      'From: =?UTF-8?B?SsO8cmdlbg==?= <jurgen@example.com>',
      'To: Kim <kim@example.com>, lee@example.com',
      'Cc: cc@example.com',
      'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= with pictures',
      'Date: Tue, 02 Jan 2024 10:00:00 +0000',
      'Message-ID: <multi@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="mix"',
      '',
      '--mix',
      'Content-Type: multipart/related; boundary="rel"',
      '',
      '--rel',
      'Content-Type: multipart/alternative; boundary="alt"',
      '',
      '--alt',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Hello J=C3=BCrgen, see the picture.',
      '--alt',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<html><head><script>alert(1)</script></head><body onload="steal()"><p onclick="x()">Hello <b>there</b></p>',
      '<img src="cid:logo@example.com"><img src="https://tracker.example/pixel.gif"><a href="javascript:evil()">x</a></body></html>',
      '--alt--',
      '--rel',
      'Content-Type: image/png',
      'Content-ID: <logo@example.com>',
      'Content-Disposition: inline',
      'Content-Transfer-Encoding: base64',
      '',
      'iVBORw0KGgo=',
      '--rel--',
      '--mix',
      'Content-Type: application/octet-stream; name="=?UTF-8?Q?d=C3=A4ta.bin?="',
      'Content-Disposition: attachment; filename*=UTF-8\'\'d%C3%A4ta.bin',
      'Content-Transfer-Encoding: base64',
      '',
      b64,
      '--mix',
      'Content-Type: text/plain; charset=utf-8; name="notes.txt"',
      'Content-Disposition: attachment; filename="notes.txt"',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'caf=C3=A9 =3D long line that is soft=',
      '-wrapped',
      '--mix--',
      '',
    ].join('\r\n'),
  );
}

const simple = (subject: string) => enc.encode(`From: a@example.com\r\nTo: kim@example.com\r\nSubject: ${subject}\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nBody of ${subject}\r\n`);

const guard: Plugin = {
  name: 'test-store-guard',
  apply(api) {
    api.hooks.message.beforeStore.tap({}, (_ctx, input) => (input.flags.includes('\\Draft') && input.internalDate === 1 ? deny('OVERQUOTA', 'Quota exceeded') : undefined));
  },
};

describe('HTTP API: messages', () => {
  let t: HttpTestApp;
  let user: string;
  let inbox: string;
  let trash: string;
  const msgs = (p = '') => `/users/${user}/mailboxes/${inbox}/messages${p}`;

  before(async () => {
    t = await bootHttpTestApp({ plugins: [guard], limits: { maxMessageSize: 200 * 1024 } });
    user = (await t.request('POST', '/users', { body: { username: 'kim', password: 'x1' } })).body.id;
    const boxes = (await t.request('GET', `/users/${user}/mailboxes`)).body.results;
    inbox = boxes.find((b: { path: string }) => b.path === 'INBOX').id;
    trash = boxes.find((b: { path: string }) => b.path === 'Trash').id;
    const ctx = internalContext(t.app.log, { id: user, username: 'kim' });
    for (let i = 1; i <= 5; i++) {
      await storeMessage(t.app, ctx, { userId: user, mailboxId: inbox, flags: i % 2 ? [] : ['\\Seen'], internalDate: Date.now(), source: simple(`m${i}`) });
    }
    await storeMessage(t.app, ctx, { userId: user, mailboxId: inbox, flags: ['\\Flagged'], internalDate: Date.now(), source: multipart() });
  });
  after(() => t.close());

  it('lists newest first in cursor pages, both ways, with WildDuck list items', async () => {
    const first = await t.request('GET', msgs('?limit=4'));
    assert.equal(first.status, 200);
    assert.equal(first.body.total, 6);
    assert.equal(first.body.page, 1);
    assert.equal(first.body.previousCursor, false);
    assert.deepEqual(first.body.results.map((m: { id: number }) => m.id), [6, 5, 4, 3]);
    const top = first.body.results[0];
    assert.equal(top.subject, 'Grüße with pictures');
    assert.deepEqual(top.from, { name: 'Jürgen', address: 'jurgen@example.com' });
    assert.deepEqual(top.to, [{ name: 'Kim', address: 'kim@example.com' }, { name: '', address: 'lee@example.com' }]);
    assert.equal(top.intro, 'Hello Jürgen, see the picture.');
    assert.equal(top.attachments, true);
    assert.equal(top.flagged, true);
    assert.equal(top.seen, false);
    assert.equal(top.date, '2024-01-02T10:00:00.000Z');
    assert.equal(top.contentType.value, 'multipart/mixed');
    assert.equal(top.mailbox, inbox);
    assert.ok(top.thread);
    const second = await t.request('GET', msgs(`?limit=4&next=${first.body.nextCursor}`));
    assert.deepEqual(second.body.results.map((m: { id: number }) => m.id), [2, 1]);
    assert.equal(second.body.page, 2);
    assert.equal(second.body.nextCursor, false);
    const back = await t.request('GET', msgs(`?limit=4&previous=${second.body.previousCursor}`));
    assert.deepEqual(back.body.results.map((m: { id: number }) => m.id), [6, 5, 4, 3]);
    assert.equal(back.body.page, 1);
    const asc = await t.request('GET', msgs('?order=asc&limit=2'));
    assert.deepEqual(asc.body.results.map((m: { id: number }) => m.id), [1, 2]);
  });

  it('adds threadMessageCount with threadCounters=true: the thread\'s messages in every mailbox', async () => {
    const id = (await t.request('POST', '/users', { body: { username: 'threads', password: 'x1' } })).body.id as string;
    const boxes = (await t.request('GET', `/users/${id}/mailboxes`)).body.results;
    const box = (path: string) => boxes.find((b: { path: string }) => b.path === path).id as string;
    const mail = (messageId: string, refs: string) =>
      enc.encode(`From: a@example.com\r\nSubject: t\r\nMessage-ID: ${messageId}\r\n${refs ? `References: ${refs}\r\n` : ''}\r\nbody\r\n`);
    const ctx = internalContext(t.app.log, { id, username: 'threads' });
    const put = (mailbox: string, source: Uint8Array) => storeMessage(t.app, ctx, { userId: id, mailboxId: mailbox, flags: [], internalDate: Date.now(), source });
    await put(box('INBOX'), mail('<root@t>', ''));
    await put(box('INBOX'), mail('<other@t>', ''));
    await put(box('INBOX'), mail('<reply@t>', '<root@t>'));
    await put(box('Sent Mail'), mail('<reply2@t>', '<root@t> <reply@t>'));
    const list = await t.request('GET', `/users/${id}/mailboxes/${box('INBOX')}/messages?threadCounters=true`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.results.map((m: { threadMessageCount: number }) => m.threadMessageCount), [3, 1, 3]);
    const plain = await t.request('GET', `/users/${id}/mailboxes/${box('INBOX')}/messages`);
    assert.equal('threadMessageCount' in plain.body.results[0], false, 'only when asked');
  });

  it('filters the list by unseen and flagged and refuses bad paging input', async () => {
    const unseen = await t.request('GET', msgs('?unseen=true'));
    assert.deepEqual(unseen.body.results.map((m: { id: number }) => m.id), [6, 5, 3, 1]);
    const flagged = await t.request('GET', msgs('?flagged=true'));
    assert.deepEqual(flagged.body.results.map((m: { id: number }) => m.id), [6]);
    assert.equal((await t.request('GET', msgs('?limit=0'))).status, 400);
    assert.equal((await t.request('GET', msgs('?order=sideways'))).status, 400);
    const bad = await t.request('GET', msgs('?next=garbage'));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'InputValidationError');
    assert.equal((await t.request('GET', `/users/${user}/mailboxes/0000000000000000000f423f/messages`)).body.code, 'NoSuchMailbox');
  });

  it('reads a message as JSON with decoded headers, text, sanitized HTML and attachments', async () => {
    const res = await t.request('GET', msgs('/6'));
    assert.equal(res.status, 200);
    const m = res.body;
    assert.equal(m.subject, 'Grüße with pictures');
    assert.deepEqual(m.cc, [{ name: '', address: 'cc@example.com' }]);
    assert.equal(m.messageId, '<multi@example.com>');
    assert.equal(m.text, 'Hello Jürgen, see the picture.');
    assert.equal(m.html.length, 1);
    const html = m.html[0];
    assert.ok(!/script|onload|onclick|javascript:|tracker\.example/i.test(html), html);
    assert.match(html, /<b>there<\/b>/);
    assert.match(html, /src="cid:logo@example.com"/);
    assert.equal(m.remoteContentBlocked, true, html);
    assert.deepEqual(
      m.attachments.map((a: Record<string, unknown>) => [a.id, a.filename, a.contentType, a.inline, a.cid ?? null]),
      [
        ['ATT00001', 'attachment-1.png', 'image/png', true, 'logo@example.com'],
        ['ATT00002', 'däta.bin', 'application/octet-stream', false, null],
        ['ATT00003', 'notes.txt', 'text/plain', false, null],
      ],
    );
    assert.ok(Math.abs(m.attachments[1].size - binary.length) < 8, String(m.attachments[1].size));
    const cid = await t.request('GET', msgs('/6?replaceCidLinks=true&allowRemote=true'));
    assert.match(cid.body.html[0], /src="attachment:ATT00001"/);
    assert.match(cid.body.html[0], /tracker\.example/);
    assert.equal(cid.body.remoteContentBlocked, false, JSON.stringify(cid.body.html));
    // a text-only message gets its text as HTML
    const plain = (await t.request('GET', msgs('/1'))).body;
    assert.equal(plain.text.trim(), 'Body of m1');
    assert.equal(plain.html[0], "<p>Body of m1<br /></p>", JSON.stringify(plain));
    assert.equal(plain.attachments.length, 0);
  });

  it('marks a message seen on read when asked, through the flags pipeline', async () => {
    assert.equal((await t.request('GET', msgs('/5'))).body.seen, false);
    assert.equal((await t.request('GET', msgs('/5?markAsSeen=true'))).body.seen, true);
    assert.equal((await t.request('GET', msgs('/5'))).body.seen, true);
    assert.equal((await t.request('GET', msgs('/99'))).body.code, 'MessageNotFound');
    assert.equal((await t.request('GET', msgs('/abc'))).status, 400);
  });

  it('streams the stored source and decoded attachments', async () => {
    const eml = await fetch(`${t.base}${msgs('/6/message.eml')}`, { headers: { 'x-access-token': 'root-secret-token' } });
    assert.equal(eml.status, 200);
    assert.equal(eml.headers.get('content-type'), 'message/rfc822');
    assert.deepEqual(new Uint8Array(await eml.arrayBuffer()), multipart());
    const att = await fetch(`${t.base}${msgs('/6/attachments/ATT00002')}`, { headers: { 'x-access-token': 'root-secret-token' } });
    assert.equal(att.status, 200);
    assert.equal(att.headers.get('content-type'), 'application/octet-stream');
    assert.match(att.headers.get('content-disposition') ?? '', /^attachment; filename\*=UTF-8''d%C3%A4ta\.bin$/);
    assert.deepEqual(Buffer.from(await att.arrayBuffer()), binary);
    const qp = await t.request('GET', msgs('/6/attachments/ATT00003'));
    assert.equal(qp.body, 'café = long line that is soft-wrapped');
    const png = await fetch(`${t.base}${msgs('/6/attachments/ATT00001')}`, { headers: { 'x-access-token': 'root-secret-token' } });
    assert.match(png.headers.get('content-disposition') ?? '', /^inline/);
    assert.deepEqual(Buffer.from(await png.arrayBuffer()), Buffer.from('iVBORw0KGgo=', 'base64'));
    assert.equal((await t.request('GET', msgs('/6/attachments/ATT00009'))).body.code, 'AttachmentNotFound');
    assert.equal((await t.request('GET', msgs('/6/attachments/nope'))).status, 400);
    assert.equal((await t.request('GET', msgs('/77/message.eml'))).status, 404);
  });

  it('changes flags of one message and of a UID range, and moves messages', async () => {
    const one = await t.request('PUT', msgs('/1'), { body: { seen: true, flagged: true } });
    assert.deepEqual(one.body, { success: true, updated: 1 });
    const m1 = (await t.request('GET', msgs('/1'))).body;
    assert.equal(m1.seen && m1.flagged, true);
    const bulk = await t.request('PUT', msgs(), { body: { message: '1:*', seen: false } });
    assert.deepEqual(bulk.body, { success: true, updated: 6 });
    assert.equal((await t.request('GET', msgs('?unseen=true'))).body.total, 6);
    const moved = await t.request('PUT', msgs(), { body: { message: '2:3', moveTo: trash } });
    assert.equal(moved.body.mailbox, trash);
    assert.deepEqual(moved.body.id, [[2, 1], [3, 2]]);
    assert.equal((await t.request('GET', `/users/${user}/mailboxes/${trash}/messages`)).body.total, 2);
    assert.equal((await t.request('GET', msgs('/2'))).status, 404);
    const single = await t.request('PUT', msgs('/4'), { body: { moveTo: trash } });
    assert.deepEqual(single.body.id, [[4, 3]]);
    assert.equal((await t.request('PUT', msgs('/1'), { body: { moveTo: '0000000000000000000f423f' } })).body.code, 'NoSuchMailbox');
    assert.equal((await t.request('PUT', msgs(), { body: { message: 'x:y', seen: true } })).status, 400);
    assert.equal((await t.request('PUT', msgs('/1'), { body: { seen: 'yes' } })).status, 400);
  });

  it('deletes one message and all messages of a mailbox', async () => {
    assert.deepEqual((await t.request('DELETE', msgs('/1'))).body, { success: true });
    assert.equal((await t.request('DELETE', msgs('/1'))).body.code, 'MessageNotFound');
    const all = await t.request('DELETE', `/users/${user}/mailboxes/${trash}/messages`);
    assert.deepEqual(all.body, { success: true, deleted: 3, errors: 0 });
    assert.equal((await t.request('GET', `/users/${user}/mailboxes/${trash}/messages`)).body.total, 0);
  });

  it('uploads raw messages as base64 JSON, text JSON and message/rfc822, through storeMessage', async () => {
    const source = simple('uploaded');
    const b64 = await t.request('POST', msgs(), { body: { raw: Buffer.from(source).toString('base64'), unseen: true, flagged: true, date: '2024-03-01T00:00:00Z' } });
    assert.equal(b64.status, 200);
    assert.equal(b64.body.message.mailbox, inbox);
    assert.equal(b64.body.message.size, source.length);
    const got = (await t.request('GET', msgs(`/${b64.body.message.id}`))).body;
    assert.equal(got.subject, 'uploaded');
    assert.equal(got.seen, false);
    assert.equal(got.flagged, true);
    assert.equal(got.idate, '2024-03-01T00:00:00.000Z');
    const text = await t.request('POST', msgs(), { body: { raw: new TextDecoder().decode(simple('as text')) } });
    assert.equal((await t.request('GET', msgs(`/${text.body.message.id}`))).body.seen, true);
    const rfc = await t.request('POST', msgs('?unseen=true&draft=true'), { raw: { type: 'message/rfc822', data: simple('rfc822 body') } });
    assert.equal(rfc.status, 200);
    const stored = (await t.request('GET', msgs(`/${rfc.body.message.id}`))).body;
    assert.equal(stored.subject, 'rfc822 body');
    assert.equal(stored.draft && !stored.seen, true);
    const eml = await t.request('GET', msgs(`/${rfc.body.message.id}/message.eml`));
    assert.equal(eml.body, new TextDecoder().decode(simple('rfc822 body')));
  });

  it('shows format=flowed text with its soft line breaks joined (RFC 3676), delsp=yes dropping the space', async () => {
    const flowed = (params: string, body: string) =>
      enc.encode(`From: a@example.com\r\nSubject: flowed\r\nContent-Type: text/plain; charset=utf-8; ${params}\r\n\r\n${body}`);
    const upload = async (data: Uint8Array) => {
      const res = await t.request('POST', msgs(), { raw: { type: 'message/rfc822', data } });
      assert.equal(res.status, 200);
      return (await t.request('GET', msgs(`/${res.body.message.id}`))).body;
    };
    const plain = await upload(flowed('format=flowed', 'One long line that was \r\nwrapped by the sender.\r\n> quoted and \r\n> wrapped\r\nHard break\r\nkept.\r\n'));
    assert.equal(plain.text, 'One long line that was wrapped by the sender.\n> quoted and wrapped\nHard break\nkept.');
    assert.match(plain.html[0], /One long line that was wrapped by the sender\./);
    const delsp = await upload(flowed('format="Flowed"; delsp=yes', 'Zusammen \r\ngeschrieben\r\n'));
    assert.equal(delsp.text, 'Zusammengeschrieben');
    // not flowed: the line breaks stay
    const fixed = await upload(enc.encode('From: a@example.com\r\nSubject: fixed\r\n\r\nOne line \r\nanother\r\n'));
    assert.equal(fixed.text, 'One line \r\nanother\r\n');
  });

  it('refuses uploads without a message, too large ones (413) and plugin vetoes', async () => {
    const none = await t.request('POST', msgs(), { body: { unseen: true } });
    assert.equal(none.status, 400);
    assert.equal(none.body.details[0].path, 'body.raw');
    const big = new Uint8Array(300 * 1024).fill(0x61);
    const huge = await t.request('POST', msgs(), { raw: { type: 'message/rfc822', data: big } });
    assert.equal(huge.status, 413);
    const hugeJson = await t.request('POST', msgs(), { body: { raw: Buffer.from(new Uint8Array(210 * 1024).fill(0x61)).toString('base64') } });
    assert.equal(hugeJson.status, 413);
    const vetoed = await t.request('POST', msgs(), { body: { raw: Buffer.from(simple('x')).toString('base64'), draft: true, date: 1 } });
    assert.equal(vetoed.status, 403);
    assert.equal(vetoed.body.code, 'OVERQUOTA');
    assert.equal((await t.request('POST', msgs(), { raw: { type: 'image/png', data: simple('y') } })).status, 415);
  });

  it("keeps other users' messages out of reach", async () => {
    const other = (await t.request('POST', '/users', { body: { username: 'lee', password: 'x1' } })).body.id;
    const theirInbox = (await t.request('GET', `/users/${other}/mailboxes`)).body.results[0].id;
    await t.request('POST', `/users/${other}/mailboxes/${theirInbox}/messages`, { body: { raw: Buffer.from(simple('secret')).toString('base64') } });
    const path = `/users/${user}/mailboxes/${theirInbox}/messages`;
    assert.equal((await t.request('GET', path)).body.code, 'NoSuchMailbox');
    assert.equal((await t.request('GET', `${path}/1`)).body.code, 'NoSuchMailbox');
    assert.equal((await t.request('GET', `${path}/1/message.eml`)).status, 404);
    assert.equal((await t.request('PUT', msgs('/7'), { body: { moveTo: theirInbox } })).body.code, 'NoSuchMailbox');
    const token = (await t.request('POST', '/authenticate', { body: { username: 'kim', password: 'x1', token: true } })).body.token;
    assert.equal((await t.request('GET', `/users/${other}/mailboxes/${theirInbox}/messages`, { token })).status, 403);
    assert.equal((await t.request('GET', `/users/me/mailboxes/${inbox}/messages`, { token })).status, 200);
  });
});
