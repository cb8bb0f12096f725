/**
 * HTTP submission against a real SMTP server (npm smtp-server) on loopback as `delivery.relay`: composed
 * messages (envelope, bytes, Bcc only in the Sent copy), the \Seen copy in Sent (sent-autosave listed in
 * plugins), quota on that copy, reply and forward references (headers, default recipients, the original
 * attached, \Answered / $Forwarded), drafts (uploadOnly / isDraft, then submitting the stored draft), the daily
 * limit, validation errors, another user's token, and a server without a relay (503 UNAVAILABLE).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { bootHttpTestApp } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { rawHeader, startTestRelay } from './helpers/relay-server.ts';
import type { TestRelay } from './helpers/relay-server.ts';

interface Account {
  id: string;
  token: string;
  boxes: Record<string, string>;
}

async function account(t: HttpTestApp, username: string, extra: Record<string, unknown> = {}): Promise<Account> {
  const created = await t.request('POST', '/users', { body: { username, password: `${username}-pass`, address: `${username}@example.com`, name: `${username[0]!.toUpperCase()}${username.slice(1)} Example`, ...extra } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const id = created.body.id as string;
  const token = (await t.request('POST', '/authenticate', { token: null, body: { username, password: `${username}-pass`, token: true } })).body.token as string;
  const list = (await t.request('GET', `/users/${id}/mailboxes`)).body.results as Array<{ path: string; id: string }>;
  return { id, token, boxes: Object.fromEntries(list.map((b) => [b.path, b.id])) };
}

function flagsOf(t: HttpTestApp, a: Account, box: string, uid: number) {
  return t.request('GET', `/users/${a.id}/mailboxes/${a.boxes[box]}/messages/${uid}`, { token: a.token }).then((r) => r.body.flags as string[]);
}

describe('HTTP API: submission through a real SMTP relay', () => {
  let relay: TestRelay;
  let t: HttpTestApp;
  let alice: Account;
  let bob: Account;

  before(async () => {
    relay = await startTestRelay();
    t = await bootHttpTestApp({
      plugins: ['sent-autosave', ['submission', { maxRecipientsPerDay: 50 }]],
      delivery: { relay: { host: '127.0.0.1', port: relay.port } },
    });
    alice = await account(t, 'alice');
    bob = await account(t, 'bob');
    await t.request('POST', `/users/${alice.id}/addresses`, { body: { address: 'alice.alias@example.org' } });
  });
  after(async () => {
    await t.close();
    await relay.close();
  });

  it('composes and sends: the relay gets the envelope and bytes (no Bcc), Sent keeps a \\Seen copy with Bcc', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const res = await t.request('POST', '/users/me/submit', {
      token: alice.token,
      body: {
        to: [{ name: 'Carl Remote', address: 'carl@remote.example' }],
        cc: [{ address: 'dina@remote.example' }],
        bcc: [{ address: 'secret@remote.example' }],
        subject: 'Grüße from the API',
        text: 'Hello there',
        html: '<p>Hello <img src="cid:logo@x"></p>',
        headers: [{ key: 'X-Campaign', value: 'spring' }],
        attachments: [
          { filename: 'logo.png', contentType: 'image/png', content: png.toString('base64'), cid: 'logo@x' },
          { filename: 'notes.txt', contentType: 'text/plain', content: Buffer.from('some notes').toString('base64') },
        ],
      },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.success, true);
    const { mailbox, id, queueId } = res.body.message;
    assert.equal(mailbox, alice.boxes['Sent Mail']);
    assert.equal(typeof id, 'number');
    assert.match(queueId, /^\S+$/);

    assert.equal(relay.messages.length, 1, 'the relay had it before the API answered');
    const sent = relay.messages[0]!;
    assert.equal(sent.from, 'alice@example.com');
    assert.deepEqual(sent.to, ['carl@remote.example', 'dina@remote.example', 'secret@remote.example']);
    assert.equal(rawHeader(sent.raw, 'Bcc'), null, 'Bcc never leaves the server');
    assert.equal(rawHeader(sent.raw, 'From'), 'Alice Example <alice@example.com>');
    assert.equal(rawHeader(sent.raw, 'X-Campaign'), 'spring');
    assert.match(rawHeader(sent.raw, 'Subject')!, /^=\?UTF-8\?/);
    assert.match(sent.raw, /Content-ID: <logo@x>/);
    assert.match(sent.raw, /filename=notes\.txt[\s\S]*some notes/);

    const copy = await t.request('GET', `/users/${alice.id}/mailboxes/${mailbox}/messages/${id}`, { token: alice.token });
    assert.equal(copy.status, 200);
    assert.equal(copy.body.seen, true);
    assert.equal(copy.body.subject, 'Grüße from the API');
    assert.deepEqual(copy.body.bcc, [{ name: '', address: 'secret@remote.example' }]);
    assert.equal(copy.body.text.trim(), 'Hello there');
    assert.deepEqual(copy.body.attachments.map((a: { filename: string }) => a.filename).sort(), ['logo.png', 'notes.txt']);
  });

  it('sends from another of the user\'s addresses; refuses an address that is not theirs', async () => {
    const before = relay.messages.length;
    const res = await t.request('POST', `/users/${alice.id}/submit`, { body: { from: { name: 'A', address: 'Alice.Alias@example.org' }, to: [{ address: 'x@remote.example' }], text: 'hi' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(relay.messages[before]!.from, 'Alice.Alias@example.org');
    const foreign = await t.request('POST', `/users/${alice.id}/submit`, { body: { from: { address: 'bob@example.com' }, to: [{ address: 'x@remote.example' }] } });
    assert.equal(foreign.status, 400);
    assert.equal(foreign.body.details[0].path, 'body.from.address');
    const envelope = await t.request('POST', `/users/${alice.id}/submit`, { body: { to: [{ address: 'x@remote.example' }], envelope: { from: { address: 'bob@example.com' } } } });
    assert.equal(envelope.status, 403, 'the submission plugin checks the envelope sender too');
    assert.equal(envelope.body.code, 'NOPERM');
    assert.equal(relay.messages.length, before + 1);
  });

  it('reply: In-Reply-To and References, default recipient and subject, the original gets \\Answered', async () => {
    const original = [
      'From: Carl Remote <carl@remote.example>',
      'Reply-To: carl-replies@remote.example',
      'To: alice@example.com, other@remote.example',
      'Cc: alice.alias@example.org',
      'Subject: Lunch?',
      'Message-ID: <lunch-2@remote.example>',
      'References: <lunch-1@remote.example>',
      '',
      'Shall we?',
      '',
    ].join('\r\n');
    const up = await t.request('POST', `/users/${alice.id}/mailboxes/${alice.boxes.INBOX}/messages`, { body: { raw: Buffer.from(original).toString('base64'), unseen: true } });
    const uid = up.body.message.id as number;

    const before = relay.messages.length;
    const res = await t.request('POST', '/users/me/submit', { token: alice.token, body: { reference: { mailbox: alice.boxes.INBOX, id: uid, action: 'reply' }, text: 'Yes!' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const reply = relay.messages[before]!;
    assert.deepEqual(reply.to, ['carl-replies@remote.example']);
    assert.equal(rawHeader(reply.raw, 'Subject'), 'Re: Lunch?');
    assert.equal(rawHeader(reply.raw, 'In-Reply-To'), '<lunch-2@remote.example>');
    assert.equal(rawHeader(reply.raw, 'References'), '<lunch-1@remote.example> <lunch-2@remote.example>');
    assert.ok((await flagsOf(t, alice, 'INBOX', uid)).includes('\\Answered'));

    const all = await t.request('POST', '/users/me/submit', { token: alice.token, body: { reference: { mailbox: alice.boxes.INBOX, id: uid, action: 'replyAll' }, text: 'All of you' } });
    assert.equal(all.status, 200);
    assert.deepEqual(relay.messages[before + 1]!.to, ['carl-replies@remote.example', 'other@remote.example'], 'own addresses left out');
  });

  it('forward: the original is attached as message/rfc822 and gets $Forwarded', async () => {
    const original = 'From: zed@remote.example\r\nTo: alice@example.com\r\nSubject: Report\r\nMessage-ID: <report@remote.example>\r\n\r\nThe numbers: 42\r\n';
    const up = await t.request('POST', `/users/${alice.id}/mailboxes/${alice.boxes.INBOX}/messages`, { body: { raw: original } });
    const uid = up.body.message.id as number;
    const before = relay.messages.length;
    const res = await t.request('POST', '/users/me/submit', {
      token: alice.token,
      body: { to: [{ address: 'boss@remote.example' }], text: 'FYI', reference: { mailbox: alice.boxes.INBOX, id: uid, action: 'forward' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const fwd = relay.messages[before]!;
    assert.deepEqual(fwd.to, ['boss@remote.example']);
    assert.equal(rawHeader(fwd.raw, 'Subject'), 'Fwd: Report');
    assert.equal(rawHeader(fwd.raw, 'In-Reply-To'), '<report@remote.example>');
    assert.match(fwd.raw, /Content-Type: message\/rfc822/);
    assert.match(fwd.raw, /The numbers: 42/);
    assert.ok((await flagsOf(t, alice, 'INBOX', uid)).includes('$Forwarded'));
    const missing = await t.request('POST', '/users/me/submit', { token: alice.token, body: { to: [{ address: 'b@remote.example' }], reference: { mailbox: alice.boxes.INBOX, id: 9999, action: 'forward' } } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'MessageNotFound');
  });

  it('drafts: isDraft stores to Drafts without sending; the stored draft is then sent and removed from Drafts', async () => {
    const before = relay.messages.length;
    const saved = await t.request('POST', '/users/me/submit', {
      token: alice.token,
      body: { isDraft: true, to: [{ address: 'later@remote.example' }], bcc: [{ address: 'hidden@remote.example' }], subject: 'Draft one', text: 'draft body' },
    });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.deepEqual(saved.body.message, { mailbox: alice.boxes.Drafts, id: saved.body.message.id, queueId: false });
    assert.equal(relay.messages.length, before, 'nothing sent');
    assert.ok((await flagsOf(t, alice, 'Drafts', saved.body.message.id)).includes('\\Draft'));

    // a second save replacing the first (`draft`) leaves one draft
    const replaced = await t.request('POST', '/users/me/submit', {
      token: alice.token,
      body: { isDraft: true, draft: { mailbox: alice.boxes.Drafts, id: saved.body.message.id }, to: [{ address: 'later@remote.example' }], bcc: [{ address: 'hidden@remote.example' }], subject: 'Draft two', text: 'draft body 2' },
    });
    const draftUid = replaced.body.message.id as number;
    const drafts = await t.request('GET', `/users/${alice.id}/mailboxes/${alice.boxes.Drafts}/messages`, { token: alice.token });
    assert.deepEqual(drafts.body.results.map((m: { id: number }) => m.id), [draftUid]);

    const notDraft = await t.request('POST', `/users/me/mailboxes/${alice.boxes.INBOX}/messages/1/submit`, { token: alice.token, body: {} });
    assert.equal(notDraft.status, 400);
    assert.equal(notDraft.body.code, 'MessageNotDraft');

    const sent = await t.request('POST', `/users/me/mailboxes/${alice.boxes.Drafts}/messages/${draftUid}/submit`, { token: alice.token, body: {} });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.match(sent.body.queueId, /^\S+$/);
    assert.equal(sent.body.message.mailbox, alice.boxes['Sent Mail']);
    const out = relay.messages[before]!;
    assert.equal(out.from, 'alice@example.com');
    assert.deepEqual(out.to, ['later@remote.example', 'hidden@remote.example']);
    assert.equal(rawHeader(out.raw, 'Bcc'), null);
    assert.equal(rawHeader(out.raw, 'Subject'), 'Draft two');
    const left = await t.request('GET', `/users/${alice.id}/mailboxes/${alice.boxes.Drafts}/messages`, { token: alice.token });
    assert.equal(left.body.total, 0, 'the draft is gone from Drafts');
    const copy = await t.request('GET', `/users/${alice.id}/mailboxes/${alice.boxes['Sent Mail']}/messages/${sent.body.message.id}`, { token: alice.token });
    assert.equal(copy.body.seen, true);
    assert.equal(copy.body.subject, 'Draft two');
  });

  it('answers with the copy saved for this send, not an older Sent message with the same Message-ID', async () => {
    const erin = await account(t, 'erin');
    const saved = await t.request('POST', '/users/me/submit', { token: erin.token, body: { isDraft: true, to: [{ address: 'x@remote.example' }], subject: 'twice', text: 'same draft' } });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const draftUid = saved.body.message.id as number;
    const first = await t.request('POST', `/users/me/mailboxes/${erin.boxes.Drafts}/messages/${draftUid}/submit`, { token: erin.token, body: { deleteDraft: false } });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.message.mailbox, erin.boxes['Sent Mail']);

    // the same draft again, now over quota: it is sent, no copy is saved, so the draft stays and no copy is named
    await t.app.storage.users.update(erin.id, { quota: { storage: 1 } });
    const second = await t.request('POST', `/users/me/mailboxes/${erin.boxes.Drafts}/messages/${draftUid}/submit`, { token: erin.token, body: {} });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.message, undefined, 'the Sent message from the first send is not this send\'s copy');
    const drafts = await t.request('GET', `/users/${erin.id}/mailboxes/${erin.boxes.Drafts}/messages`, { token: erin.token });
    assert.deepEqual(drafts.body.results.map((m: { id: number }) => m.id), [draftUid], 'the draft is kept: no copy was saved');
  });

  it('quota applies to the Sent copy: sent, but not saved when it does not fit', async () => {
    const carol = await account(t, 'carol', { quota: 300 });
    const before = relay.messages.length;
    const res = await t.request('POST', '/users/me/submit', { token: carol.token, body: { to: [{ address: 'x@remote.example' }], subject: 'big', text: 'x'.repeat(2000) } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(relay.messages.length, before + 1, 'the message went out');
    assert.equal(res.body.message.mailbox, false);
    assert.equal(res.body.message.id, false);
    assert.equal((await t.request('GET', `/users/${carol.id}/mailboxes/${carol.boxes['Sent Mail']}/messages`, { token: carol.token })).body.total, 0);
    const upload = await t.request('POST', '/users/me/submit', { token: carol.token, body: { uploadOnly: true, to: [{ address: 'x@remote.example' }], text: 'y'.repeat(2000) } });
    assert.equal(upload.status, 403);
    assert.equal(upload.body.code, 'OVERQUOTA');
  });

  it('daily recipient limit: 429 LIMIT once a user has sent to maxRecipientsPerDay addresses', async () => {
    const dora = await account(t, 'dora');
    const many = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ address: `r${i}-${tag}@remote.example` }));
    assert.equal((await t.request('POST', '/users/me/submit', { token: dora.token, body: { to: many(40, 'a'), text: 'one' } })).status, 200);
    const over = await t.request('POST', '/users/me/submit', { token: dora.token, body: { to: many(20, 'b'), text: 'two' } });
    assert.equal(over.status, 429);
    assert.equal(over.body.code, 'LIMIT');
  });

  it('refuses bad input with the path of the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ to: [{ address: 'not an address' }] }, 'body.to.0.address'],
      [{ text: 'nobody to send to' }, 'body.to'],
      [{ to: [{ address: 'a@remote.example' }], attachments: [{ content: '***' }] }, 'body.attachments.0.content'],
      [{ to: [{ address: 'a@remote.example' }], headers: [{ key: 'From', value: 'x@y' }] }, 'body.headers.0.key'],
      [{ to: [{ address: 'a@remote.example' }], subject: 'two\r\nBcc: evil@remote.example' }, 'body.subject'],
      [{ to: [{ address: 'a@remote.example' }], sendTime: new Date(Date.now() + 3600_000).toISOString() }, 'body.sendTime'],
      [{ to: [{ address: 'a@remote.example' }], reference: { mailbox: alice.boxes.INBOX, id: 1, action: 'bounce' } }, 'body.reference.action'],
    ];
    for (const [body, path] of cases) {
      const res = await t.request('POST', '/users/me/submit', { token: alice.token, body });
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'InputValidationError');
      assert.equal(res.body.details[0].path, path);
    }
  });

  it('another user\'s token gets 403 on both routes; no token 401', async () => {
    const compose = await t.request('POST', `/users/${alice.id}/submit`, { token: bob.token, body: { to: [{ address: 'a@remote.example' }], text: 'x' } });
    assert.equal(compose.status, 403);
    assert.equal(compose.body.code, 'MissingPrivileges');
    const draft = await t.request('POST', `/users/${alice.id}/mailboxes/${alice.boxes.Drafts}/messages/1/submit`, { token: bob.token, body: {} });
    assert.equal(draft.status, 403);
    assert.equal((await t.request('POST', `/users/${alice.id}/submit`, { token: null, body: {} })).status, 401);
    // bob's own token cannot reach alice's mailbox through his own user either
    const cross = await t.request('POST', '/users/me/submit', { token: bob.token, body: { to: [{ address: 'a@remote.example' }], reference: { mailbox: alice.boxes.INBOX, id: 1, action: 'reply' } } });
    assert.equal(cross.status, 404);
    assert.equal(cross.body.code, 'NoSuchMailbox');
  });
});

describe('HTTP API: submission without a relay', () => {
  it('answers 503 UNAVAILABLE "no outbound relay configured" and saves nothing to Sent', async () => {
    const t = await bootHttpTestApp({ plugins: ['sent-autosave'] });
    try {
      const erin = await account(t, 'erin');
      const res = await t.request('POST', '/users/me/submit', { token: erin.token, body: { to: [{ address: 'a@remote.example' }], text: 'x' } });
      assert.equal(res.status, 503);
      assert.equal(res.body.code, 'UNAVAILABLE');
      assert.equal(res.body.error, 'no outbound relay configured');
      assert.equal((await t.request('GET', `/users/${erin.id}/mailboxes/${erin.boxes['Sent Mail']}/messages`)).body.total, 0);
      // storing a draft needs no relay
      assert.equal((await t.request('POST', '/users/me/submit', { token: erin.token, body: { isDraft: true, text: 'later' } })).status, 200);
    } finally {
      await t.close();
    }
  });
});
