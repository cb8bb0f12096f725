/**
 * One mix variant against this server alone, for profiling (no Dovecot): starts the server on a fresh data
 * directory, seeds the mix users, runs the variant and prints commands per second, server CPU per command, CPU
 * per server process (are both workers busy?) and the mean latency per command name.
 *
 *   node --import tsx test/bench/mix-profile.ts [kept|logins|single] [SECONDS]
 *   IMAPTEST=/path/to/imaptest node --import tsx test/bench/mix-profile.ts imaptest-kept|imaptest|imaptest-single [SECONDS]
 *
 * WD_BENCH_PROF=DIR runs the server under `node --cpu-prof` (see ours-peer.ts); summarise the profiles with
 * `npx tsx test/bench/cpu-profile.ts DIR/*.cpuprofile --window mix` (the window leaves out the server's start). WILDDUCK_SERVER_WORKERS picks the
 * number of worker processes as for the server itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argv, env } from 'node:process';
import { runImaptest, type ImaptestVariant } from './imaptest.ts';
import { runMix, seedMix, type MixOptions } from './mix.ts';
import { profileWindow, startOurs } from './ours-peer.ts';
import { MIX_CLIENTS, mixUser } from './peer.ts';
import { processTree } from './proc-stats.ts';

const variants: Record<string, Omit<MixOptions, 'seconds'>> = {
  kept: { clients: MIX_CLIENTS, keepSessions: true, pipelining: true },
  logins: { clients: MIX_CLIENTS, keepSessions: false, pipelining: true },
  single: { clients: 1, keepSessions: false, pipelining: false },
};
/** imaptest's variants (bench imaptest.ts), run with the binary IMAPTEST names. */
const imaptestVariants: Record<string, ImaptestVariant> = {
  'imaptest': { clients: MIX_CLIENTS, logouts: true, pipelining: true },
  'imaptest-kept': { clients: MIX_CLIENTS, logouts: false, pipelining: true },
  'imaptest-single': { clients: 1, logouts: true, pipelining: false },
};
const name = argv[2] ?? 'kept';
const variant = variants[name] ?? (imaptestVariants[name] && variants.kept);
if (!variant) throw new Error(`unknown variant ${name}: one of ${[...Object.keys(variants), ...Object.keys(imaptestVariants)].join(', ')}`);
const seconds = Number(argv[3] ?? 10);

const dir = mkdtempSync(join(tmpdir(), 'wd-mix-profile-'));
const peer = await startOurs(dir, join(dir, 'server.log'), Array.from({ length: MIX_CLIENTS }, (_, i) => mixUser(i)));
try {
  await seedMix(peer, variant.clients);
  const before = new Map(processTree(peer.pid).map((s) => [s.pid, s.cpu]));
  const cpuPerProcess = () => processTree(peer.pid).map((s) => `${s.pid}: ${(s.cpu - (before.get(s.pid) ?? 0)) * 10} ms`).join(', ');
  const imaptest = imaptestVariants[name];
  if (imaptest) {
    if (!env.IMAPTEST) throw new Error('IMAPTEST must name the imaptest binary');
    const from = process.hrtime.bigint();
    const r = await runImaptest(env.IMAPTEST, peer, dir, seconds, imaptest);
    profileWindow(`mix ${name}`, from, process.hrtime.bigint());
    console.log(`${name}: ${r.commandsPerSecond?.toFixed(0)} cmds/s, ${r.cpuMsPerCommand?.toFixed(3)} ms CPU/command, ${r.errors} errors`);
    console.log(`CPU per process: ${cpuPerProcess()}`);
    if (r.errors || env.WD_TAIL) console.log(r.tail);
  } else {
    const from = process.hrtime.bigint();
    const r = await runMix(peer, { ...variant, seconds });
    profileWindow(`mix ${name}`, from, process.hrtime.bigint());
    console.log(`${name}: ${r.commandsPerSecond.toFixed(0)} cmds/s, ${r.loginsPerSecond.toFixed(1)} logins/s, ${r.cpuMsPerCommand.toFixed(3)} ms CPU/command, ${r.errors} errors ${r.firstError}`);
    console.log(`CPU per process: ${cpuPerProcess()}`);
    for (const [cmd, l] of Object.entries(r.latencyMs).sort((a, b) => b[1].mean * b[1].count - a[1].mean * a[1].count)) {
      console.log(`  ${cmd.padEnd(12)} ${String(l.count).padStart(6)} × ${l.mean.toFixed(2).padStart(7)} ms`);
    }
  }
} finally {
  await peer.stop();
  if (!env.WD_KEEP) rmSync(dir, { recursive: true, force: true }); else console.log(dir);
}
