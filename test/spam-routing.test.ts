/**
 * The spam-routing plugin: header values understood, and LMTP delivery into Junk on the real stack; loaded by
 * default, switched off with ['spam-routing', false].
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { serveLmtp } from '../protocols/lmtp.ts';
import { resolveConfig } from '../hooks/config.ts';
import type { ConfigInput } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { createUser } from '../storage/users.ts';
import { isSpamValue } from '../plugins/spam-routing.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';

describe('spam routing', () => {
  it('understands SpamAssassin and rspamd values and an optional score threshold', () => {
    assert.equal(isSpamValue('Yes, score=7.3 required=5.0', null), true);
    assert.equal(isSpamValue('No, score=1.2 required=5.0', null), false);
    assert.equal(isSpamValue('add header', null), true);
    assert.equal(isSpamValue('no action', null), false);
    assert.equal(isSpamValue('No, score=4.5 required=5.0', 4), true);
    assert.equal(isSpamValue('No, score=3.9', 4), false);
  });

  /** Delivers "add header" and "no action" over LMTP; returns the subject found in Junk and in INBOX. */
  async function deliverBoth(input: ConfigInput): Promise<{ junk: string | null; inbox: string[] }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-spam-'));
    const config = resolveConfig({ dataDir, delivery: { spamHeader: 'X-Rspamd-Action' }, ...input });
    const app = await bootTestApp(config, createLogger({ level: 'silent' }));
    try {
      const { user } = await createUser(app.storage, config, { username: 'sam', password: null, addresses: ['sam@example.com'] });
      const { client, server } = memoryPair();
      const done = serveLmtp(app, memoryConnection(server), { hostname: 'mx.test' });
      const c = new TranscriptClient(client);
      await c.line();
      for (const action of ['add header', 'no action']) {
        c.send(`LHLO c\r\nMAIL FROM:<s@r.example>\r\nRCPT TO:<sam@example.com>\r\nDATA\r\n`);
        await c.lines(6 + 3);
        c.send(`X-Rspamd-Action: ${action}\r\nSubject: ${action}\r\n\r\nbody\r\n.\r\n`);
        assert.match((await c.line())!, /^250 /);
      }
      c.cmd('QUIT');
      await c.line();
      await done;
      const junk = (await app.storage.mailboxes.getBySpecialUse(user.id, '\\Junk'))!;
      const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
      const subjects = async (id: string) => Promise.all((await app.storage.messages.index(id)).map(async (e) => (await app.storage.messages.get(id, e.uid))!.subject));
      return { junk: (await subjects(junk.id))[0] ?? null, inbox: (await subjects(inbox.id)).sort() };
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('is loaded by default: spam over LMTP into Junk, everything else into INBOX', async () => {
    assert.deepEqual(await deliverBoth({}), { junk: 'add header', inbox: ['no action'] });
  });

  it("['spam-routing', false] switches it off: the MTA's verdict is ignored", async () => {
    assert.deepEqual(await deliverBoth({ plugins: [['spam-routing', false]] }), { junk: null, inbox: ['add header', 'no action'] });
  });

  it('named with options, it replaces the default instance', async () => {
    const t = await deliverBoth({ plugins: [['spam-routing', { minScore: 5 }]] });
    assert.deepEqual(t, { junk: 'add header', inbox: ['no action'] });
  });
});
