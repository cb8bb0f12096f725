/**
 * The delivery-rule commands of the `wildduck` CLI (protocols/cli/delivery.ts), run as a child process like an
 * admin would: filters, autoreply, forwarding and the spam level; what they store is read back through the ports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv } from '../hooks/runtime.ts';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { getAutoreply, getDeliverySettings, listFilters } from '../storage/delivery-settings.ts';
import { parseSize } from '../protocols/cli/delivery.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);

describe('wildduck CLI: delivery rules', () => {
  let dir: string;
  let env: Record<string, string | undefined>;
  const cli = (args: string[]) => runTs(CLI, args, { cwd: dir, env });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wd-cli-delivery-'));
    env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'data'), WILDDUCK_LOG_FORMAT: 'json' };
    const r = await cli(['user', 'add', 'ann', '--password', 'pw', '--address', 'ann@example.com']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses sizes', () => {
    assert.equal(parseSize('2000', '--larger'), 2000);
    assert.equal(parseSize('500k', '--larger'), 512_000);
    assert.equal(parseSize('10M', '--larger'), 10 * 1024 * 1024);
    assert.throws(() => parseSize('ten', '--larger'), /--larger must be a size/);
  });

  it('adds, lists and deletes filters; refuses bad ones', { timeout: 90_000 }, async () => {
    let r = await cli(['filter', 'add', 'ann', '--name', 'boss', '--from', 'boss@work.example', '--subject', 'urgent', '--flag', '--mailbox', 'Junk', '--forward', 'me@remote.example']);
    assert.equal(r.code, 0, r.stderr);
    const id = /added filter (\S+) for ann/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    r = await cli(['filter', 'add', 'ann@example.com', '--list-id', 'dev.lists.example', '--has-attachment', '--larger', '1M', '--text', 'quarterly results', '--seen', '--not-spam']);
    assert.equal(r.code, 0, r.stderr);

    r = await cli(['filter', 'list', 'ann']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[0], `${id}\tboss\tfrom="boss@work.example" subject="urgent"\tflag mailbox="Junk" forward=me@remote.example`);
    assert.match(lines[1]!, /\t-\tlistId="dev\.lists\.example" text="quarterly results" has-attachment larger=1048576\tseen not-spam$/);

    r = await cli(['filter', 'add', 'ann', '--seen']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /at least one condition/);
    r = await cli(['filter', 'add', 'ann', '--from', 'x', '--mailbox', 'No Such']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no mailbox "No Such"/);
    r = await cli(['filter', 'add', 'ann', '--from', 'x', '--forward', 'not-an-address']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /e-mail address/);
    r = await cli(['filter', 'add', 'nobody', '--from', 'x', '--seen']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such user/);
    r = await cli(['filter', 'frob', 'ann']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /Usage:[\s\S]*wildduck filter add USER/);

    r = await cli(['filter', 'del', 'ann', id!]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['filter', 'del', 'ann', id!]);
    assert.equal(r.code, 1);

    const storage = await openSqliteStorage({ dataDir: join(dir, 'data') });
    try {
      const user = (await storage.users.getByUsername('ann'))!;
      const filters = await listFilters(storage.documents, user.id);
      assert.equal(filters.length, 1);
      assert.deepEqual(filters[0]!.data.query, { listId: 'dev.lists.example', text: 'quarterly results', ha: true, size: 1048576 });
      assert.deepEqual(filters[0]!.data.action, { seen: true, spam: false });
    } finally {
      await storage.close();
    }
  });

  it('sets, shows and turns off the autoreply; sets forwarding and the spam level', { timeout: 90_000 }, async () => {
    let r = await cli(['autoreply', 'set', 'ann', '--subject', 'Away', '--text', 'Back on Monday.', '--start', '2030-01-01', '--end', '2030-01-31T18:00:00Z']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /autoreply on for ann \(2030-01-01T00:00:00\.000Z – 2030-01-31T18:00:00\.000Z\)/);
    r = await cli(['autoreply', 'set', 'ann', '--text', 'x', '--start', 'soon']);
    assert.equal(r.code, 64);
    r = await cli(['autoreply', 'set', 'ann', '--text', 'x', '--start', '2030-02-01', '--end', '2030-01-01']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /start must not be after end/);
    r = await cli(['autoreply', 'off', 'ann']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['autoreply', 'show', 'ann']);
    assert.match(r.stdout, /^status: off\n.*\nsubject: Away\ntext: Back on Monday\.$/ms);

    r = await cli(['forward', 'set', 'ann', 'Me@Remote.example', 'other@remote.example']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ann forwards to me@remote\.example, other@remote\.example/);
    r = await cli(['spam-level', 'ann', '75']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['spam-level', 'ann', '101']);
    assert.equal(r.code, 64);

    const storage = await openSqliteStorage({ dataDir: join(dir, 'data') });
    try {
      const user = (await storage.users.getByUsername('ann'))!;
      assert.deepEqual(await getDeliverySettings(storage.documents, user.id), { forward: ['me@remote.example', 'other@remote.example'], spamLevel: 75 });
      assert.equal((await getAutoreply(storage.documents, user.id))?.status, false);
    } finally {
      await storage.close();
    }
    r = await cli(['forward', 'off', 'ann']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /forwarding off for ann/);
  });
});
