/**
 * imaptest against this server alone, for before/after figures of CPU per command (no Dovecot):
 * `IMAPTEST=/path/to/imaptest tsx test/bench/imaptest-cpu.ts [kept|default|single] [SECONDS] [ROUNDS]`. Starts the
 * server on a fresh data directory, seeds the mix users as the bench does, then runs the variant ROUNDS times and
 * prints commands/s and server CPU per command for each round, with the min and median CPU (the min is the figure
 * least disturbed by other jobs on a shared machine). WD_BENCH_PROF=DIR profiles the server as in ours-peer.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argv } from 'node:process';
import { env } from '../../hooks/runtime.ts';
import { runImaptest, type ImaptestVariant } from './imaptest.ts';
import { seedMix } from './mix.ts';
import { startOurs } from './ours-peer.ts';
import { MIX_CLIENTS, mixUser } from './peer.ts';
import { median } from './report.ts';

const variants: Record<string, ImaptestVariant> = {
  kept: { clients: MIX_CLIENTS, logouts: false, pipelining: true },
  default: { clients: MIX_CLIENTS, logouts: true, pipelining: true },
  single: { clients: 1, logouts: true, pipelining: false },
};
const name = argv[2] ?? 'kept';
const variant = variants[name];
if (!variant) throw new Error(`unknown variant ${name}: one of ${Object.keys(variants).join(', ')}`);
const seconds = Number(argv[3] ?? 6);
const rounds = Number(argv[4] ?? 3);
const binary = env().IMAPTEST;
if (!binary) throw new Error('set IMAPTEST to a built imaptest binary');

const dir = mkdtempSync(join(tmpdir(), 'wd-imaptest-cpu-'));
const peer = await startOurs(dir, join(dir, 'server.log'), Array.from({ length: MIX_CLIENTS }, (_, i) => mixUser(i)));
try {
  await seedMix(peer, MIX_CLIENTS);
  const cpu: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const r = await runImaptest(binary, peer, dir, seconds, variant);
    if (r.cpuMsPerCommand !== null) cpu.push(r.cpuMsPerCommand);
    console.log(`${name} round ${round + 1}: ${r.commandsPerSecond?.toFixed(0)} cmds/s, ${r.cpuMsPerCommand?.toFixed(3)} ms CPU/command, ${r.errors} errors`);
    for (const line of r.tail.split('\n').filter((l) => l.startsWith('Error:'))) console.log(`  ${line}`);
  }
  console.log(`${name}: CPU/command min ${Math.min(...cpu).toFixed(3)} ms, median ${median(cpu).toFixed(3)} ms`);
} finally {
  await peer.stop();
  rmSync(dir, { recursive: true, force: true });
}
