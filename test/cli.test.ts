/** The `wildduck` command line, run as a real child process like an admin would. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTs, spawnTs } from './helpers/spawn-ts.ts';
import { env as runtimeEnv, runtimeName } from '../hooks/runtime.ts';

const CLI = new URL('../protocols/cli/main.ts', import.meta.url);

describe('wildduck CLI', () => {
  let dir: string;
  let env: Record<string, string | undefined>;
  const cli = (args: string[], input?: string) => runTs(CLI, args, { cwd: dir, env, input });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wd-cli-'));
    env = { ...runtimeEnv(), WILDDUCK_DATA_DIR: join(dir, 'data'), WILDDUCK_LOG_FORMAT: 'json' };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('adds, lists, re-passwords and deletes users', { timeout: 60_000 }, async () => {
    let r = await cli(['user', 'add', 'Alice', '--password', 'pw1', '--address', 'Alice@Example.com', '--quota', '1048576']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created user alice .*alice@example\.com/);

    r = await cli(['user', 'add', 'bob', '--password', '-'], 'from stdin\n');
    assert.equal(r.code, 0, r.stderr);

    r = await cli(['user', 'add', 'alice', '--password', 'x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /alice/);

    r = await cli(['user', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^alice\t.*1048576 bytes.*alice@example\.com$/m);
    assert.match(r.stdout, /^bob\t/m);
    assert.ok(!r.stdout.includes('pw1') && !r.stdout.includes('scrypt'), 'no password material in listings');

    r = await cli(['user', 'passwd', 'bob', '--password', 'new']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['user', 'del', 'bob']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['user', 'list']);
    assert.doesNotMatch(r.stdout, /^bob\t/m);
    r = await cli(['user', 'del', 'bob']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such user/);
  });

  it('explains usage errors and bad configuration', { timeout: 60_000 }, async () => {
    let r = await cli([]);
    assert.equal(r.code, 64, 'no command is a usage error');
    assert.match(r.stderr, /no command given[\s\S]*Usage:/);
    assert.equal(r.stdout, '');
    for (const help of [['help'], ['--help'], ['-h']]) {
      r = await cli(help);
      assert.equal(r.code, 0, help.join(' '));
      assert.match(r.stdout, /^Usage:/, help.join(' '));
    }
    r = await cli(['user', 'add']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /Usage:/);
    r = await cli(['frobnicate']);
    assert.equal(r.code, 64);
    r = await runTs(CLI, ['user', 'list'], { cwd: dir, env: { ...env, WILDDUCK_IMAP_PORT: 'not-a-port' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /WILDDUCK_IMAP_PORT/);
  });

  it('prints the hook pipeline with the storage plugin at the commit stage', { timeout: 60_000 }, async () => {
    const r = await cli(['print-hooks']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /message\.store/);
    assert.match(r.stdout, /storage/);
  });

  it('starts, reports its listener, answers /health and stops on SIGTERM', { timeout: 60_000 }, async () => {
    // a data directory of its own, without users: the server says how to create the first one, in this runtime's words
    const child = spawnTs(CLI, ['start'], { cwd: dir, env: { ...env, WILDDUCK_DATA_DIR: join(dir, 'data-start'), WILDDUCK_API_PORT: '0', WILDDUCK_LMTP_PORT: '0', WILDDUCK_POP3_PORT: '0', WILDDUCK_POP3_TLS_PORT: '0', WILDDUCK_IMAP_PORT: '0', WILDDUCK_IMAP_TLS_PORT: '0' } });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // a failure below must not leave the server running (it would keep this test file from ending)
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await startedAndStopped();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    async function startedAndStopped(): Promise<void> {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listener line; stdout: ${out} stderr: ${err}`)), 30_000);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          for (const line of out.split('\n')) {
            if (!line.startsWith('{')) continue;
            const entry = JSON.parse(line) as { msg?: string; listeners?: string[] };
            if (entry.msg === 'wildduck ready' && entry.listeners?.[0]) {
              clearTimeout(timer);
              resolve(entry.listeners[0]);
            }
          }
        });
      });
      const res = await fetch(`${url}/health`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { success: boolean; version: string };
      assert.equal(body.success, true);
      assert.match(body.version, /^\d+\.\d+\.\d+/);
      const missing = await fetch(`${url}/nope`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { code: string }).code, 'NotFound');

      const hint = runtimeName === 'deno' ? 'deno run -A protocols/cli/main.ts user add NAME' : 'npm run wildduck -- user add NAME';
      const hinted = out.includes('no users yet')
        ? Promise.resolve()
        : new Promise<void>((resolve) => child.stdout!.on('data', () => out.includes('no users yet') && resolve()));
      await hinted; // logged right after 'wildduck ready'
      assert.ok(out.includes(`no users yet: create the first one with \`${hint}`), out);

      // user commands work while the server runs (same data directory, another process)
      const startEnv = { ...env, WILDDUCK_DATA_DIR: join(dir, 'data-start') };
      const added = await runTs(CLI, ['user', 'add', 'while-running', '--password', 'pw'], { cwd: dir, env: startEnv });
      assert.equal(added.code, 0, added.stderr);
      assert.match((await runTs(CLI, ['user', 'list'], { cwd: dir, env: startEnv })).stdout, /^while-running\t/m);

      child.kill('SIGTERM');
      const code = await exited;
      // Deno's node:child_process reports a child it signalled as killed even when the child exited cleanly,
      // so the clean shutdown is asserted from the child's own last log line.
      if (runtimeName === 'node') assert.equal(code, 0);
      assert.match(out, /"msg":"stopped"/);
      assert.match(out, /shutting down/);
      assert.match(out, /"msg":"listening"/, 'one line per listener when it is ready');
    }
  });
});
