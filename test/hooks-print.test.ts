import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { printHooks } from '../hooks/print-hooks.ts';
import { catalogue } from '../hooks/tree.ts';
import type { Plugin } from '../hooks/host.ts';
import { GUARD, POLICY } from '../hooks/stages.ts';
import { makeApp } from './helpers/hooks-app.ts';

describe('print-hooks', () => {
  it('lists every hook with its taps in run order, stage names and kinds', async () => {
    const quota: Plugin = {
      name: 'quota',
      apply(api) {
        api.hooks.message.beforeStore.tapPromise({ stage: POLICY }, async () => undefined);
        api.hooks.message.afterExpunge.tap('usage', () => {});
      },
    };
    const gate: Plugin = {
      name: 'gate',
      apply(api) {
        api.hooks.message.beforeStore.tap({ stage: GUARD + 1 }, () => undefined);
        api.hooks.imap.command.for('append').tap({}, () => undefined);
        api.hooks.imap.command.for('XHELLO').tapAsync({}, (_c, _i, cb) => cb());
      },
    };
    const t = await makeApp({ config: { plugins: [quota, gate] } });
    const text = printHooks(t.app);
    assert.ok(text.endsWith('\n'));
    const lines = text.split('\n');

    // every fixed hook is listed
    for (const entry of catalogue(t.app.hooks)) {
      const name = entry.type === 'map' ? `${entry.name}.for(key)` : entry.name;
      assert.ok(lines.some((l) => l.startsWith(name + ' ')), `${name} missing`);
    }

    const block = (header: string) => {
      const start = lines.findIndex((l) => l.trimStart().startsWith(header + ' '));
      assert.ok(start >= 0, `${header} not listed`);
      const out: string[] = [];
      for (const l of lines.slice(start + 1)) {
        if (!/^\s{4}/.test(l)) break;
        out.push(l.trim().replace(/\s+/g, ' '));
      }
      return { header: lines[start]!.trim().replace(/\s+/g, ' '), taps: out };
    };

    assert.deepEqual(block('message.beforeStore'), {
      header: 'message.beforeStore bail',
      taps: ['1. gate GUARD+1 (-299) sync', '2. quota POLICY (-200) promise'],
    });
    assert.deepEqual(block('message.store'), { header: 'message.store bail', taps: ['1. storage COMMIT (1000) promise'] });
    assert.deepEqual(block('message.afterExpunge'), { header: 'message.afterExpunge series', taps: ['1. quota (usage) DEFAULT (0) sync'] });
    assert.deepEqual(block('message.prepare'), { header: 'message.prepare waterfall', taps: ['(no taps)'] });
    assert.deepEqual(block('imap.command[APPEND]').taps, ['1. gate DEFAULT (0) sync']);
    assert.deepEqual(block('imap.command[XHELLO]').taps, ['1. gate DEFAULT (0) async']);
    assert.ok(lines.some((l) => /^pop3\.command\.for\(key\)\s+bail map, no taps$/.test(l)));
    // storage commits everything
    for (const hook of ['auth.authenticate', 'mailbox.create', 'mailbox.rename', 'mailbox.delete', 'mailbox.subscribe', 'message.copy', 'message.move', 'message.expunge', 'message.flags']) {
      assert.deepEqual(block(hook).taps, ['1. storage COMMIT (1000) promise'], hook);
    }
    // the account domain: a before/do/after triple per record kind, the do-hooks committed by storage
    for (const kind of ['User', 'Address', 'AppPassword', 'Token', 'Filter', 'Autoreply', 'Settings']) {
      const commit = `account.${kind[0]!.toLowerCase()}${kind.slice(1)}`;
      assert.deepEqual(block(`account.before${kind}`), { header: `account.before${kind} bail`, taps: ['(no taps)'] });
      assert.deepEqual(block(commit), { header: `${commit} bail`, taps: ['1. storage COMMIT (1000) promise'] });
      assert.deepEqual(block(`account.after${kind}`), { header: `account.after${kind} series`, taps: ['(no taps)'] });
    }
  });
});
