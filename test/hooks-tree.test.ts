import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHooks } from '../hooks/tree.ts';
import { createTapView } from '../hooks/view.ts';
import { COMMIT, DEFAULT, GUARD, OBSERVE, POLICY, TRANSFORM, stageName } from '../hooks/stages.ts';
import { deny, isVerdict } from '../hooks/verdict.ts';
import { internalContext } from '../hooks/context.ts';
import { silentLogger } from '../hooks/log.ts';
import type { StoreRequest } from '../hooks/types.ts';
import { runBefore, runHook } from '../hooks/pipeline/run.ts';
import { chunks, decode, readAll } from './helpers/hooks-app.ts';

const ctx = () => internalContext(silentLogger);
const request: StoreRequest = { userId: 'u1', mailboxId: 'm1', flags: [], internalDate: 0 };

describe('stages', () => {
  it('are ordered guard < policy < default < transform < commit < observe', () => {
    assert.deepEqual([GUARD, POLICY, DEFAULT, TRANSFORM, COMMIT, OBSERVE].toSorted((a, b) => a - b), [GUARD, POLICY, DEFAULT, TRANSFORM, COMMIT, OBSERVE]);
    assert.equal(stageName(POLICY), 'POLICY');
    assert.equal(stageName(POLICY + 5), 'POLICY+5');
    assert.equal(stageName(COMMIT - 1), 'COMMIT-1');
    assert.equal(stageName(undefined), 'DEFAULT');
  });
});

describe('hook tree', () => {
  it('is frozen and typed by domain', () => {
    const hooks = createHooks();
    assert.ok(Object.isFrozen(hooks));
    assert.ok(Object.isFrozen(hooks.message));
    assert.throws(() => {
      (hooks.message as { store: unknown }).store = null;
    }, TypeError);
    assert.equal(hooks.message.store.name, 'message.store');
    assert.equal(hooks.imap.command.for('APPEND').name, 'imap.command[APPEND]');
  });

  it('runs taps by stage across plugins, config order breaking ties', async () => {
    const hooks = createHooks();
    const order: string[] = [];
    // plugins apply in config order: a, b, c
    const a = createTapView(hooks, 'a').hooks;
    const b = createTapView(hooks, 'b').hooks;
    const c = createTapView(hooks, 'c').hooks;
    a.message.beforeStore.tap({ stage: OBSERVE }, () => void order.push('a@observe'));
    a.message.beforeStore.tap({ stage: POLICY }, () => void order.push('a@policy'));
    b.message.beforeStore.tap({ stage: GUARD }, () => void order.push('b@guard'));
    b.message.beforeStore.tap({ stage: POLICY }, () => void order.push('b@policy'));
    c.message.beforeStore.tap('no stage', () => void order.push('c@default'));
    c.message.beforeStore.tap({ stage: POLICY }, () => void order.push('c@policy'));
    assert.equal(await runBefore(ctx(), hooks.message.beforeStore, [ctx(), request]), null);
    assert.deepEqual(order, ['b@guard', 'a@policy', 'b@policy', 'c@policy', 'c@default', 'a@observe']);
  });

  it('bail hook stops at the first verdict', async () => {
    const hooks = createHooks();
    const ran: string[] = [];
    createTapView(hooks, 'first').hooks.message.beforeStore.tap({ stage: POLICY }, () => {
      ran.push('first');
    });
    createTapView(hooks, 'quota').hooks.message.beforeStore.tapPromise({ stage: POLICY }, async () => {
      ran.push('quota');
      return deny('OVERQUOTA', 'Mailbox is full');
    });
    createTapView(hooks, 'late').hooks.message.beforeStore.tap({ stage: TRANSFORM }, () => {
      ran.push('late');
    });
    const verdict = await runBefore(ctx(), hooks.message.beforeStore, [ctx(), request]);
    assert.ok(isVerdict(verdict));
    assert.deepEqual(verdict, { action: 'deny', code: 'OVERQUOTA', message: 'Mailbox is full' });
    assert.deepEqual(ran, ['first', 'quota']);
  });

  it('waterfall passes the rewritten stream along', async () => {
    const hooks = createHooks();
    const tag = (label: string) => (source: AsyncIterable<Uint8Array>) =>
      (async function* () {
        yield new TextEncoder().encode(`X-${label}: yes\r\n`);
        yield* source;
      })();
    createTapView(hooks, 'one').hooks.message.prepare.tap({ stage: TRANSFORM }, tag('One'));
    createTapView(hooks, 'two').hooks.message.prepare.tap({ stage: DEFAULT }, tag('Two'));
    const result = await runHook<AsyncIterable<Uint8Array>>(ctx(), hooks.message.prepare, [chunks('Subject: hi\r\n\r\nbody'), ctx(), request]);
    assert.ok(result.ok);
    // DEFAULT runs before TRANSFORM, so One wraps Two's output
    assert.equal(decode(await readAll(result.value)), 'X-One: yes\r\nX-Two: yes\r\nSubject: hi\r\n\r\nbody');
  });

  it('series hook runs every tap', async () => {
    const hooks = createHooks();
    const ran: string[] = [];
    for (const name of ['x', 'y', 'z']) createTapView(hooks, name).hooks.session.connect.tap({}, () => void ran.push(name));
    await runHook(ctx(), hooks.session.connect, [ctx()]);
    assert.deepEqual(ran, ['x', 'y', 'z']);
  });

  it('capabilities waterfall lets plugins add their own', async () => {
    const hooks = createHooks();
    createTapView(hooks, 'xlist').hooks.capabilities.for('IMAP').tap({}, (caps) => [...caps, 'XLIST']);
    const result = await runHook<string[]>(ctx(), hooks.capabilities.for('imap'), [['IMAP4rev1'], ctx()]);
    assert.deepEqual(result, { ok: true, value: ['IMAP4rev1', 'XLIST'] });
  });
});
