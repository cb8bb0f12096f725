/**
 * `tsx test/bench/write-cpu.ts [--messages N] [--rounds R] [--batch B]`: the storage write path of a kept IMAP
 * session alone (no protocol, no hooks), CPU per operation, on a durable SQLite store whose mailbox holds N small
 * messages (corpus.smallMessage, as imaptest appends). Each round runs, B at a time (B sessions writing together,
 * as 20 clients on one mailbox do): STORE +FLAGS (\Seen) on 4 messages, STORE +FLAGS (\Deleted) on 1, EXPUNGE of
 * that one, APPEND of a new one; prints process CPU ms per operation for each kind (search indexing included in
 * APPEND's), min and median of the rounds. For before/after comparisons of setFlags / expunge / the group commit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuUsage } from 'node:process';
import { parseArgs } from 'node:util';
import { argv, writeOut } from '../../hooks/runtime.ts';
import { createUser } from '../../storage/users.ts';
import { resolveConfig } from '../../hooks/config.ts';
import { ingestMessage } from '../../storage/mime/ingest.ts';
import { openSqliteStorage } from '../../storage/sqlite/index.ts';
import { smallMessage } from './corpus.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: { messages: { type: 'string', default: '300' }, rounds: { type: 'string', default: '5' }, batch: { type: 'string', default: '8' } },
});
const n = Number(flags.messages);
const batch = Number(flags.batch);
const perRound = 100;
const cpuMs = (from: NodeJS.CpuUsage) => {
  const d = cpuUsage(from);
  return (d.user + d.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = mkdtempSync(join(tmpdir(), 'wd-write-cpu-'));
const s = await openSqliteStorage({ dataDir: join(root, 'data') });
const kinds = ['store', 'delete', 'expunge', 'append'] as const;
const cpu: Record<(typeof kinds)[number], number[]> = { store: [], delete: [], expunge: [], append: [] };
try {
  const { user } = await createUser(s, resolveConfig({ dataDir: join(root, 'data') }), { username: 'bench', password: null });
  const mailboxId = (await s.mailboxes.getByPath(user.id, 'INBOX'))!.id;
  let next = 0;
  const append = async () => (await s.messages.append({ userId: user.id, mailboxId, flags: [], internalDate: Date.now(), message: await ingestMessage(smallMessage(next++), s.blobs) })).uid;
  const uids: number[] = [];
  for (let i = 0; i < n; i++) uids.push(await append());
  s.searchIndexer.flush();
  const pick = () => uids[Math.floor(Math.random() * uids.length)]!;
  /** Runs `op` perRound times, `batch` at once; CPU ms per call. */
  const timed = async (op: (i: number) => Promise<unknown>) => {
    const from = cpuUsage();
    for (let i = 0; i < perRound; i += batch) await Promise.all(Array.from({ length: Math.min(batch, perRound - i) }, (_, j) => op(i + j)));
    return cpuMs(from) / perRound;
  };
  for (let r = 0; r < Number(flags.rounds); r++) {
    cpu.store.push(await timed(() => s.messages.setFlags(mailboxId, [pick(), pick(), pick(), pick()], { action: r % 2 ? 'remove' : 'add', flags: ['\\Seen'] })));
    const doomed = uids.splice(0, perRound);
    cpu.delete.push(await timed((i) => s.messages.setFlags(mailboxId, [doomed[i]!], { action: 'add', flags: ['\\Deleted'] })));
    cpu.expunge.push(await timed((i) => s.messages.expunge(mailboxId, [doomed[i]!])));
    const fresh: number[] = [];
    cpu.append.push(await timed(async () => fresh.push(await append())));
    const from = cpuUsage();
    s.searchIndexer.flush(); // what is left to index counts too
    cpu.append[r]! += cpuMs(from) / perRound;
    uids.push(...fresh);
  }
  writeOut(`${n} messages, ${perRound} operations per kind x ${flags.rounds} rounds, ${batch} at once\n`);
  for (const k of kinds) writeOut(`${k.padEnd(8)} CPU ms/op min ${Math.min(...cpu[k]).toFixed(3)} median ${median(cpu[k]).toFixed(3)}\n`);
} finally {
  await s.close();
  rmSync(root, { recursive: true, force: true });
}
