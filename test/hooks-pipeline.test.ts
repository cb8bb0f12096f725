import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, closeSession, connectSession, copyMessages, createMailbox, deleteMailbox, expungeMessages, listCapabilities, moveMessages, renameMailbox, runCommand, storeMessage, submitMessage, subscribeMailbox, updateFlags } from '../hooks/pipeline/index.ts';
import { createContext, createSession, internalContext } from '../hooks/context.ts';
import type { Plugin } from '../hooks/host.ts';
import { GUARD } from '../hooks/stages.ts';
import { deny, disconnect } from '../hooks/verdict.ts';
import { encode, makeApp } from './helpers/hooks-app.ts';

const plugin = (name: string, apply: Plugin['apply']): Plugin => ({ name, apply });
const code = (r: { ok: boolean; verdict?: { code: string } }) => (r.ok ? 'ok' : r.verdict!.code);

describe('pipeline functions with the storage plugin', () => {
  it('authenticate: valid password sets the session user; wrong password, unknown and disabled users fail alike', async () => {
    const seen: string[] = [];
    const t = await makeApp({ config: { plugins: [plugin('audit', (api) => api.hooks.auth.afterAuthenticate.tap({}, (_c, info) => void seen.push(`${info.username}/${info.method}`)))] } });
    t.storage.addUser('alice', 'plain:secret');
    t.storage.addUser('bob', 'plain:pw', true);
    const ctx = createContext(createSession(t.app.log, { protocol: 'imap', remoteAddress: '127.0.0.1' }));
    const good = await authenticate(t.app, ctx, { username: 'Alice', password: 'secret', method: 'PLAIN' });
    assert.ok(good.ok);
    assert.deepEqual(ctx.session.user, { id: good.value.id, username: 'alice' });
    assert.deepEqual(seen, ['Alice/PLAIN']);
    for (const [username, password] of [['alice', 'nope'], ['nobody', 'x'], ['bob', 'pw']]) {
      const bad = await authenticate(t.app, internalContext(t.app.log), { username: username!, password: password!, method: 'LOGIN' });
      assert.deepEqual(bad.ok ? null : [bad.verdict.action, bad.verdict.code], ['deny', 'AUTHENTICATIONFAILED'], username);
    }
  });

  it('authenticate: beforeAuthenticate can refuse (rate limit) before the password is checked', async () => {
    const t = await makeApp({ config: { plugins: [plugin('ratelimit', (api) => api.hooks.auth.beforeAuthenticate.tap({ stage: GUARD }, () => deny('LIMIT', 'Too many attempts')))] } });
    t.storage.addUser('alice', 'plain:secret');
    const result = await authenticate(t.app, internalContext(t.app.log), { username: 'alice', password: 'secret', method: 'PLAIN' });
    assert.equal(code(result), 'LIMIT');
  });

  it('mailboxes: create, rename, subscribe, delete; storage errors keep their code', async () => {
    const t = await makeApp();
    const user = t.storage.addUser('alice', null);
    const ctx = internalContext(t.app.log);
    await createMailbox(t.app, ctx, { userId: user.id, path: 'INBOX' });
    const created = await createMailbox(t.app, ctx, { userId: user.id, path: 'Work' });
    assert.ok(created.ok);
    assert.equal(code(await createMailbox(t.app, ctx, { userId: user.id, path: 'Work' })), 'ALREADYEXISTS');
    await createMailbox(t.app, ctx, { userId: user.id, path: 'Work/2024' });
    const renamed = await renameMailbox(t.app, ctx, { userId: user.id, fromPath: 'Work', toPath: 'Jobs' });
    assert.ok(renamed.ok);
    assert.deepEqual(renamed.value.map((m) => m.path).sort(), ['Jobs', 'Jobs/2024']);
    const sub = await subscribeMailbox(t.app, ctx, { userId: user.id, mailboxId: created.value.id, subscribed: false });
    assert.deepEqual(sub, { ok: true, value: { mailboxId: created.value.id, subscribed: false } });
    const inbox = (await t.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
    assert.equal(code(await deleteMailbox(t.app, ctx, { userId: user.id, mailboxId: inbox.id })), 'CANNOT');
    assert.equal(code(await deleteMailbox(t.app, ctx, { userId: 'someone-else', mailboxId: created.value.id })), 'NONEXISTENT');
    const deleted = await deleteMailbox(t.app, ctx, { userId: user.id, mailboxId: created.value.id });
    assert.ok(deleted.ok);
    assert.equal(deleted.value.path, 'Jobs');
  });

  it('a beforeCreate verdict stops mailbox creation', async () => {
    const t = await makeApp({ config: { plugins: [plugin('names', (api) => api.hooks.mailbox.beforeCreate.tap({}, (_c, input) => (input.path.startsWith('.') ? deny('CANNOT', 'No hidden folders') : undefined)))] } });
    const user = t.storage.addUser('alice', null);
    const result = await createMailbox(t.app, internalContext(t.app.log), { userId: user.id, path: '.secret' });
    assert.equal(code(result), 'CANNOT');
    assert.equal(t.storage.mailboxList.length, 0);
  });

  it('messages: copy, move, flags, expunge go through their triplets', async () => {
    const calls: string[] = [];
    const t = await makeApp({
      config: {
        plugins: [
          plugin('watch', (api) => {
            const m = api.hooks.message;
            m.afterCopy.tap({}, () => void calls.push('copy'));
            m.afterMove.tap({}, () => void calls.push('move'));
            m.afterFlags.tap({}, () => void calls.push('flags'));
            m.afterExpunge.tap({}, () => void calls.push('expunge'));
          }),
        ],
      },
    });
    const user = t.storage.addUser('alice', null);
    const ctx = internalContext(t.app.log);
    const inbox = await t.storage.mailboxes.create(user.id, { path: 'INBOX' });
    const trash = await t.storage.mailboxes.create(user.id, { path: 'Trash' });
    for (let i = 0; i < 3; i++) {
      const r = await storeMessage(t.app, ctx, { userId: user.id, mailboxId: inbox.id, flags: [], internalDate: 0, source: encode(`Subject: ${i}\r\n\r\n`) });
      assert.ok(r.ok);
    }
    const copied = await copyMessages(t.app, ctx, { userId: user.id, mailboxId: inbox.id, uids: [1, 2], targetMailboxId: trash.id });
    assert.deepEqual(copied.ok && copied.value.mappings, [
      { sourceUid: 1, destinationUid: 1 },
      { sourceUid: 2, destinationUid: 2 },
    ]);
    const moved = await moveMessages(t.app, ctx, { userId: user.id, mailboxId: inbox.id, uids: [3], targetMailboxId: trash.id });
    assert.deepEqual(moved.ok && moved.value.mappings, [{ sourceUid: 3, destinationUid: 3 }]);
    const flagged = await updateFlags(t.app, ctx, { userId: user.id, mailboxId: trash.id, uids: [1], update: { action: 'add', flags: ['\\Deleted'] } });
    assert.deepEqual(flagged.ok && flagged.value.changed.map((c) => [c.uid, c.flags]), [[1, ['\\Deleted']]]);
    const expunged = await expungeMessages(t.app, ctx, { userId: user.id, mailboxId: trash.id, uids: [1] });
    assert.deepEqual(expunged, { ok: true, value: { uids: [1] } });
    assert.deepEqual(calls, ['copy', 'move', 'flags', 'expunge']);
  });

  it('submitMessage: tempfail UNAVAILABLE with no submission plugin; a queue plugin accepts', async () => {
    // the built-in relay plugin (plugins/submission.ts, loaded by default) switched off: no submitter at all
    const bare = await makeApp({ config: { plugins: [['submission', false]] } });
    const input = { userId: 'u', from: 'a@example.com', to: ['b@example.com'], source: encode('Subject: x\r\n\r\n') };
    assert.deepEqual(await submitMessage(bare.app, internalContext(bare.app.log), input).then((r) => !r.ok && [r.verdict.action, r.verdict.code]), ['tempfail', 'UNAVAILABLE']);
    const t = await makeApp({ config: { plugins: [plugin('queue', (api) => api.hooks.submission.submit.tapPromise({}, async (_c, i) => ({ id: `q-${i.to.length}` }))), ['submission', false]] } });
    assert.deepEqual(await submitMessage(t.app, internalContext(t.app.log), input), { ok: true, value: { id: 'q-1', stored: [] } });
    // an afterSubmit observer that stored a copy reports it; the result lists it after the queue's answer
    const copy = { mailboxId: 'sent', uid: 7, id: 'm7' };
    const reporter = plugin('reporter', (api) => api.hooks.submission.afterSubmit.tapPromise({}, async (_c, submitted) => submitted.recordStored(copy)));
    const queued = plugin('queue', (api) => api.hooks.submission.submit.tapPromise({}, async () => ({ id: 'q' })));
    const r = await makeApp({ config: { plugins: [queued, reporter, ['submission', false]] } });
    assert.deepEqual(await submitMessage(r.app, internalContext(r.app.log), input), { ok: true, value: { id: 'q', stored: [copy] } });
  });
});

describe('session and protocol hooks', () => {
  it('connect and close run every tap', async () => {
    const ran: string[] = [];
    const t = await makeApp({
      config: {
        plugins: [
          plugin('geo', (api) => {
            api.hooks.session.connect.tap({}, (ctx) => void ran.push(`connect ${ctx.session.remoteAddress}`));
            api.hooks.session.close.tap({}, () => void ran.push('close'));
          }),
        ],
      },
    });
    const ctx = createContext(createSession(t.app.log, { protocol: 'pop3', remoteAddress: '10.0.0.1' }));
    await connectSession(t.app, ctx);
    await closeSession(t.app, ctx);
    assert.deepEqual(ran, ['connect 10.0.0.1', 'close']);
  });

  it('runCommand: null when no plugin cares, a verdict to deny, a result to implement a verb', async () => {
    const t = await makeApp({
      config: {
        plugins: [
          plugin('gate', (api) => {
            api.hooks.imap.command.for('append').tap({}, (ctx) => (ctx.session.remoteAddress === '192.0.2.1' ? disconnect('NOPERM', 'Go away') : undefined));
            api.hooks.imap.command.for('XHELLO').tap({}, (_c, cmd) => ({ untagged: [`XHELLO ${String(cmd.args)}`] }));
          }),
        ],
      },
    });
    const ctx = (addr: string) => createContext(createSession(t.app.log, { protocol: 'imap', remoteAddress: addr }));
    assert.deepEqual(await runCommand(t.app, 'imap', ctx('127.0.0.1'), { verb: 'NOOP', args: [] }), { ok: true, value: null });
    assert.deepEqual(await runCommand(t.app, 'imap', ctx('127.0.0.1'), { verb: 'APPEND', args: [] }), { ok: true, value: null });
    const denied = await runCommand(t.app, 'imap', ctx('192.0.2.1'), { verb: 'Append', args: [] });
    assert.deepEqual(denied, { ok: false, verdict: { action: 'disconnect', code: 'NOPERM', message: 'Go away' } });
    assert.deepEqual(await runCommand(t.app, 'imap', ctx('127.0.0.1'), { verb: 'xhello', tag: 'A1', args: 'world' }), { ok: true, value: { untagged: ['XHELLO world'] } });
  });

  it('listCapabilities: plugins extend the list; a failing tap leaves the base list', async () => {
    const t = await makeApp({
      config: {
        plugins: [
          // default plugins whose capabilities would join the list
          ['quota', false],
          ['imap-sort', false],
          ['imap-esort', false],
          ['imap-thread', false],
          plugin('ext', (api) => api.hooks.capabilities.for('imap').tap({}, (caps) => [...caps, 'XAPPLEPUSHSERVICE'])),
          plugin('bad', (api) => api.hooks.capabilities.for('pop3').tap({}, () => {
            throw new Error('oops');
          })),
        ],
      },
    });
    const ctx = internalContext(t.app.log);
    assert.deepEqual(await listCapabilities(t.app, 'imap', ctx, ['IMAP4rev1', 'IDLE']), ['IMAP4rev1', 'IDLE', 'XAPPLEPUSHSERVICE']);
    assert.deepEqual(await listCapabilities(t.app, 'pop3', ctx, ['TOP', 'UIDL']), ['TOP', 'UIDL']);
    assert.deepEqual(await listCapabilities(t.app, 'lmtp', ctx, ['PIPELINING']), ['PIPELINING']);
  });
});
