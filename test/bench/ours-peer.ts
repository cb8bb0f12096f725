/**
 * This server as a bench peer: `protocols/cli/main.ts start` in a child process (the same runtime as the bench) on a
 * given data directory, its log in a file next to it, ports read from its "wildduck ready" line. Connection limits
 * (and the failed-login budgets, which logins in progress count against) are raised through WILDDUCK_* variables so
 * 10,000 IDLE sessions of one user from 127.0.0.1 are accepted.
 * With WD_BENCH_PROF=DIR the server runs under `node --cpu-prof` (the primary and every worker, which inherit its
 * flags) and leaves one .cpuprofile per process in DIR when it stops (read them with cpu-profile.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execPath } from 'node:process';
import { fileURLToPath } from 'node:url';
import { applyEnv, resolveConfig } from '../../hooks/config.ts';
import { openStorage } from '../../storage/open.ts';
import { createUser } from '../../storage/users.ts';
import { env as runtimeEnv } from '../../hooks/runtime.ts';
import { dirSize } from '../helpers/dir-size.ts';
import { DOMAIN, PASSWORD, waitFor, type Peer } from './peer.ts';

const CLI = fileURLToPath(new URL('../../protocols/cli/main.ts', import.meta.url));

/**
 * Creates the users that do not exist yet in `dataDir` (in-process, through the same code as `user add`), on the
 * storage `backendEnv` configures (WILDDUCK_STORAGE_* variables, as the server gets them; none: the embedded one).
 */
export async function ensureUsers(dataDir: string, users: string[], backendEnv: Record<string, string> = {}): Promise<void> {
  const config = resolveConfig(applyEnv({ dataDir }, backendEnv));
  const storage = await openStorage(config);
  try {
    // at once: the password hashes run on the thread pool
    await Promise.all(
      users.map(async (username) => {
        if (await storage.users.getByUsername(username)) return;
        await createUser(storage, config, { username, password: PASSWORD, addresses: [`${username}@${DOMAIN}`] });
      }),
    );
  } finally {
    await storage.close();
  }
}

/** The environment that configures the bench instance (ports chosen by the OS, limits raised, POP3 off). */
export function benchEnv(dataDir: string): Record<string, string> {
  return {
    WILDDUCK_DATA_DIR: dataDir,
    WILDDUCK_LOG_FORMAT: 'json',
    WILDDUCK_LOG_LEVEL: 'info',
    WILDDUCK_API_ENABLED: 'false',
    WILDDUCK_POP3_ENABLED: 'false',
    WILDDUCK_IMAP_HOST: '127.0.0.1',
    WILDDUCK_IMAP_PORT: '0',
    WILDDUCK_IMAP_TLS_PORT: '0',
    WILDDUCK_LMTP_PORT: '0',
    WILDDUCK_IMAP_MAX_CONNECTIONS: '20000',
    WILDDUCK_IMAP_MAX_CONNECTIONS_PER_IP: '20000',
    WILDDUCK_IMAP_MAX_CONNECTIONS_PER_USER: '20000',
    WILDDUCK_LMTP_MAX_CONNECTIONS_PER_IP: '1000',
    // logins in progress count against the failed-login budgets: 200 of one user from one address at once (the idle
    // crowd) would wait for each other and some be told to try again later on a loaded machine
    WILDDUCK_AUTH_FAILED_LOGINS_PER_USER: '1000',
    WILDDUCK_AUTH_FAILED_LOGINS_PER_IP: '1000',
  };
}

/** `backendEnv`: WILDDUCK_STORAGE_* variables choosing another storage backend (mongo-peer.ts), for users and server. */
export async function startOurs(dataDir: string, logFile: string, users: string[], backendEnv: Record<string, string> = {}): Promise<Peer> {
  await ensureUsers(dataDir, users, backendEnv);
  const out = openSync(logFile, 'a');
  const start = existsSync(logFile) ? readFileSync(logFile).length : 0;
  // the bench runs under tsx on Node; the server gets the same runtime and loader
  const child = spawn(execPath, [...profileFlags(), '--import', import.meta.resolve('tsx'), CLI, 'start'], {
    cwd: dataDir, // away from the repository's wildduck.config.ts: defaults + the variables below
    env: { ...runtimeEnv(), ...benchEnv(dataDir), ...backendEnv },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  let listeners: string[] = [];
  await waitFor(
    `our server's ready line in ${logFile}`,
    () => {
      if (exited !== null) throw new Error(`our server exited (${exited}) before it was ready; see ${logFile}`);
      const text = readFileSync(logFile, 'utf8').slice(start);
      for (const line of text.split('\n')) {
        if (!line.includes('"wildduck ready"')) continue;
        listeners = (JSON.parse(line) as { listeners: string[] }).listeners;
        return true;
      }
      return false;
    },
    120_000,
  );
  const port = (scheme: string) => Number(/:(\d+)$/.exec(listeners.find((l) => l.startsWith(`${scheme}://`)) ?? '')?.[1]);
  return {
    name: 'ours',
    imapPort: port('imap'),
    lmtpPort: port('lmtp'),
    pid: child.pid!,
    storedBytes: () => dirSize(dataDir) - tlsBytes(dataDir),
    stop: async () => {
      if (exited !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/**
 * WD_BENCH_PROF=DIR: our server (and its workers, which inherit the flags) write V8 CPU profiles into DIR when they
 * exit; summarise them with `tsx test/bench/cpu-profile.ts DIR/*.cpuprofile`.
 */
function profileFlags(): string[] {
  const dir = runtimeEnv().WD_BENCH_PROF;
  // WD_BENCH_NODE_FLAGS: more flags for the server's node, space-separated (e.g. --trace-gc, which its log then shows)
  const more = (runtimeEnv().WD_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return [...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []), ...more];
}

/**
 * With WD_BENCH_PROF=DIR each workload's span on our server goes to DIR/windows.json in the monotonic microseconds
 * V8 CPU profiles use, so test/bench/cpu-profile.ts --window NAME can keep just it. `from`, `to`: hrtime.bigint().
 */
const windows: Array<{ name: string; from: number; to: number }> = [];
export function profileWindow(name: string, from: bigint, to: bigint): void {
  const dir = runtimeEnv().WD_BENCH_PROF;
  if (!dir) return;
  windows.push({ name, from: Number(from / 1000n), to: Number(to / 1000n) });
  writeFileSync(join(dir, 'windows.json'), JSON.stringify(windows, null, 1));
}

/** The generated certificate is not mail: leave it out of stored bytes. */
function tlsBytes(dataDir: string): number {
  const dir = join(dataDir, 'tls');
  return existsSync(dir) ? dirSize(dir) : 0;
}
