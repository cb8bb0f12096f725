/**
 * `tsx test/bench/append-cpu.ts [--messages N] [--rounds R] [--batch B]`: the storage append alone (no protocol, no
 * hooks), CPU per message. Ingests N corpus messages (bench corpus.ts), then appends them B at a time (B = 1: one
 * per group commit, as one connection does; 4: as four) into one mailbox of a fresh durable SQLite store, R rounds;
 * prints process CPU ms per message for ingest (parse, hash, blob staging) and for append (SQL, search row, commit,
 * fsync, search indexing), min and median of the rounds. For before/after comparisons of the ingest path's storage costs.
 * WD_INDEX_DELAY_MS: the search indexer's delay (search-indexer.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuUsage, env } from 'node:process';
import { parseArgs } from 'node:util';
import { argv, writeOut } from '../../hooks/runtime.ts';
import { createUser } from '../../storage/users.ts';
import { resolveConfig } from '../../hooks/config.ts';
import { ingestMessage } from '../../storage/mime/ingest.ts';
import { openSqliteStorage } from '../../storage/sqlite/index.ts';
import { ingestMessage as corpusMessage } from './corpus.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: { messages: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' }, batch: { type: 'string', default: '1' } },
});
const n = Number(flags.messages);
const batch = Number(flags.batch);
const cpuMs = (from: NodeJS.CpuUsage) => {
  const d = cpuUsage(from);
  return (d.user + d.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = mkdtempSync(join(tmpdir(), 'wd-append-cpu-'));
const s = await openSqliteStorage({ dataDir: join(root, 'data'), searchIndexer: { delayMs: Number(env.WD_INDEX_DELAY_MS ?? 500) } });
const ingestCpu: number[] = [];
const appendCpu: number[] = [];
try {
  const { user } = await createUser(s, resolveConfig({ dataDir: join(root, 'data') }), { username: 'bench', password: null });
  const inbox = (await s.mailboxes.getByPath(user.id, 'INBOX'))!;
  let next = 0;
  for (let r = 0; r < Number(flags.rounds); r++) {
    const raw = Array.from({ length: n }, () => corpusMessage(next++));
    let from = cpuUsage();
    const messages = [];
    for (const bytes of raw) messages.push(await ingestMessage(bytes, s.blobs));
    ingestCpu.push(cpuMs(from) / n);
    from = cpuUsage();
    for (let i = 0; i < n; i += batch) {
      await Promise.all(messages.slice(i, i + batch).map((message) => s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message })));
    }
    s.searchIndexer.flush(); // what is left to index counts too
    appendCpu.push(cpuMs(from) / n);
  }
  writeOut(`${n} messages x ${flags.rounds} rounds, batch ${batch}\n`);
  writeOut(`ingest CPU ms/msg min ${Math.min(...ingestCpu).toFixed(3)} median ${median(ingestCpu).toFixed(3)}\n`);
  writeOut(`append CPU ms/msg min ${Math.min(...appendCpu).toFixed(3)} median ${median(appendCpu).toFixed(3)}\n`);
} finally {
  await s.close();
  rmSync(root, { recursive: true, force: true });
}
