/**
 * `tsx test/bench/ingest-cpu.ts [--messages N] [--rounds R] [--workers W] [--warmup N] [--each]`: our server alone,
 * ingest CPU only. Runs the four ingest workloads of the bench (LMTP and APPEND, 1 and 4 connections) R times on
 * fresh slices of the corpus after a warm-up of N APPENDed messages (default 60; 0 = a cold server), and prints
 * server CPU ms per message (min and median of the rounds; --each: every round) and msg/s. For before/after
 * comparisons while optimizing on a shared machine, where one bench run is too noisy; the figures that count are
 * still `npm run bench`'s, against Dovecot. WD_BENCH_PROF=DIR profiles the server as in the bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, hrtime } from 'node:process';
import { parseArgs } from 'node:util';
import { argv, writeOut } from '../../protocols/runtime.ts';
import { dataBlock, ingestMessage } from './corpus.ts';
import { appendIngest, lmtpIngest, type IngestResult } from './ingest.ts';
import { profileWindow, startOurs } from './ours-peer.ts';
import { INGEST_USER, type Peer } from './peer.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: {
    messages: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '0' },
    warmup: { type: 'string', default: '60' },
    each: { type: 'boolean', default: false },
  },
});
const n = Number(flags.messages);
const rounds = Number(flags.rounds);

const root = mkdtempSync(join(tmpdir(), 'wd-ingest-cpu-'));
env.WILDDUCK_SERVER_WORKERS = flags.workers;
const peer = await startOurs(join(root, 'data'), join(root, 'ours.log'), [INGEST_USER]);
let next = 0;
const slice = () => Array.from({ length: n }, () => ingestMessage(next++));
const workloads: Array<[string, (p: Peer, messages: Uint8Array[], bytes: number) => Promise<IngestResult>]> = [
  ['LMTP 1', (p, m, b) => lmtpIngest(p, m.map(dataBlock), b, 1)],
  ['LMTP 4', (p, m, b) => lmtpIngest(p, m.map(dataBlock), b, 4)],
  ['APPEND 1', (p, m, b) => appendIngest(p, m, b, 1)],
  ['APPEND 4', (p, m, b) => appendIngest(p, m, b, 4)],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const warm = Array.from({ length: Number(flags.warmup) }, () => ingestMessage(next++));
  if (warm.length > 0) await appendIngest(peer, warm, 0, 2);
  const results = new Map<string, IngestResult[]>(workloads.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of workloads) {
      const messages = slice();
      const from = hrtime.bigint();
      results.get(name)!.push(await run(peer, messages, messages.reduce((s, m) => s + m.length, 0)));
      profileWindow(name, from, hrtime.bigint());
      if (flags.each) writeOut(`round ${r + 1} ${name}: ${results.get(name)!.at(-1)!.cpuMsPerMessage.toFixed(2)} ms/msg\n`);
    }
  }
  writeOut(`${n} messages x ${rounds} rounds, server workers ${flags.workers}\n`);
  writeOut('workload   CPU ms/msg min  median   msg/s median\n');
  for (const [name, rs] of results) {
    const cpu = rs.map((r) => r.cpuMsPerMessage);
    writeOut(`${name.padEnd(10)} ${Math.min(...cpu).toFixed(2).padStart(14)} ${median(cpu).toFixed(2).padStart(7)} ${median(rs.map((r) => r.perSecond)).toFixed(1).padStart(14)}\n`);
  }
} finally {
  await peer.stop();
  rmSync(root, { recursive: true, force: true });
}
