/**
 * A real redis-server for tests: started on a free loopback port with a temporary directory and no persistence
 * (`--save '' --appendonly no`), stopped (and restartable on the same port, for fault tests) by the test.
 * `startRedis()` answers null when redis-server is not installed, so a suite can skip its Redis cases and say why
 * (REDIS_MISSING). Install it with `apt-get install -y redis-server` (.ci/run does).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kill } from 'node:process';
import { freePort } from './free-port.ts';

export const REDIS_MISSING = 'redis-server is not installed (apt-get install -y redis-server): Redis cases skipped';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM, waits for the exit). */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Lets a paused process run again (SIGCONT). */
  resume(): void;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

let installed: boolean | undefined;

export function redisInstalled(): boolean {
  if (installed === undefined) {
    const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
    installed = !r.error && r.status === 0;
  }
  return installed;
}


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<RedisServer | null> {
  if (!redisInstalled()) return null;
  const dir = mkdtempSync(join(tmpdir(), 'wd-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    if (child) return;
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child = proc;
    exited = new Promise<void>((done) => proc.once('exit', () => done()));
    let gone = false;
    void exited.then(() => (gone = true));
    for (let i = 0; i < 500; i++) {
      if (gone) throw new Error(`redis-server exited at start: ${stderr}`);
      if (await accepts(port)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('redis-server did not accept connections within 5 s');
  };

  // process.kill, not ChildProcess.kill: Deno's ChildProcess sends no second signal once it has sent one
  const signal = (name: 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): void => {
    if (child?.pid) kill(child.pid, name);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    signal('SIGCONT'); // a paused server would not act on SIGTERM
    signal('SIGTERM');
    child = null;
    await exited;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    stop,
    start,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A started redis-server process of a topology (a Sentinel), stopped by the function it returns. */
async function spawnRedis(args: string[], port: number): Promise<() => Promise<void>> {
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((done) => proc.once('exit', () => done()));
  let gone = false;
  void exited.then(() => (gone = true));
  const close = async () => {
    if (!gone && proc.pid) kill(proc.pid, 'SIGTERM');
    await exited;
  };
  for (let i = 0; i < 500; i++) {
    if (gone) throw new Error(`redis-server ${args.join(' ')} exited at start: ${stderr}`);
    if (await accepts(port)) return close;
    await new Promise((r) => setTimeout(r, 10));
  }
  await close();
  throw new Error(`redis-server ${args.join(' ')} did not accept connections within 5 s`);
}

export interface RedisTopology {
  /** The nodes to give RedisEphemeral (`sentinels`). */
  readonly nodes: Array<{ host: string; port: number }>;
  close(): Promise<void>;
}

/**
 * One Redis Sentinel watching `master` as the group `name` (quorum 1), or null without redis-server. The sentinel
 * answers SENTINEL get-master-addr-by-name at once: no failover is needed for a client to find the master through it.
 */
export async function startRedisSentinel(master: RedisServer, name: string): Promise<RedisTopology | null> {
  if (!redisInstalled()) return null;
  const dir = mkdtempSync(join(tmpdir(), 'wd-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf'); // a sentinel rewrites its config file: one of its own
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${master.port} 1\n`);
  const stop = await spawnRedis([conf, '--sentinel'], port);
  return {
    nodes: [{ host: '127.0.0.1', port }],
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

