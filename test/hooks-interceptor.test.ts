import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHooks } from '../hooks/tree.ts';
import { createTapView } from '../hooks/view.ts';
import { createLogger } from '../hooks/log.ts';
import type { LogFields } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { VerdictError, deny } from '../hooks/verdict.ts';
import type { Verdict } from '../hooks/verdict.ts';
import { runAfter, runBefore, runCommit, runHook } from '../hooks/pipeline/run.ts';
import type { StoreRequest } from '../hooks/types.ts';
import { COMMIT, DEFAULT } from '../hooks/stages.ts';

function setup(options: { timeoutMs?: number; trace?: boolean } = {}) {
  const logs: LogFields[] = [];
  const log = createLogger({ level: 'debug', format: 'json', sink: (_l, e) => logs.push(e) });
  const hooks = createHooks({ timeoutMs: options.timeoutMs ?? 1000, trace: options.trace ?? false, log });
  const ctx = internalContext(log);
  return { hooks, logs, ctx };
}
const request: StoreRequest = { userId: 'u1', mailboxId: 'm1', flags: [], internalDate: 0 };

describe('tap interceptor', () => {
  it('a hanging tap becomes tempfail TIMEOUT, logged with hook and plugin; its late result is ignored', async () => {
    const { hooks, logs, ctx } = setup({ timeoutMs: 30 });
    let release!: (v: Verdict) => void;
    createTapView(hooks, 'slowpoke').hooks.message.beforeStore.tapPromise({}, () => new Promise<Verdict>((resolve) => (release = resolve)));
    const started = Date.now();
    const verdict = await runBefore(ctx, hooks.message.beforeStore, [ctx, request]);
    assert.ok(Date.now() - started < 1000);
    assert.equal(verdict?.action, 'tempfail');
    assert.equal(verdict?.code, 'TIMEOUT');
    const entry = logs.find((e) => e.level === 'error');
    assert.equal(entry?.hook, 'message.beforeStore');
    assert.equal(entry?.plugin, 'slowpoke');
    release(deny('OVERQUOTA'));
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(logs.some((e) => e.level === 'warn' && e.plugin === 'slowpoke' && /late/.test(String(e.msg))));
  });

  it('a COMMIT-stage tap is never cut off by the tap timeout (a started write must finish)', async () => {
    const { hooks, ctx } = setup({ timeoutMs: 20 });
    const stored = { id: '1', uid: 7, modseq: 2, uidValidity: 1, threadId: 't' };
    createTapView(hooks, 'committer').hooks.message.store.tapPromise({ stage: COMMIT }, () => new Promise((r) => setTimeout(() => r(stored), 80)));
    const result = await runCommit(ctx, hooks.message.store, [ctx, {}]);
    assert.deepEqual(result, { ok: true, value: stored });
    // the same delay at an earlier stage is a timeout
    const other = setup({ timeoutMs: 20 });
    createTapView(other.hooks, 'slow').hooks.message.store.tapPromise({ stage: DEFAULT }, () => new Promise((r) => setTimeout(() => r(stored), 80)));
    const timedOut = await runCommit(other.ctx, other.hooks.message.store, [other.ctx, {}]);
    assert.equal(timedOut.ok ? null : timedOut.verdict.code, 'TIMEOUT');
  });

  it('a late async tap that never calls back also times out', async () => {
    const { hooks, ctx } = setup({ timeoutMs: 20 });
    createTapView(hooks, 'cb').hooks.mailbox.beforeCreate.tapAsync({}, () => {});
    const verdict = await runBefore(ctx, hooks.mailbox.beforeCreate, [ctx, { userId: 'u', path: 'x' }]);
    assert.equal(verdict?.code, 'TIMEOUT');
  });

  it('a thrown error becomes tempfail SERVERBUG with labels logged, and the next operation works', async () => {
    const { hooks, logs, ctx } = setup();
    let calls = 0;
    createTapView(hooks, 'flaky').hooks.message.store.tap({}, () => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return { id: '1', uid: 1, modseq: 1, uidValidity: 1, threadId: 't' };
    });
    const first = await runCommit(ctx, hooks.message.store, [ctx, {}]);
    assert.deepEqual(first.ok ? null : [first.verdict.action, first.verdict.code], ['tempfail', 'SERVERBUG']);
    assert.ok(first.ok || !/boom/.test(first.verdict.message), 'internal error text never reaches the client');
    const entry = logs.find((e) => e.level === 'error')!;
    assert.equal(entry.hook, 'message.store');
    assert.equal(entry.plugin, 'flaky');
    assert.equal((entry.err as { message: string }).message, 'boom');
    const second = await runCommit(ctx, hooks.message.store, [ctx, {}]);
    assert.deepEqual(second, { ok: true, value: { id: '1', uid: 1, modseq: 1, uidValidity: 1, threadId: 't' } });
  });

  it('an error with code UNAVAILABLE becomes tempfail UNAVAILABLE', async () => {
    const { hooks, ctx } = setup();
    createTapView(hooks, 'db').hooks.message.beforeCopy.tapPromise({}, async () => {
      throw Object.assign(new Error('connection refused'), { code: 'UNAVAILABLE' });
    });
    const verdict = await runBefore(ctx, hooks.message.beforeCopy, [ctx, {}]);
    assert.deepEqual([verdict?.action, verdict?.code], ['tempfail', 'UNAVAILABLE']);
  });

  it('a VerdictError thrown from a waterfall tap refuses with that verdict', async () => {
    const { hooks, ctx, logs } = setup();
    createTapView(hooks, 'virus').hooks.message.prepare.tap({}, () => {
      throw new VerdictError(deny('CANNOT', 'Message contains a virus'));
    });
    const result = await runHook(ctx, hooks.message.prepare, [(async function* () {})(), ctx, request]);
    assert.deepEqual(result, { ok: false, verdict: { action: 'deny', code: 'CANNOT', message: 'Message contains a virus' } });
    assert.ok(!logs.some((e) => e.level === 'error'));
  });

  it('after* hooks: errors and timeouts are logged and swallowed, every other tap still runs', async () => {
    const { hooks, logs, ctx } = setup({ timeoutMs: 20 });
    const ran: string[] = [];
    createTapView(hooks, 'broken').hooks.message.afterStore.tap({}, () => {
      ran.push('broken');
      throw new Error('notify failed');
    });
    createTapView(hooks, 'stuck').hooks.message.afterStore.tapPromise({}, () => {
      ran.push('stuck');
      return new Promise(() => {});
    });
    createTapView(hooks, 'fine').hooks.message.afterStore.tap({}, () => void ran.push('fine'));
    await runAfter(ctx, hooks.message.afterStore, [ctx, {}, {}]);
    assert.deepEqual(ran, ['broken', 'stuck', 'fine']);
    const errors = logs.filter((e) => e.level === 'error');
    assert.deepEqual(
      errors.map((e) => [e.hook, e.plugin]),
      [
        ['message.afterStore', 'broken'],
        ['message.afterStore', 'stuck'],
      ],
    );
  });

  it('session hooks: a failing connect tap does not stop the others', async () => {
    const { hooks, ctx } = setup();
    const ran: string[] = [];
    createTapView(hooks, 'a').hooks.session.connect.tap({}, () => {
      throw new Error('x');
    });
    createTapView(hooks, 'b').hooks.session.connect.tap({}, () => void ran.push('b'));
    const result = await runHook(ctx, hooks.session.connect, [ctx]);
    assert.equal(result.ok, true);
    assert.deepEqual(ran, ['b']);
  });

  it('tracing logs every tap call with its duration at debug', async () => {
    const { hooks, logs, ctx } = setup({ trace: true });
    createTapView(hooks, 'p1').hooks.mailbox.beforeCreate.tap({}, () => undefined);
    createTapView(hooks, 'p2').hooks.mailbox.beforeCreate.tap({}, () => deny('CANNOT'));
    await runBefore(ctx, hooks.mailbox.beforeCreate, [ctx, { userId: 'u', path: 'x' }]);
    const traces = logs.filter((e) => e.level === 'debug' && e.msg === 'hook tap');
    assert.deepEqual(
      traces.map((e) => [e.hook, e.plugin, e.outcome]),
      [
        ['mailbox.beforeCreate', 'p1', 'continue'],
        ['mailbox.beforeCreate', 'p2', 'result'],
      ],
    );
    assert.ok(traces.every((e) => typeof e.ms === 'number'));
    assert.ok(traces.every((e) => e.session !== undefined), 'logged through the context logger');
  });

  it('no trace lines without config.hooks.trace', async () => {
    const { hooks, logs, ctx } = setup();
    createTapView(hooks, 'p1').hooks.mailbox.beforeCreate.tap({}, () => undefined);
    await runBefore(ctx, hooks.mailbox.beforeCreate, [ctx, { userId: 'u', path: 'x' }]);
    assert.equal(logs.length, 0);
  });
});
