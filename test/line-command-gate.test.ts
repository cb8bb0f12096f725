/**
 * The `pop3.command` and `lmtp.command` gates of the shared line-protocol session: a plugin can refuse a
 * command (rendered as the protocol's verdict reply), answer it itself, or let the built-in handler run.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { servePop3 } from '../protocols/pop3.ts';
import { serveLmtp } from '../protocols/lmtp.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { deny } from '../hooks/verdict.ts';
import type { App } from '../protocols/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './helpers/memory-connection.ts';

const gatekeeper: Plugin = {
  name: 'gatekeeper',
  apply(api) {
    api.hooks.pop3.command.for('CAPA').tapPromise({}, async () => deny('CANNOT', 'CAPA is switched off here'));
    api.hooks.pop3.command.for('XHELLO').tapPromise({}, async () => ({ reply: '+OK hello from a plugin' }));
    api.hooks.lmtp.command.for('NOOP').tapPromise({}, async () => deny('CANNOT', 'not today'));
    api.hooks.lmtp.command.for('VRFY').tapPromise({}, async () => ({}));
    api.hooks.lmtp.command.for('XSTATS').tapPromise({}, async () => ({ reply: '250 2.0.0 all good' }));
  },
};

describe('POP3 and LMTP command gates', () => {
  let app: App;
  let dataDir: string;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-gate-'));
    app = await bootTestApp(resolveConfig({ dataDir, plugins: [gatekeeper] }), createLogger({ level: 'silent' }));
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('POP3: a plugin refuses CAPA and implements a new verb; other commands run built-in', async () => {
    const { client, server } = memoryPair();
    const done = servePop3(app, memoryConnection(server));
    const c = new TranscriptClient(client);
    assert.match((await c.line())!, /^\+OK/);
    c.cmd('CAPA');
    assert.match((await c.line())!, /^-ERR .*CAPA is switched off here/);
    c.cmd('XHELLO');
    assert.equal(await c.line(), '+OK hello from a plugin');
    c.cmd('XOTHER');
    assert.equal(await c.line(), '-ERR Unknown command', 'verbs no plugin implements are still unknown');
    c.cmd('USER nobody');
    assert.match((await c.line())!, /^\+OK/);
    c.cmd('QUIT');
    await done;
  });

  it('LMTP: a plugin refuses NOOP and answers VRFY with the default OK', async () => {
    const { client, server } = memoryPair();
    const done = serveLmtp(app, memoryConnection(server), { hostname: 'mx.test' });
    const c = new TranscriptClient(client);
    assert.equal(await c.line(), '220 mx.test LMTP ready');
    c.cmd('NOOP');
    assert.match((await c.line())!, /^5\d\d 5\.\d\.\d+ not today/);
    c.cmd('VRFY someone');
    assert.equal(await c.line(), '250 2.0.0 OK');
    c.cmd('XSTATS');
    assert.equal(await c.line(), '250 2.0.0 all good');
    c.cmd('XUNKNOWN');
    assert.match((await c.line())!, /^500 5\.5\.2/);
    c.cmd('QUIT');
    assert.match((await c.line())!, /^221/);
    await done;
  });
});
