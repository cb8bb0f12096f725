import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { definePlugin, PluginError } from '../hooks/host.ts';
import type { Plugin, PluginApi, PluginRegistry } from '../hooks/host.ts';
import { POLICY } from '../hooks/stages.ts';
import { makeApp } from './helpers/hooks-app.ts';
import { createFakeStorage } from './helpers/fake-hooks-storage.ts';

const quota = definePlugin({
  description: 'test quota',
  optionsSchema: z.object({ limit: z.number().int().positive(), mode: z.enum(['soft', 'hard']) }).strict(),
  defaults: { mode: 'hard' as const },
  create: (options) => ({ name: 'quota', options, apply() {} }) as Plugin & { options: unknown },
});
const noopts = definePlugin({ create: () => ({ name: 'noopts', apply() {} }) });
const needsQuota = definePlugin({ create: () => ({ name: 'junk', dependencies: ['quota', 'storage'], apply() {} }) });
const registry: PluginRegistry = { quota, noopts, junk: needsQuota };

async function bootError(config: Parameters<typeof makeApp>[0]): Promise<Error> {
  try {
    const t = await makeApp({ registry, ...config });
    await t.app.close();
  } catch (err) {
    return err as Error;
  }
  throw new Error('boot did not fail');
}

describe('plugin host', () => {
  it('validates options with zod over defaults and passes them to the factory', async () => {
    const t = await makeApp({ registry, config: { plugins: [['quota', { limit: 5 }]] } });
    const loaded = t.app.plugins.find((p) => p.name === 'quota')!;
    assert.deepEqual((loaded.plugin as Plugin & { options: unknown }).options, { limit: 5, mode: 'hard' });
    assert.deepEqual(
      t.app.plugins.map((p) => [p.name, p.index, p.origin]),
      [
        ['quota', 0, 'builtin'],
        ['submission', null, 'default'],
        ['spam-routing', null, 'default'],
        ['imap-sort', null, 'default'],
        ['imap-esort', null, 'default'],
        ['imap-thread', null, 'default'],
        ['login-limits', null, 'host'],
        ['filters', null, 'host'],
        ['forwarding', null, 'host'],
        ['autoreply', null, 'host'],
        ['storage', null, 'host'],
      ],
    );
  });

  it('bad options fail at boot with the path of the bad value', async () => {
    const err = await bootError({ config: { plugins: ['noopts', ['quota', { limit: 'ten' }]] } });
    assert.ok(err instanceof PluginError);
    assert.match(err.message, /^plugins\[1\] \(quota\)\.limit: .*expected number/);
    assert.equal(err.path, 'plugins[1] (quota).limit');
    assert.match((await bootError({ config: { plugins: ['quota'] } })).message, /^plugins\[0\] \(quota\)\.limit: /);
    assert.match((await bootError({ config: { plugins: [['quota', { limit: 1, extra: true }]] } })).message, /^plugins\[0\] \(quota\)/);
    assert.match((await bootError({ config: { plugins: [['noopts', { x: 1 }]] } })).message, /^plugins\[0\] \(noopts\): this plugin takes no options/);
  });

  it('unknown plugin names fail at boot, listing the built-ins', async () => {
    const err = await bootError({ config: { plugins: ['quota-typo'] } });
    assert.match(err.message, /^plugins\[0\]: unknown plugin "quota-typo"; built-in plugins: quota, noopts, junk/);
  });

  it('missing dependencies fail at boot', async () => {
    // quota is loaded by default; switched off, a plugin that needs it cannot boot
    const err = await bootError({ config: { plugins: ['junk', ['quota', false]] } });
    assert.match(err.message, /^plugins\[0\] \(junk\): depends on plugin "quota", which is not loaded/);
    const t = await makeApp({ registry, config: { plugins: ['junk', ['quota', { limit: 1 }]] } });
    assert.equal(t.app.plugins.length, 12, 'junk, quota, submission, spam-routing, imap-sort, imap-esort, imap-thread, login-limits, filters, forwarding, autoreply, storage');
  });

  it('duplicate names and the reserved storage name fail at boot', async () => {
    assert.match((await bootError({ config: { plugins: ['noopts', 'noopts'] } })).message, /plugins\[1\] \(noopts\): plugin "noopts" is already loaded by plugins\[0\]/);
    assert.match((await bootError({ config: { plugins: ['storage'] } })).message, /plugins\[0\]: "storage" is loaded by the server itself/);
    assert.match((await bootError({ config: { plugins: [{ name: 'storage', apply() {} }] } })).message, /reserved/);
  });

  it('tapping a hook that does not exist fails at boot with a clear message', async () => {
    const typo: Plugin = {
      name: 'typo',
      apply(api) {
        (api.hooks.message as unknown as Record<string, { tap: Function }>).beforeStor!.tap({}, () => {});
      },
    };
    const err = await bootError({ config: { plugins: [typo] } });
    assert.match(err.message, /^plugins\[0\] \(typo\): apply\(\) failed: plugin "typo" used unknown hook "message\.beforeStor"; known hooks: .*message\.beforeStore/);
    const ns: Plugin = {
      name: 'ns',
      apply(api) {
        (api.hooks as unknown as Record<string, unknown>).smtp!;
      },
    };
    assert.match((await bootError({ config: { plugins: [ns] } })).message, /unknown hook "smtp"/);
  });

  it('the tap-only view cannot call hooks, be modified, or be tapped after boot', async () => {
    let saved: PluginApi | null = null;
    const sneaky: Plugin = {
      name: 'sneaky',
      apply(api) {
        saved = api;
        const hook = api.hooks.message.store as unknown as Record<string, unknown>;
        assert.throws(() => hook.promise, /message\.store is tap-only here/);
        assert.throws(() => hook.call, /tap-only/);
        assert.throws(() => (api.hooks.imap.command as unknown as Record<string, unknown>).get, /hook map; use imap\.command\.for\(key\)/);
        assert.throws(() => (api.hooks.imap.command.for('FETCH') as unknown as Record<string, unknown>).callAsync, /tap-only/);
        assert.throws(() => {
          (api.hooks as unknown as Record<string, unknown>).message = {};
        }, /read-only/);
        // reads of the storage view have no write methods
        assert.equal((api.storage.messages as unknown as Record<string, unknown>).append, undefined);
        assert.equal((api.storage.users as unknown as Record<string, unknown>).delete, undefined);
        assert.equal(typeof api.storage.users.getByUsername, 'function');
        // awaiting or inspecting the view is harmless
        assert.equal((api.hooks as unknown as { then?: unknown }).then, undefined);
      },
    };
    const t = await makeApp({ registry, config: { plugins: [sneaky] } });
    assert.throws(() => saved!.hooks.message.afterStore.tap({}, () => {}), /tapped message\.afterStore after boot/);
    await t.app.close();
  });

  it('plugins get config, a child logger bound to their name and the storage reader', async () => {
    let api: PluginApi | null = null;
    const t = await makeApp({ config: { plugins: [{ name: 'spy', apply: (a: PluginApi) => void (api = a) }] } });
    api!.log.info('hello');
    assert.equal(t.logs.find((e) => e.msg === 'hello')?.plugin, 'spy');
    assert.equal(api!.config.hooks.timeoutMs, t.app.config.hooks.timeoutMs);
    assert.equal(api!.storage.name, 'fake');
  });

  it('close() runs in reverse order, survives a failing close, then closes storage, once', async () => {
    const order: string[] = [];
    const mk = (name: string, fail = false): Plugin => ({
      name,
      apply() {},
      close: async () => {
        order.push(name);
        if (fail) throw new Error('close failed');
      },
    });
    const storage = createFakeStorage();
    const t = await makeApp({ storage, config: { plugins: [mk('a'), mk('b', true), mk('c')] } });
    await t.app.close();
    await t.app.close();
    assert.deepEqual(order, ['c', 'b', 'a']);
    assert.equal(storage.closed, true);
    assert.ok(t.logs.some((e) => e.level === 'error' && e.plugin === 'b'));
  });

  it('a failing apply() closes the plugins already applied and fails the boot', async () => {
    const order: string[] = [];
    const ok: Plugin = { name: 'ok', apply() {}, close: () => void order.push('ok closed') };
    const bad: Plugin = {
      name: 'bad',
      apply() {
        throw new Error('cannot connect to spamd');
      },
    };
    const err = await bootError({ config: { plugins: [ok, bad] } });
    assert.match(err.message, /^plugins\[1\] \(bad\): apply\(\) failed: cannot connect to spamd/);
    assert.deepEqual(order, ['ok closed']);
  });

  it('async apply() is awaited, in config order', async () => {
    const order: string[] = [];
    const slow: Plugin = { name: 'slow', apply: () => new Promise<void>((r) => setTimeout(() => (order.push('slow'), r()), 10)) };
    const fast: Plugin = { name: 'fast', apply: () => void order.push('fast') };
    await makeApp({ config: { plugins: [slow, fast] } });
    assert.deepEqual(order, ['slow', 'fast']);
  });

  it('the storage plugin commits at stage COMMIT, after a POLICY tap', async () => {
    const p: Plugin = { name: 'policy', apply: (api) => api.hooks.message.store.tap({ stage: POLICY }, () => undefined) };
    const t = await makeApp({ config: { plugins: [p] } });
    assert.deepEqual(
      t.app.hooks.message.store.taps.map((tap) => [tap.name, tap.stage]),
      [
        ['policy', POLICY],
        ['quota', POLICY], // loaded by default, after the configured plugins
        ['storage', 1000],
      ],
    );
  });
});
