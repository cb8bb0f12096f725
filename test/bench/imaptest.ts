/**
 * Optional: Dovecot's imaptest in its default stress mix, when the IMAPTEST environment variable names a built
 * imaptest binary (the bench never builds it; see /work/shared/README.md for how). It APPENDs from an ASCII mbox
 * written from corpus.smallMessage. Three variants, as issue 10 names them: the default mix (20 clients, LOGOUT
 * and a new LOGIN in every cycle), the same with sessions kept (`logout=0`), and one client without pipelining
 * (`clients=1 no_pipelining`). Commands per second are the sum of the counts on the last line after "Totals:"
 * divided by the seconds, server CPU per command likewise; errors are imaptest's "Error:" lines; the output's tail
 * is kept in the JSON details.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { smallMessage } from './corpus.ts';
import { MIX_CLIENTS, PASSWORD, mixUser, type Peer } from './peer.ts';
import { treeCpuMs } from './proc-stats.ts';

export interface ImaptestResult {
  commandsPerSecond: number | null;
  /** Server CPU (process tree) per command. */
  cpuMsPerCommand: number | null;
  /** imaptest's "Error: ..." lines (protocol errors and state mismatches it found). */
  errors: number;
  tail: string;
}

export interface ImaptestVariant {
  clients: number;
  /** false: `logout=0`, sessions stay logged in for the whole run. */
  logouts: boolean;
  pipelining: boolean;
}

export function writeMbox(file: string, count: number): void {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = Buffer.from(smallMessage(2_000_000 + i)).toString('latin1').replace(/\r\n/g, '\n');
    parts.push(`From bench@example.com Mon Nov  2 12:00:00 2026\n${text.replace(/^From /gm, '>From ')}\n`);
  }
  writeFileSync(file, parts.join(''));
}

export async function runImaptest(binary: string, peer: Peer, dir: string, seconds: number, variant: ImaptestVariant = { clients: MIX_CLIENTS, logouts: true, pipelining: true }): Promise<ImaptestResult> {
  const mbox = join(dir, 'imaptest.mbox');
  writeMbox(mbox, 200);
  const args = [`host=127.0.0.1`, `port=${peer.imapPort}`, `user=${mixUser(0)}`, `pass=${PASSWORD}`, `mbox=${mbox}`, `clients=${variant.clients}`, `secs=${seconds}`];
  if (!variant.logouts) args.push('logout=0');
  if (!variant.pipelining) args.push('no_pipelining');
  const cpu0 = treeCpuMs(peer.pid);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  const cpu = treeCpuMs(peer.pid) - cpu0;
  const totals = out.lastIndexOf('Totals:');
  const numbers = totals < 0 ? [] : out.slice(totals).split('\n').filter((l) => /^\s*\d+(\s+\d+)+\s*$/.test(l));
  const last = numbers.at(-1);
  const sum = last ? last.trim().split(/\s+/).reduce((s, n) => s + Number(n), 0) : null;
  const errors = out.split('\n').filter((l) => l.startsWith('Error:')).length;
  return { commandsPerSecond: sum === null ? null : sum / seconds, cpuMsPerCommand: sum ? cpu / sum : null, errors, tail: out.slice(-3000) };
}
