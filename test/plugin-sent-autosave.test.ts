/**
 * Sent autosave on the real stack: submitMessage stores a \Seen copy in Sent through storeMessage (quota
 * applies); the client's APPEND of the same Message-ID within the window gets OK [APPENDUID] with the saved
 * UID and no second copy; other messages, and the same one after the window, are stored normally.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startImap } from '../protocols/imap.ts';
import { bootImapTestApp, login, appendMessage, message } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import type { Plugin } from '../hooks/host.ts';
import { internalContext } from '../hooks/context.ts';
import { submitMessage } from '../hooks/pipeline/index.ts';
import { headerMessageId } from '../plugins/sent-autosave.ts';

/** Stands in for an outbound queue: accepts every submission. */
const queue: Plugin = {
  name: 'test-queue',
  apply(api) {
    api.hooks.submission.submit.tapPromise({}, async (_ctx, input) => ({ id: `queued-${input.to.length}` }));
  },
};

async function submit(t: ImapTestApp, text: string) {
  const ctx = internalContext(t.app.log, { id: t.userId, username: 'alice' });
  return submitMessage(t.app, ctx, { userId: t.userId, from: 'alice@example.com', to: ['bob@example.com'], source: new TextEncoder().encode(text) });
}

describe('sent-autosave plugin', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ plugins: [queue, ['sent-autosave', { windowMs: 2000 }]] });
  });
  after(() => t.close());

  it('reads the Message-ID of a raw message', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    assert.equal(headerMessageId(enc('Subject: x\r\nMessage-ID:  <a@b>\r\n\r\nMessage-ID: <body@x>\r\n')), '<a@b>');
    assert.equal(headerMessageId(enc('Subject: x\r\n\r\nMessage-ID: <body@x>\r\n')), null);
  });

  it('saves the submitted message in Sent as \\Seen; the client APPEND of the same message is answered with that UID', async () => {
    // log in first: the window (2 s) must cover the APPENDs below, not a login slowed by a loaded machine
    const client = await login(t.app);
    const text = message('outgoing');
    const result = await submit(t, text);
    const sent = (await t.app.storage.mailboxes.getBySpecialUse(t.userId, '\\Sent'))!;
    const index = await t.app.storage.messages.index(sent.id);
    assert.equal(index.length, 1);
    const record = (await t.app.storage.messages.get(sent.id, index[0]!.uid))!;
    // the result carries the copy the plugin stored (recordStored), so a protocol can name it without the plugin
    assert.deepEqual(result, { ok: true, value: { id: 'queued-1', stored: [{ mailboxId: sent.id, uid: record.uid, id: record.id }] } });
    assert.deepEqual(index[0]!.flags, ['\\Seen']);
    const usage = (await t.app.storage.users.get(t.userId))!;
    assert.equal(await appendMessage(client, '"Sent Mail"', text, '\\Seen'), `OK [APPENDUID ${sent.uidValidity} ${index[0]!.uid}] APPEND completed`);
    assert.equal((await t.app.storage.messages.index(sent.id)).length, 1, 'no second copy');
    assert.deepEqual(await t.app.storage.users.get(t.userId), usage, 'usage unchanged');

    // another message, and the same one to another mailbox, are stored as usual
    assert.match(await appendMessage(client, '"Sent Mail"', message('different')), /^OK \[APPENDUID \d+ 2\]/);
    assert.match(await appendMessage(client, 'INBOX', text), /^OK \[APPENDUID \d+ 1\]/);
    assert.equal((await t.app.storage.messages.index(sent.id)).length, 2);

    // after the window the same message is a new copy
    await new Promise((r) => setTimeout(r, 2100));
    assert.match(await appendMessage(client, '"Sent Mail"', text), /^OK \[APPENDUID \d+ 3\]/);
  });

  it('the Sent copy goes through quota: over quota, the submission succeeds but nothing is saved', async () => {
    const sent = (await t.app.storage.mailboxes.getBySpecialUse(t.userId, '\\Sent'))!;
    const before = (await t.app.storage.messages.index(sent.id)).length;
    await t.app.storage.users.update(t.userId, { quota: { storage: 1 } });
    try {
      const result = await submit(t, message('overquota'));
      assert.ok(result.ok);
      assert.deepEqual(result.value.stored, [], 'no copy reported');
      assert.equal((await t.app.storage.messages.index(sent.id)).length, before);
      assert.ok(t.logs.some((e) => e.msg === 'could not save the submitted message to Sent' && e.code === 'OVERQUOTA'));
    } finally {
      await t.app.storage.users.update(t.userId, { quota: { storage: null } });
    }
  });

  it('switched off: submissions leave Sent alone', async () => {
    const off = await bootImapTestApp({ plugins: [queue] });
    try {
      assert.ok((await submit(off, message('plain'))).ok);
      const sent = (await off.app.storage.mailboxes.getBySpecialUse(off.userId, '\\Sent'))!;
      assert.equal((await off.app.storage.messages.index(sent.id)).length, 0);
    } finally {
      await off.close();
    }
  });
});

describe('sent-autosave with a real IMAP client (imapflow over loopback)', () => {
  it('the client APPENDs what it just submitted to Sent: it gets APPENDUID of the saved copy, and Sent holds one', async () => {
    const t = await bootImapTestApp({ imap: { host: '127.0.0.1', port: 0, tlsPort: null }, plugins: [queue, 'sent-autosave'] });
    const listeners = await startImap(t.app, null);
    const client = new ImapFlow({ host: '127.0.0.1', port: listeners[0]!.port, secure: false, doSTARTTLS: false, auth: { user: 'alice', pass: 'secret' }, logger: false });
    try {
      const text = message('flow-sent', 'Sent from a real client.\r\n');
      assert.ok((await submit(t, text)).ok);
      const sent = (await t.app.storage.mailboxes.getBySpecialUse(t.userId, '\\Sent'))!;
      const [saved] = await t.app.storage.messages.index(sent.id);

      await client.connect();
      const appended = await client.append('Sent Mail', text, ['\\Seen']);
      assert.ok(appended);
      assert.equal(appended.uid, saved!.uid, 'APPENDUID names the saved copy');
      assert.equal(appended.uidValidity, BigInt(sent.uidValidity));
      const status = await client.status('Sent Mail', { messages: true, uidNext: true });
      assert.ok(status);
      assert.equal(status.messages, 1, 'no second copy');
      assert.equal(status.uidNext, saved!.uid + 1);

      const lock = await client.getMailboxLock('Sent Mail');
      try {
        const fetched = [];
        for await (const msg of client.fetch('1:*', { uid: true, flags: true, envelope: true })) fetched.push(msg);
        assert.equal(fetched.length, 1);
        assert.equal(fetched[0]!.envelope?.messageId, '<flowsent@example.com>');
        assert.ok(fetched[0]!.flags?.has('\\Seen'));
      } finally {
        lock.release();
      }
      await client.logout();
    } finally {
      client.close();
      for (const l of listeners) await l.close();
      await t.close();
    }
  });
});
