/**
 * Soak test (`npm run soak`, not part of CI): runs the real server (`protocols/cli/main.ts start`, a child process on a
 * temp data directory, ports from its "wildduck ready" line) for N minutes under a mixed load, SIGKILLs and
 * restarts it at random, and checks that nothing acknowledged was lost.
 *
 *   npm run soak -- --minutes 2 [--kill-min 10] [--kill-max 30] [--users 6] [--idle 40] [--keep]
 *
 * Load, all at once: LMTP deliveries (each with a unique Message-ID; acknowledged = `250` after DATA, which names
 * the UID), IMAP sessions (imapflow: SELECT, FETCH, STORE), IDLE sessions waiting for EXISTS, HTTP API reads, a
 * crowd of idle logged-in IMAP connections (for memory per connection), and a probe LOGIN twice a second.
 *
 * Prints, and exits 1 on a lost acknowledged message or a reused UID:
 * - acknowledged vs stored messages (from the storage after a clean stop), stored but unacknowledged (cut by a
 *   kill after the commit, before the reply), lost (acknowledged, not stored), duplicates (one Message-ID stored
 *   twice: no retry is sent, so any is a bug);
 * - reused UIDs: two acknowledged deliveries given the same UID in one mailbox (same UIDVALIDITY);
 * - memory over time: server RSS, its open client sockets, RSS per connection;
 * - probe login latency p50/p99/max (a fresh connection and LOGIN of a user nobody else uses).
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ImapFlow } from 'imapflow';
import { spawnTs } from '../helpers/spawn-ts.ts';
import { lineClient } from '../helpers/line-client.ts';
import type { LineClient } from '../helpers/line-client.ts';
import { argv, env as runtimeEnv, exit, writeOut } from '../../hooks/runtime.ts';
import { resolveConfig } from '../../hooks/config.ts';
import { openStorage } from '../../storage/open.ts';
import { createUser } from '../../storage/users.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: {
    minutes: { type: 'string', default: '2' },
    'kill-min': { type: 'string', default: '10' },
    'kill-max': { type: 'string', default: '30' },
    users: { type: 'string', default: '6' },
    idle: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const MINUTES = Number(flags.minutes);
const KILL_MIN = Number(flags['kill-min']) * 1000;
const KILL_MAX = Number(flags['kill-max']) * 1000;
const USERS = Number(flags.users);
const IDLE_CROWD = Number(flags.idle);
const TOKEN = 'soak-root-token';
const CLI = new URL('../../protocols/cli/main.ts', import.meta.url);

const dir = mkdtempSync(join(tmpdir(), 'wd-soak-'));
const dataDir = join(dir, 'data');
const log = (text: string) => writeOut(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (min: number, max: number) => min + Math.random() * (max - min);
let t0 = performance.now();
let stopping = false;

// ---- the server, restarted on the same data directory ------------------------------------------------------

interface Ports {
  imap: number;
  lmtp: number;
  http: number;
  pid: number;
  listeners: number;
}
let server: { child: ChildProcess; ports: Ports } | null = null;
let generation = 0;
let readyWaiters: Array<() => void> = [];

function start(): Promise<{ child: ChildProcess; ports: Ports }> {
  const child = spawnTs(CLI, ['start'], {
    cwd: dir,
    env: {
      ...runtimeEnv(),
      WILDDUCK_DATA_DIR: dataDir,
      WILDDUCK_LOG_FORMAT: 'json',
      WILDDUCK_LOG_LEVEL: 'info', // the ready line is an info line
      WILDDUCK_API_PORT: '0',
      WILDDUCK_API_ACCESS_TOKEN: TOKEN,
      WILDDUCK_LMTP_PORT: '0',
      WILDDUCK_IMAP_PORT: '0',
      WILDDUCK_IMAP_TLS_PORT: '0',
      WILDDUCK_POP3_ENABLED: 'false',
      WILDDUCK_POP3_TLS_PORT: '0',
    },
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 100_000) err = err.slice(-50_000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 60 s: ${out} ${err}`)), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before it was ready: ${out.slice(-2000)} ${err.slice(-2000)}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; level?: string; listeners?: string[] };
        if (entry.level === 'error' || entry.level === 'fatal') errorLines.push(line.slice(0, 300));
        if (entry.msg !== 'wildduck ready') continue;
        const port = (scheme: string) => Number(/:(\d+)$/.exec(entry.listeners!.find((l) => l.startsWith(`${scheme}://`)) ?? '')?.[1]);
        clearTimeout(timer);
        child.removeAllListeners('close');
        resolve({ child, ports: { imap: port('imap'), lmtp: port('lmtp'), http: port('http'), pid: child.pid!, listeners: entry.listeners!.length } });
      }
    });
  });
}
const errorLines: string[] = [];

async function boot(): Promise<void> {
  const started = performance.now();
  server = await start();
  generation++;
  log(`server up (generation ${generation}, pid ${server.ports.pid}) in ${(performance.now() - started).toFixed(0)} ms`);
  for (const w of readyWaiters.splice(0)) w();
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('close', () => resolve())));
}

/** The current server's ports, waiting while it restarts. */
async function ports(): Promise<Ports> {
  while (!server) await new Promise<void>((r) => readyWaiters.push(r));
  return server.ports;
}

