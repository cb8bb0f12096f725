/**
 * `tsx test/bench/ingest-cpu.ts [--messages N] [--rounds R] [--workers W] [--warmup N] [--each] [--paired]`: our server alone,
 * ingest CPU only. Runs the four ingest workloads of the bench (LMTP and APPEND, 1 and 4 connections) R times on
 * fresh slices of the corpus after a warm-up of N messages, half by LMTP and half by APPEND (default 60; 0 = a cold server), and prints
 * server CPU ms per message (min and median of the rounds; --each: every round) and msg/s. For before/after
 * comparisons while optimizing on a shared machine, where one bench run is too noisy; the figures that count are
 * still `npm run bench`'s, against Dovecot. WD_BENCH_PROF=DIR profiles the server as in the bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, hrtime } from 'node:process';
import { parseArgs } from 'node:util';
import { argv, writeOut } from '../../hooks/runtime.ts';
import { dataBlock, ingestMessage } from './corpus.ts';
import { appendIngest, lmtpIngest, type IngestResult } from './ingest.ts';
import { profileWindow, startOurs } from './ours-peer.ts';
import { INGEST_USER, type Peer } from './peer.ts';
import { processTree } from './proc-stats.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: {
    messages: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '0' },
    warmup: { type: 'string', default: '60' },
    each: { type: 'boolean', default: false },
    paired: { type: 'boolean', default: false },
  },
});
const n = Number(flags.messages);
const rounds = Number(flags.rounds);

const root = mkdtempSync(join(tmpdir(), 'wd-ingest-cpu-'));
env.WILDDUCK_SERVER_WORKERS = flags.workers;
const peer = await startOurs(join(root, 'data'), join(root, 'ours.log'), [INGEST_USER]);
let next = 0;
const slice = () => Array.from({ length: n }, () => ingestMessage(next++));
// --paired: APPEND n gets the slice LMTP n had in the same round (the corpus slices differ by up to 2x in bytes per
// message, which blurs an LMTP-against-APPEND comparison; LMTP never sees a Message-ID twice, so none is suppressed)
const slices = new Map<string, Uint8Array[]>();
const sliceFor = (name: string): Uint8Array[] => {
  if (!flags.paired) return slice();
  const [kind, connections] = name.split(' ');
  if (kind === 'LMTP') {
    const s = slice();
    slices.set(connections!, s);
    return s;
  }
  return slices.get(connections!) ?? slice();
};
const workloads: Array<[string, (p: Peer, messages: Uint8Array[], bytes: number) => Promise<IngestResult>]> = [
  ['LMTP 1', (p, m, b) => lmtpIngest(p, m.map(dataBlock), b, 1)],
  ['LMTP 4', (p, m, b) => lmtpIngest(p, m.map(dataBlock), b, 4)],
  ['APPEND 1', (p, m, b) => appendIngest(p, m, b, 1)],
  ['APPEND 4', (p, m, b) => appendIngest(p, m, b, 4)],
];
/** CPU ticks (10 ms) of the server's first process: the primary when it has workers, which serve the connections. */
const primaryTicks = () => processTree(peer.pid).find((s) => s.pid === peer.pid)?.cpu ?? 0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const warm = Array.from({ length: Number(flags.warmup) }, () => ingestMessage(next++));
  // half by LMTP, half by APPEND, two connections each (every worker loads and compiles both paths before the clock)
  const half = Math.ceil(warm.length / 2);
  if (half > 0) await lmtpIngest(peer, warm.slice(0, half).map(dataBlock), 0, 2);
  if (warm.length > half) await appendIngest(peer, warm.slice(half), 0, 2);
  const results = new Map<string, IngestResult[]>(workloads.map(([name]) => [name, []]));
  const primaryMs = new Map<string, number[]>(workloads.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of workloads) {
      const messages = sliceFor(name);
      const from = hrtime.bigint();
      const primary0 = primaryTicks();
      results.get(name)!.push(await run(peer, messages, messages.reduce((s, m) => s + m.length, 0)));
      profileWindow(name, from, hrtime.bigint());
      primaryMs.get(name)!.push(((primaryTicks() - primary0) * 10) / messages.length);
      if (flags.each) writeOut(`round ${r + 1} ${name}: ${results.get(name)!.at(-1)!.cpuMsPerMessage.toFixed(2)} ms/msg\n`);
    }
  }
  writeOut(`${n} messages x ${rounds} rounds, server workers ${flags.workers}\n`);
  writeOut('workload   CPU ms/msg min  median   msg/s median   of which primary (median)\n');
  for (const [name, rs] of results) {
    const cpu = rs.map((r) => r.cpuMsPerMessage);
    writeOut(`${name.padEnd(10)} ${Math.min(...cpu).toFixed(2).padStart(14)} ${median(cpu).toFixed(2).padStart(7)} ${median(rs.map((r) => r.perSecond)).toFixed(1).padStart(14)} ${median(primaryMs.get(name)!).toFixed(2).padStart(14)}\n`);
  }
} finally {
  await peer.stop();
  rmSync(root, { recursive: true, force: true });
}
