/**
 * Idle memory per connection: the server's memory (its whole process tree) with no session and then with each
 * count of sessions LOGIN + SELECT + IDLE, held by idle-clients.ts in a separate process started through bash
 * with `ulimit -n` raised to the hard limit. The crowd grows step by step (1,000, then 10,000 in all), and each
 * figure is (memory with the sessions - memory with none) / sessions.
 *
 * Every reading is taken once the server has been left alone for `settleMs` (the sessions idling). A garbage-
 * collected server still holds the garbage of a burst of 10,000 logins seconds after it, and gives it back only when
 * its collector's idle-time memory reducer runs (ours starts it once a worker is quiet: protocols/net/memory-settle.ts;
 * left to itself V8 waits up to 100 s, or after a small burst may not run at all). A reading 2 s after the burst
 * measures that garbage, and swings by more than the per-session cost between runs (it read -37 and +18.8 KB per
 * session at 1,000 in two runs of the same code), so the settled reading is the figure and the 2-second one is kept
 * beside it. Both servers go through the same steps and waits.
 *
 * PSS splits shared pages between the processes sharing them (what Dovecot's many imap processes really cost);
 * the RSS sum counts them once per process (see proc-stats.ts).
 */
import { spawn } from 'node:child_process';
import { execPath } from 'node:process';
import { fileURLToPath } from 'node:url';
import { IDLE_USER, PASSWORD, sleep, waitFor, type Peer } from './peer.ts';
import { processTree, treeMemory } from './proc-stats.ts';

const CLIENTS = fileURLToPath(new URL('./idle-clients.ts', import.meta.url));

export interface IdleStep {
  sessions: number;
  ready: number;
  errors: number;
  firstError: string;
  setupSeconds: number;
  /** Settled: after `settleMs` of idling. */
  rssPerSession: number;
  pssPerSession: number;
  /** 2 s after the last session of the step was up. */
  pssPerSessionAt2s: number;
}

export interface IdleResult {
  settleMs: number;
  steps: IdleStep[];
  processesBefore: number;
  processesAfter: number;
}

interface Report {
  ready: number;
  errors: number;
  firstError: string;
  seconds: number;
}

/** Memory per session with `counts` sessions (ascending), each reading taken after `settleMs` of quiet. */
export async function idleMemory(peer: Peer, counts: number[], settleMs: number): Promise<IdleResult> {
  await sleep(settleMs);
  const before = treeMemory(peer.pid);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [execPath, '--import', import.meta.resolve('tsx'), CLIENTS, String(peer.imapPort), IDLE_USER, PASSWORD, String(counts[0])].map(quote).join(' ');
  const child = spawn('bash', ['-c', `ulimit -n $(ulimit -Hn); exec ${command}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const steps: IdleStep[] = [];
  let processesAfter = before.processes;
  try {
    for (const [k, count] of counts.entries()) {
      if (k > 0) child.stdin!.write(`${count}\n`);
      await waitFor(`${count} IDLE sessions`, () => out.split('\n').length > k + 1 || child.exitCode !== null, 600_000, 200);
      const line = out.split('\n')[k];
      if (!line) throw new Error(`the IDLE client exited (${child.exitCode}) without a report`);
      const report = JSON.parse(line) as Report;
      const n = Math.max(report.ready, 1);
      await sleep(2000);
      const early = treeMemory(peer.pid);
      await sleep(Math.max(0, settleMs - 2000));
      const settled = treeMemory(peer.pid);
      processesAfter = settled.processes;
      steps.push({
        sessions: count,
        ready: report.ready,
        errors: report.errors,
        firstError: report.firstError,
        setupSeconds: report.seconds,
        rssPerSession: (settled.rss - before.rss) / n,
        pssPerSession: (settled.pss - before.pss) / n,
        pssPerSessionAt2s: (early.pss - before.pss) / n,
      });
    }
  } finally {
    child.stdin!.end('stop\n');
    await exited;
  }
  // wait for the server to let go of the sessions before the next workload
  await waitFor('the IDLE sessions to close', () => processTree(peer.pid).length <= before.processes + 2, 120_000, 250).catch(() => undefined);
  await sleep(1000);
  return { settleMs, steps, processesBefore: before.processes, processesAfter };
}