// ---- shared bookkeeping ------------------------------------------------------------------------------------

interface Ack {
  user: string;
  uid: number;
  generation: number;
}
const acked = new Map<string, Ack>(); // Message-ID → where the server said it stored it
const uidOwner = new Map<string, string>(); // `${user}/${uid}` → Message-ID
const reusedUids: string[] = [];
let attempts = 0;
let cut = 0; // transactions that ended without an answer (kill or refusal)
const counters = { imapOps: 0, imapErrors: 0, idleExists: 0, httpOk: 0, httpErrors: 0, kills: 0 };
const probe: number[] = [];
let probeFailures = 0;
const memory: Array<{ t: number; rss: number; sockets: number; gen: number }> = [];
const userNames = Array.from({ length: USERS }, (_, i) => `soak${i + 1}`);
const userIds = new Map<string, string>();

function connectLine(port: number, localAddress?: string): Promise<LineClient> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress });
    socket.once('connect', () => resolve(lineClient(socket)));
    socket.once('error', reject);
  });
}

// ---- load ----------------------------------------------------------------------------------------------------

async function lmtpWorker(worker: number): Promise<void> {
  let n = 0;
  while (!stopping) {
    let client: LineClient | null = null;
    try {
      const { lmtp } = await ports();
      client = await connectLine(lmtp);
      await client.line();
      client.send('LHLO soak.test\r\n');
      for (let l = await client.line(); !l.startsWith('250 '); l = await client.line());
      while (!stopping) {
        const user = userNames[Math.floor(Math.random() * userNames.length)]!;
        const id = `<soak-${worker}-${++n}-${Date.now()}@soak.test>`;
        attempts++;
        client.send(`MAIL FROM:<load@remote.test>\r\nRCPT TO:<${user}@example.com>\r\nDATA\r\n`);
        const replies = [await client.line(), await client.line(), await client.line()];
        if (!replies[2]!.startsWith('354')) throw new Error(`LMTP refused: ${replies.join(' | ')}`);
        const body = `Message-ID: ${id}\r\nFrom: load@remote.test\r\nTo: ${user}@example.com\r\nSubject: soak ${n}\r\n\r\n${'soak body line\r\n'.repeat(1 + Math.floor(Math.random() * 200))}.\r\n`;
        client.send(body);
        const answer = await client.line(15_000);
        const m = /^250 .*\(uid (\d+)\)/.exec(answer);
        if (!m) {
          cut++;
          continue;
        }
        const uid = Number(m[1]);
        acked.set(id, { user, uid, generation });
        const key = `${user}/${uid}`;
        const before = uidOwner.get(key);
        if (before && before !== id) reusedUids.push(`${key}: ${before} then ${id}`);
        uidOwner.set(key, id);
        await sleep(rand(5, 40));
      }
    } catch {
      if (client) cut++; // the answer to an open transaction never came
      client?.close();
      await sleep(200);
    }
  }
}

