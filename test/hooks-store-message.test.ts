import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { storeMessage } from '../hooks/pipeline/store-message.ts';
import { internalContext } from '../hooks/context.ts';
import { definePlugin } from '../hooks/host.ts';
import type { Plugin } from '../hooks/host.ts';
import { POLICY, TRANSFORM } from '../hooks/stages.ts';
import { VerdictError, deny } from '../hooks/verdict.ts';
import { StorageError } from '../storage/ports.ts';
import { chunks, decode, encode, makeApp } from './helpers/hooks-app.ts';
import type { TestApp } from './helpers/hooks-app.ts';

const MESSAGE = 'Subject: hello\r\n\r\nHello world\r\n';

async function withInbox(t: TestApp) {
  const user = t.storage.addUser('alice', 'plain:secret');
  const inbox = await t.storage.mailboxes.create(user.id, { path: 'INBOX', specialUse: '\\Inbox' });
  const ctx = internalContext(t.app.log, { id: user.id, username: user.username });
  const input = (source: AsyncIterable<Uint8Array> | Uint8Array, extra: { declaredSize?: number } = {}) => ({
    userId: user.id,
    mailboxId: inbox.id,
    flags: ['\\Seen'],
    internalDate: 1_700_000_000_000,
    source,
    ...extra,
  });
  return { user, inbox, ctx, input };
}

const plugin = (name: string, apply: Plugin['apply']): Plugin => ({ name, apply });

