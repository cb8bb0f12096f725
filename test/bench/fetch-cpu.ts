/**
 * Server CPU per FETCH of the kinds imaptest's mix sends, on this server alone, measured to the nanosecond
 * (proc-stats.ts treeRunMs) so a before/after comparison holds on a busy machine:
 * `tsx test/bench/fetch-cpu.ts [ROUNDS]`. Seeds the first mix user's INBOX as the bench does and appends 100 messages, then runs ROUNDS rounds
 * of each FETCH over the whole mailbox from 4 sessions at once and prints the min and median server CPU per command.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argv } from 'node:process';
import { ImapClient, ok } from './imap-client.ts';
import { FETCHES } from './large-mailbox.ts';
import { seedMix } from './mix.ts';
import { smallMessage } from './corpus.ts';
import { startOurs } from './ours-peer.ts';
import { PASSWORD, mixUser } from './peer.ts';
import { treeRunMs } from './proc-stats.ts';
import { median } from './report.ts';

const rounds = Number(argv[2] ?? 5);
const SESSIONS = 4;
/** Messages appended to the seeded ones. */
const MESSAGES = 100;

const dir = mkdtempSync(join(tmpdir(), 'wd-fetch-cpu-'));
const peer = await startOurs(dir, join(dir, 'server.log'), [mixUser(0)]);
try {
  await seedMix(peer, 1);
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => ImapClient.connect(peer.imapPort)));
  for (const c of clients) await c.login(mixUser(0), PASSWORD);
  for (let i = 0; i < MESSAGES; i++) ok(await clients[0]!.append('INBOX', smallMessage(700_000 + i)), 'APPEND');
  for (const c of clients) ok(await c.command('SELECT INBOX'), 'SELECT');
  const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(FETCHES).map((k) => [k, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const [name, command] of Object.entries(FETCHES)) {
      const c0 = treeRunMs(peer.pid);
      await Promise.all(clients.map(async (c) => ok(await c.command(command), name)));
      if (round > 0) cpu[name]!.push((treeRunMs(peer.pid) - c0) / SESSIONS);
    }
  }
  for (const [name, xs] of Object.entries(cpu)) {
    console.log(`${name.padEnd(14)} ${FETCHES[name as keyof typeof FETCHES]}: server CPU per command min ${Math.min(...xs).toFixed(2)} ms, median ${median(xs).toFixed(2)} ms`);
  }
  for (const c of clients) await c.logout();
} finally {
  await peer.stop();
  rmSync(dir, { recursive: true, force: true });
}