async function imapWorker(user: string): Promise<void> {
  while (!stopping) {
    const { imap } = await ports();
    const client = new ImapFlow({ host: '127.0.0.1', port: imap, secure: false, doSTARTTLS: false, auth: { user, pass: 'pw' }, logger: false, disableAutoIdle: true });
    client.on('error', () => {});
    try {
      await client.connect();
      for (let i = 0; i < 20 && !stopping; i++) {
        const box = await client.mailboxOpen('INBOX');
        counters.imapOps++;
        if (box.exists > 0) {
          const from = Math.max(1, box.exists - 4);
          for await (const msg of client.fetch(`${from}:*`, { uid: true, envelope: true, flags: true })) {
            const key = `${user}/${msg.uid}`;
            const seen = msg.envelope?.messageId;
            const owner = uidOwner.get(key);
            if (owner && seen && owner !== seen) reusedUids.push(`${key}: LMTP said ${owner}, IMAP shows ${seen}`);
          }
          await client.messageFlagsAdd(`${from}:*`, ['\\Seen']);
          counters.imapOps += 2;
        }
        await sleep(rand(100, 400));
      }
      await client.logout();
    } catch {
      counters.imapErrors++;
      client.close();
      await sleep(300);
    }
  }
}

async function idleWorker(user: string): Promise<void> {
  while (!stopping) {
    const { imap } = await ports();
    // IDLE by hand; imapflow ends it after maxIdleTime (and re-enters it on the next call)
    const client = new ImapFlow({ host: '127.0.0.1', port: imap, secure: false, doSTARTTLS: false, auth: { user, pass: 'pw' }, logger: false, disableAutoIdle: true, maxIdleTime: 20_000 });
    client.on('error', () => {});
    client.on('exists', () => counters.idleExists++);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    try {
      await client.connect();
      await client.mailboxOpen('INBOX');
      while (!stopping && client.usable) {
        const began = performance.now();
        await Promise.race([client.idle(), closed]);
        if (performance.now() - began < 50) await sleep(250); // idle() returned at once: do not spin
      }
      if (client.usable) await client.logout();
    } catch {
      client.close();
    }
    await sleep(300);
  }
}

/** Logged-in connections that do nothing, spread over loopback addresses (the per-IP limit counts each). */
async function idleCrowdMember(index: number, rampMs: number): Promise<void> {
  const local = `127.0.${1 + Math.floor(index / 20)}.${2 + (index % 20)}`;
  const user = userNames[index % userNames.length]!;
  await sleep((index * rampMs) / Math.max(1, IDLE_CROWD)); // the crowd grows over the first third of the run
  while (!stopping) {
    let client: LineClient | null = null;
    try {
      const { imap } = await ports();
      client = await connectLine(imap, local);
      await client.line();
      client.send(`c1 LOGIN ${user} pw\r\n`);
      for (let l = await client.line(10_000); !l.startsWith('c1 '); l = await client.line(10_000));
      await Promise.race([client.ended, (async () => { while (!stopping) await sleep(500); })()]);
    } catch {
      // refused (per-user limit) or killed: try again later
    }
    client?.close();
    await sleep(rand(500, 1500));
  }
}

