/**
 * A plugin written outside the repository (a temporary file importing only the public module hooks/index.ts),
 * loaded through a wildduck.config.ts, running on the real stack and listed by print-hooks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { printHooks } from '../hooks/print-hooks.ts';
import { bootTestApp } from './helpers/test-backend.ts';
import { createUser } from '../storage/users.ts';

const PUBLIC = new URL('../hooks/index.ts', import.meta.url).href;
const CONFIG = new URL('../hooks/config.ts', import.meta.url).href;

const PLUGIN = `
import { definePlugin, deny, POLICY } from ${JSON.stringify(PUBLIC)};
import type { Plugin, PluginApi, StoreRequest, HookContext } from ${JSON.stringify(PUBLIC)};

export const noMondays = definePlugin<{ subjectWord: string }>({
  create(options): Plugin {
    return {
      name: 'no-word',
      dependencies: ['quota'],
      apply(api: PluginApi) {
        api.hooks.message.prepare.tap({ stage: POLICY, label: 'peek' }, (source) => source);
        api.hooks.message.store.tapPromise({ stage: POLICY }, async (_ctx: HookContext, input) =>
          input.message.subject.includes(options.subjectWord) ? deny('CANNOT', 'Not that word') : undefined,
        );
        api.hooks.message.beforeStore.tap({ stage: POLICY }, (_ctx: HookContext, _request: StoreRequest) => undefined);
      },
    };
  },
});
`;

describe('a plugin from outside the repository', () => {
  it('loads through wildduck.config.ts, runs, and shows in print-hooks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-extplugin-'));
    try {
      writeFileSync(join(dir, 'no-word.ts'), PLUGIN);
      writeFileSync(
        join(dir, 'wildduck.config.ts'),
        `import { defineConfig } from ${JSON.stringify(CONFIG)};
import { noMondays } from './no-word.ts';
export default defineConfig({ dataDir: ${JSON.stringify(join(dir, 'data'))}, plugins: [noMondays.create({ subjectWord: 'Monday' })] });
`,
      );
      const { config } = await loadConfig(join(dir, 'wildduck.config.ts'), {});
      const app = await bootTestApp(config, createLogger({ level: 'silent', format: 'json' }));
      try {
        assert.deepEqual(app.plugins.map((p) => [p.name, p.origin]).slice(0, 2), [
          ['no-word', 'object'],
          ['quota', 'default'],
        ]);
        const { user } = await createUser(app.storage, config, { username: 'ext', password: null });
        const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
        const ctx = internalContext(app.log);
        const store = (subject: string) =>
          storeMessage(app, ctx, { userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source: new TextEncoder().encode(`Subject: ${subject}\r\n\r\nhi\r\n`) });
        const refused = await store('Monday meeting');
        assert.deepEqual(refused.ok ? null : [refused.verdict.code, refused.verdict.message], ['CANNOT', 'Not that word']);
        assert.ok((await store('Tuesday meeting')).ok);
        const listing = printHooks(app);
        assert.match(listing, /message\.store\s+bail\n\s+1\. no-word\s+POLICY \(-200\)\s+promise\n\s+2\. quota \(exact size\)\s+POLICY \(-200\)/);
        assert.match(listing, /message\.prepare\s+waterfall\n\s+1\. no-word \(peek\)/);
      } finally {
        await app.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
