/**
 * Idle memory per connection: the server's memory (its whole process tree) before and after `count` sessions
 * LOGIN + SELECT + IDLE, held by idle-clients.ts in a separate process started through bash with `ulimit -n`
 * raised to the hard limit. Reports RSS and PSS deltas per session; Dovecot's RSS sum counts its shared pages
 * once per imap process, PSS splits them (see proc-stats.ts).
 */
import { spawn } from 'node:child_process';
import { execPath } from 'node:process';
import { fileURLToPath } from 'node:url';
import { IDLE_USER, PASSWORD, sleep, waitFor, type Peer } from './peer.ts';
import { processTree, treeMemory } from './proc-stats.ts';

const CLIENTS = fileURLToPath(new URL('./idle-clients.ts', import.meta.url));

export interface IdleResult {
  sessions: number;
  ready: number;
  errors: number;
  firstError: string;
  setupSeconds: number;
  rssPerSession: number;
  pssPerSession: number;
  processesBefore: number;
  processesAfter: number;
}

export async function idleMemory(peer: Peer, count: number): Promise<IdleResult> {
  const before = treeMemory(peer.pid);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [execPath, '--import', import.meta.resolve('tsx'), CLIENTS, String(peer.imapPort), IDLE_USER, PASSWORD, String(count)].map(quote).join(' ');
  const child = spawn('bash', ['-c', `ulimit -n $(ulimit -Hn); exec ${command}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(`${count} IDLE sessions`, () => out.includes('\n') || child.exitCode !== null, 600_000, 200);
  if (!out.includes('\n')) throw new Error(`the IDLE client exited (${child.exitCode}) without a report`);
  const report = JSON.parse(out.split('\n')[0]!) as { ready: number; errors: number; firstError: string; seconds: number };
  await sleep(2000); // let the server settle (deferred work after the last IDLE)
  const after = treeMemory(peer.pid);
  child.stdin!.end('stop\n');
  await exited;
  // wait for the server to let go of the sessions before the next workload
  const baseline = before.processes;
  await waitFor('the IDLE sessions to close', () => processTree(peer.pid).length <= baseline + 2, 120_000, 250).catch(() => undefined);
  await sleep(1000);
  const n = Math.max(report.ready, 1);
  return {
    sessions: count,
    ready: report.ready,
    errors: report.errors,
    firstError: report.firstError,
    setupSeconds: report.seconds,
    rssPerSession: (after.rss - before.rss) / n,
    pssPerSession: (after.pss - before.pss) / n,
    processesBefore: before.processes,
    processesAfter: after.processes,
  };
}