describe('storeMessage end to end (fake storage)', () => {
  it('stores through the storage plugin and runs afterStore', async () => {
    const seen: number[] = [];
    const t = await makeApp({
      config: { plugins: [plugin('notify', (api) => api.hooks.message.afterStore.tap({}, (_ctx, _input, result) => void seen.push(result.uid)))] },
    });
    const { ctx, input, inbox } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(chunks('Subject: hello\r\n', '\r\nHello world\r\n')));
    assert.ok(result.ok);
    assert.equal(result.value.uid, 1);
    assert.deepEqual(seen, [1]);
    const stored = await t.storage.messages.get(inbox.id, 1);
    assert.equal(stored?.subject, 'hello');
    assert.deepEqual(stored?.flags, ['\\Seen']);
    assert.equal(decode(t.storage.bytes.get(stored!.id)!), MESSAGE);
    assert.equal(t.storage.discarded.length, 0);
  });

  it('accepts a Uint8Array source', async () => {
    const t = await makeApp();
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.ok(result.ok);
  });

  it('a beforeStore verdict denies before anything is read or written', async () => {
    const t = await makeApp({
      config: { plugins: [plugin('quota', (api) => api.hooks.message.beforeStore.tap({ stage: POLICY }, () => deny('OVERQUOTA', 'Mailbox is full')))] },
    });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result, { ok: false, verdict: { action: 'deny', code: 'OVERQUOTA', message: 'Mailbox is full' } });
    assert.equal(t.ingestCalls.length, 0);
    assert.equal(t.storage.messageList.length, 0);
  });

  it('prepare rewrites the stored bytes', async () => {
    const t = await makeApp({
      config: {
        plugins: [
          plugin('header', (api) =>
            api.hooks.message.prepare.tap({ stage: TRANSFORM }, (source) =>
              (async function* () {
                yield encode('X-Seen-By: wildduck\r\n');
                yield* source;
              })(),
            ),
          ),
        ],
      },
    });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.ok(result.ok);
    assert.equal(decode(t.storage.bytes.get(result.value.id)!), 'X-Seen-By: wildduck\r\n' + MESSAGE);
  });

  it('a VerdictError from the prepared stream refuses the message', async () => {
    const t = await makeApp({
      config: {
        plugins: [
          plugin('scanner', (api) =>
            api.hooks.message.prepare.tap({}, () =>
              (async function* () {
                yield encode('X: 1\r\n');
                throw new VerdictError(deny('CANNOT', 'Rejected by content filter'));
              })(),
            ),
          ),
        ],
      },
    });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result.ok ? null : result.verdict.code, 'CANNOT');
  });

  it('declaredSize over the limit is TOOBIG without reading', async () => {
    const t = await makeApp({ config: { limits: { maxMessageSize: 100 } } });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE), { declaredSize: 101 }));
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['deny', 'TOOBIG']);
    assert.equal(t.ingestCalls.length, 0);
  });

  it('a TOOBIG error from ingest becomes a deny TOOBIG verdict', async () => {
    const t = await makeApp({ maxSize: 10 });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['deny', 'TOOBIG']);
  });

  it('an unexpected ingest error is a logged tempfail', async () => {
    const t = await makeApp();
    const { ctx, input } = await withInbox(t);
    const broken = (async function* () {
      yield encode('Subject: x\r\n');
      throw new Error('socket reset');
    })();
    const result = await storeMessage(t.app, ctx, input(broken));
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['tempfail', 'SERVERBUG']);
    assert.ok(t.logs.some((e) => e.level === 'error' && /ingest/.test(String(e.msg))));
  });

  it('a storage error at commit becomes a verdict and the staged blobs are discarded', async () => {
    const t = await makeApp();
    const { ctx, input } = await withInbox(t);
    t.storage.failNextAppend = new StorageError('NONEXISTENT', 'mailbox was deleted');
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['deny', 'NONEXISTENT']);
    assert.equal(t.storage.discarded.length, 1);
    assert.equal(t.storage.staged.size, 0);
  });

  it('a crash at commit is a tempfail and the staged blobs are discarded', async () => {
    const t = await makeApp();
    const { ctx, input } = await withInbox(t);
    t.storage.failNextAppend = new Error('disk on fire');
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result.ok ? null : [result.verdict.action, result.verdict.code], ['tempfail', 'SERVERBUG']);
    assert.equal(t.storage.discarded.length, 1);
    const logged = t.logs.find((e) => e.level === 'error');
    assert.deepEqual([logged?.hook, logged?.plugin], ['message.store', 'storage']);
    // the next store works
    assert.ok((await storeMessage(t.app, ctx, input(encode(MESSAGE)))).ok);
  });

  it('a plugin committing before storage (e.g. a dedup plugin answering) wins; blobs are still discarded on its verdict', async () => {
    const t = await makeApp({
      config: { plugins: [plugin('dupes', (api) => api.hooks.message.store.tap({ stage: POLICY }, () => deny('ALREADYEXISTS', 'Duplicate')))] },
    });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.deepEqual(result.ok ? null : result.verdict.code, 'ALREADYEXISTS');
    assert.equal(t.storage.discarded.length, 1);
    assert.equal(t.storage.messageList.length, 0);
  });

  it('afterStore failures do not fail the store', async () => {
    const t = await makeApp({
      config: {
        plugins: [
          plugin('webhook', (api) =>
            api.hooks.message.afterStore.tapPromise({}, async () => {
              throw new Error('webhook down');
            }),
          ),
        ],
      },
    });
    const { ctx, input } = await withInbox(t);
    const result = await storeMessage(t.app, ctx, input(encode(MESSAGE)));
    assert.ok(result.ok);
    assert.equal(t.storage.discarded.length, 0);
  });

  it('per-operation state travels on the context from beforeStore to afterStore', async () => {
    const notes: unknown[] = [];
    const registry = {
      stamp: definePlugin({
        create: () =>
          plugin('stamp', (api) => {
            api.hooks.message.beforeStore.tap({}, (ctx) => void ctx.data.set('stamp', 'checked'));
            api.hooks.message.afterStore.tap({}, (ctx) => void notes.push(ctx.data.get('stamp')));
          }),
      }),
    };
    const t = await makeApp({ registry, config: { plugins: ['stamp'] } });
    const { ctx, input } = await withInbox(t);
    assert.ok((await storeMessage(t.app, ctx, input(encode(MESSAGE)))).ok);
    assert.deepEqual(notes, ['checked']);
  });
});