async function httpWorker(): Promise<void> {
  while (!stopping) {
    try {
      const { http } = await ports();
      const user = userIds.get(userNames[Math.floor(Math.random() * userNames.length)]!)!;
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${http}${path}`, { headers: { 'X-Access-Token': TOKEN }, signal: AbortSignal.timeout(10_000) });
        const body = (await res.json()) as Record<string, unknown>;
        if (res.ok) counters.httpOk++;
        else counters.httpErrors++;
        return body;
      };
      await get(`/users/${user}`);
      const boxes = (await get(`/users/${user}/mailboxes?counters=true`)).results as Array<{ id: string; path: string }> | undefined;
      const inbox = boxes?.find((b) => b.path === 'INBOX');
      if (inbox) await get(`/users/${user}/mailboxes/${inbox.id}/messages?limit=10`);
      await get(`/users/${user}/search?q=${encodeURIComponent('subject:soak')}&limit=5`);
    } catch {
      counters.httpErrors++;
      await sleep(200);
    }
    await sleep(rand(50, 200));
  }
}

async function probeWorker(): Promise<void> {
  while (!stopping) {
    await sleep(500);
    const { imap } = await ports();
    const gen = generation;
    let client: LineClient | null = null;
    try {
      const started = performance.now();
      client = await connectLine(imap, '127.0.9.9');
      await client.line(10_000);
      client.send('p1 LOGIN probe probe-pw\r\n');
      let l = await client.line(10_000);
      while (!l.startsWith('p1 ')) l = await client.line(10_000);
      if (!l.startsWith('p1 OK')) throw new Error(l);
      probe.push(performance.now() - started);
      client.send('p2 LOGOUT\r\n');
    } catch {
      if (gen === generation) probeFailures++; // failures across a kill are expected, not counted
    }
    client?.close();
  }
}

function sampleMemory(): void {
  if (!server) return;
  try {
    const status = readFileSync(`/proc/${server.ports.pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    let sockets = 0;
    for (const fd of readdirSync(`/proc/${server.ports.pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${server.ports.pid}/fd/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        // closed meanwhile
      }
    }
    memory.push({ t: (performance.now() - t0) / 1000, rss, sockets: Math.max(0, sockets - server.ports.listeners), gen: generation });
  } catch {
    // the process is gone (killed): no sample
  }
}

async function killer(until: number): Promise<void> {
  for (;;) {
    const wait = rand(KILL_MIN, KILL_MAX);
    if (performance.now() + wait > until - 5000) return;
    await sleep(wait);
    const victim = server!;
    server = null;
    victim.child.kill('SIGKILL');
    await exited(victim.child);
    counters.kills++;
    log(`SIGKILL (kill ${counters.kills}); restarting`);
    await boot();
  }
}

// ---- run ---------------------------------------------------------------------------------------------------

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? NaN : points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const config = resolveConfig({ dataDir });
  const storage = await openStorage(config);
  for (const name of userNames) {
    const { user } = await createUser(storage, config, { username: name, password: 'pw', addresses: [`${name}@example.com`] });
    userIds.set(name, user.id);
  }
  await createUser(storage, config, { username: 'probe', password: 'probe-pw' });
  await storage.close();

  t0 = performance.now();
  const until = t0 + MINUTES * 60_000;
  log(`soak for ${MINUTES} min in ${dir}: ${USERS} users, ${IDLE_CROWD} idle connections, kills every ${KILL_MIN / 1000}-${KILL_MAX / 1000} s`);
  await boot();
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < 3; i++) workers.push(lmtpWorker(i));
  for (const user of userNames.slice(0, 3)) workers.push(imapWorker(user));
  for (const user of userNames.slice(0, 2)) workers.push(idleWorker(user));
  for (let i = 0; i < IDLE_CROWD; i++) workers.push(idleCrowdMember(i, (MINUTES * 60_000) / 3));
  workers.push(httpWorker(), probeWorker());
  const sampler = setInterval(sampleMemory, 2000);
  const reporter = setInterval(() => {
    const last = memory.at(-1);
    log(`acked ${acked.size}/${attempts}, imap ops ${counters.imapOps}, idle EXISTS ${counters.idleExists}, http ${counters.httpOk}, probe p99 ${percentile(probe, 99).toFixed(0)} ms` + (last ? `, rss ${(last.rss / 2 ** 20).toFixed(0)} MiB, ${last.sockets} connections` : ''));
  }, 15_000);
  await killer(until);
  await sleep(Math.max(0, until - performance.now()));
  stopping = true;
  clearInterval(sampler);
  clearInterval(reporter);
  await Promise.race([Promise.allSettled(workers), sleep(20_000)]);
  const last = server!;
  last.child.kill('SIGTERM');
  await Promise.race([exited(last.child), sleep(15_000)]);
  if (last.child.exitCode === null && last.child.signalCode === null) last.child.kill('SIGKILL');

  // ---- what the storage holds, after a clean stop --------------------------------------------------------
  const check = await openStorage(config);
  const stored = new Map<string, number>();
  const storedUid = new Map<string, string>();
  for (const name of userNames) {
    const box = (await check.mailboxes.getByPath(userIds.get(name)!, 'INBOX'))!;
    for (const entry of await check.messages.index(box.id)) {
      const record = await check.messages.get(box.id, entry.uid);
      const id = record?.messageId;
      if (!id) continue;
      stored.set(id, (stored.get(id) ?? 0) + 1);
      storedUid.set(id, `${name}/${entry.uid}`);
    }
  }
  await check.close();
  const lost = [...acked.keys()].filter((id) => !stored.has(id));
  const moved = [...acked.entries()].filter(([id, a]) => stored.has(id) && storedUid.get(id) !== `${a.user}/${a.uid}`);
  const duplicates = [...stored.entries()].filter(([, n]) => n > 1);
  const unacked = [...stored.keys()].filter((id) => !acked.has(id));

  writeOut('\n==== soak result ====\n');
  writeOut(`duration ${MINUTES} min, ${counters.kills} SIGKILL restarts, ${generation} server generations\n`);
  writeOut(`LMTP: ${attempts} transactions, ${acked.size} acknowledged, ${cut} cut off without an answer\n`);
  writeOut(`stored: ${[...stored.values()].reduce((a, b) => a + b, 0)} messages; acknowledged and stored ${acked.size - lost.length}/${acked.size}; stored but unacknowledged ${unacked.length}\n`);
  writeOut(`LOST acknowledged: ${lost.length}${lost.length ? ' ' + lost.slice(0, 5).join(' ') : ''}\n`);
  writeOut(`duplicates (one Message-ID stored twice): ${duplicates.length}${duplicates.length ? ' ' + duplicates.slice(0, 5).map(([id, n]) => `${id}×${n}`).join(' ') : ''}\n`);
  writeOut(`reused UIDs: ${reusedUids.length + moved.length}${reusedUids.length ? ' ' + reusedUids.slice(0, 5).join('; ') : ''}${moved.length ? ` (stored under another UID than acknowledged: ${moved.length})` : ''}\n`);
  writeOut(`IMAP: ${counters.imapOps} operations, ${counters.imapErrors} sessions broken (kills); IDLE: ${counters.idleExists} EXISTS pushed; HTTP: ${counters.httpOk} OK, ${counters.httpErrors} failed\n`);
  writeOut(`probe LOGIN (fresh connection): ${probe.length} samples, p50 ${percentile(probe, 50).toFixed(1)} ms, p99 ${percentile(probe, 99).toFixed(1)} ms, max ${Math.max(...probe).toFixed(1)} ms, ${probeFailures} failed outside kills\n`);
  writeOut('memory (server RSS / open client connections):\n');
  const step = Math.max(1, Math.floor(memory.length / 12));
  for (let i = 0; i < memory.length; i += step) {
    const m = memory[i]!;
    writeOut(`  t=${m.t.toFixed(0).padStart(4)} s gen ${m.gen}: rss ${(m.rss / 2 ** 20).toFixed(1).padStart(6)} MiB, ${String(m.sockets).padStart(3)} connections, ${m.sockets ? ((m.rss / m.sockets) / 1024).toFixed(0) : '-'} KiB per connection\n`);
  }
  const points = memory.filter((m) => m.sockets > 0).map((m): [number, number] => [m.sockets, m.rss]);
  const spread = points.length ? Math.max(...points.map((p) => p[0])) - Math.min(...points.map((p) => p[0])) : 0;
  const fit = spread >= 10 ? slope(points) : NaN;
  writeOut(`  marginal RSS per connection (least-squares slope while the idle crowd ramped up; rough, GC mixes in): ${Number.isFinite(fit) ? (fit / 1024).toFixed(0) + ' KiB' : 'n/a'}\n`);
  if (errorLines.length) writeOut(`server error log lines: ${errorLines.length}, first: ${errorLines[0]}\n`);
  const failed = lost.length > 0 || reusedUids.length > 0 || moved.length > 0;
  writeOut(failed ? 'FAIL: acknowledged mail lost or a UID reused\n' : 'PASS: every acknowledged message stored, no UID reused\n');
  if (!flags.keep) rmSync(dir, { recursive: true, force: true });
  else writeOut(`data kept in ${dir}\n`);
  exit(failed ? 1 : 0); // workers may still sleep: do not wait for them
}

await main();
