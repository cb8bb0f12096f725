/**
 * The large mailbox: N small messages (corpus.smallMessage) in one INBOX, populated once per size and reused
 * from the bench cache (`.bench/`), then SELECT, UID FETCH 1:* of metadata, three UID SEARCHes, two UID SORTs and a
 * UID THREAD timed on it.
 *
 * - Ours is populated in-process through the real pipeline (bootApp + storeMessage: the same MIME ingest and
 *   storage commit as LMTP and APPEND), several stores at once, with SQLite `synchronous = normal` for speed.
 * - Dovecot's Maildir files are written directly; its first SELECT (the bench's warm-up) builds its index, which
 *   stays in the cache too.
 * A directory is reused only when its `complete` marker exists; delete `.bench/` to populate again.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootApp } from '../../protocols/server.ts';
import { resolveConfig } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import { internalContext } from '../../hooks/context.ts';
import { storeMessage } from '../../hooks/pipeline/index.ts';
import { createUser } from '../../storage/users.ts';
import { SEARCH_TERMS, smallMessage } from './corpus.ts';
import { giveToMailUser } from './dovecot-peer.ts';
import { ImapClient, ok } from './imap-client.ts';
import { BIG_USER, CACHE, DOMAIN, PASSWORD } from './peer.ts';
import { median } from './report.ts';
import { treeRunMs } from './proc-stats.ts';

export const oursLargeDir = (n: number): string => join(CACHE, `ours-${n}`);
export const dovecotLargeHome = (n: number): string => join(CACHE, `dovecot-${n}`, 'home');

/** Populates our cache directory for `n` messages unless it is complete; returns the seconds spent (0 if cached). */
export async function populateOurs(n: number, progress: (line: string) => void): Promise<number> {
  const root = oursLargeDir(n);
  if (existsSync(join(root, 'complete'))) return 0;
  const t0 = performance.now();
  rmSync(root, { recursive: true, force: true });
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { recursive: true });
  const config = resolveConfig({ dataDir, storage: { sqlite: { synchronous: 'normal' } } });
  const app = await bootApp(config, createLogger({ level: 'warn', format: 'json' }));
  try {
    const { user } = await createUser(app.storage, config, { username: BIG_USER, password: PASSWORD, addresses: [`${BIG_USER}@${DOMAIN}`] });
    const inbox = (await app.storage.mailboxes.getByPath(user.id, 'INBOX'))!;
    const ctx = internalContext(app.log);
    let next = 0;
    const base = Date.parse('2026-01-01T00:00:00Z');
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          const r = await storeMessage(app, ctx, { userId: user.id, mailboxId: inbox.id, flags: i % 3 ? ['\\Seen'] : [], internalDate: base + i * 60_000, source: smallMessage(i) });
          if (!r.ok) throw new Error(`populating ours: message ${i}: ${r.verdict.code} ${r.verdict.message}`);
          if (i % 10_000 === 9_999) progress(`ours: ${i + 1} of ${n} stored (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        }
      }),
    );
  } finally {
    await app.close();
  }
  writeFileSync(join(root, 'complete'), new Date().toISOString() + '\n');
  return (performance.now() - t0) / 1000;
}

/** Writes Dovecot's Maildir for `n` messages unless it is complete; returns the seconds spent (0 if cached). */
export function populateDovecot(n: number): number {
  const home = dovecotLargeHome(n);
  const marker = join(home, '..', 'complete');
  if (existsSync(marker)) return 0;
  const t0 = performance.now();
  rmSync(join(home, '..'), { recursive: true, force: true });
  const maildir = join(home, 'Maildir');
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, sub), { recursive: true });
  const base = Date.parse('2026-01-01T00:00:00Z') / 1000;
  for (let i = 0; i < n; i++) {
    const crlf = smallMessage(i);
    const lf = Buffer.from(Buffer.from(crlf).toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    // Maildir file name: unique part, S= physical size (LF), W= virtual size (CRLF), info with flags
    writeFileSync(join(maildir, 'cur', `${base + i * 60}.M${i}P1.bench,S=${lf.length},W=${crlf.length}:2,${i % 3 ? 'S' : ''}`), lf);
  }
  giveToMailUser(join(home, '..'));
  writeFileSync(marker, new Date().toISOString() + '\n');
  return (performance.now() - t0) / 1000;
}

export const LARGE_OPS = {
  select: 'SELECT INBOX',
  fetch: 'UID FETCH 1:* (UID FLAGS RFC822.SIZE)',
  searchSubject: `UID SEARCH SUBJECT ${SEARCH_TERMS.subject}`,
  searchFrom: `UID SEARCH FROM ${SEARCH_TERMS.from}`,
  searchText: `UID SEARCH TEXT ${SEARCH_TERMS.text}`,
  sortDate: 'UID SORT (DATE) UTF-8 ALL',
  sortSubject: 'UID SORT (SUBJECT) UTF-8 ALL',
  threadReferences: 'UID THREAD REFERENCES UTF-8 ALL',
} as const;
export type LargeOp = keyof typeof LARGE_OPS;

/** The FETCHes of the kinds imaptest's mix sends, over the whole mailbox (fetch-cpu.ts, the MongoDB rows). */
export const FETCHES = {
  flags: 'FETCH 1:* (UID FLAGS)',
  envelope: 'FETCH 1:* (UID ENVELOPE)',
  bodystructure: 'FETCH 1:* (BODYSTRUCTURE)',
  headers: 'FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (From To Subject References)])',
  body: 'FETCH 1:* (BODY.PEEK[])',
} as const;

export interface LargeResult<Op extends string = LargeOp> {
  /** Median milliseconds per op over the repeats (the warm-up round excluded). */
  medianMs: Record<Op, number>;
  runsMs: Record<Op, number[]>;
  warmupMs: Record<Op, number>;
  /** Messages in the mailbox (SELECT) and hits per SEARCH / FETCH lines, to check both servers agree. */
  counts: Record<Op, number>;
  /** With `cpuOf`: per process tree given, the median CPU ms (treeRunMs) it spent per op over the repeats. */
  medianCpuMs: Array<Record<Op, number>>;
}

function countOf(command: string, untagged: string[]): number {
  if (/^SELECT /.test(command)) return Number(/^\* (\d+) EXISTS/m.exec(untagged.join('\n'))?.[1] ?? -1);
  if (/FETCH /.test(command)) return untagged.filter((l) => / FETCH /.test(l)).length;
  // SEARCH and SORT: the numbers listed; THREAD: the messages in its threads
  const thread = untagged.find((l) => l.startsWith('* THREAD'));
  if (thread) return (thread.match(/\d+/g) ?? []).length;
  const search = untagged.find((l) => l.startsWith('* SEARCH') || l.startsWith('* SORT'));
  return search ? search.split(' ').length - 2 : -1;
}

export interface MeasureOptions<Op extends string> {
  /** The commands, run in this order each round (default LARGE_OPS). */
  ops?: Record<Op, string>;
  /** Who logs in (default BIG_USER). */
  user?: string;
  /** Roots of process trees whose CPU each op is measured on (treeRunMs: the server's, a database's). */
  cpuOf?: number[];
}

/** Logs in and runs every op once to warm up, then `repeats` more times. */
export async function measureLarge<Op extends string = LargeOp>(port: number, repeats: number, options: MeasureOptions<Op> = {}): Promise<LargeResult<Op>> {
  const opsTable = options.ops ?? (LARGE_OPS as unknown as Record<Op, string>);
  const cpuOf = options.cpuOf ?? [];
  const client = await ImapClient.connect(port);
  try {
    await client.login(options.user ?? BIG_USER, PASSWORD);
    const ops = Object.keys(opsTable) as Op[];
    const table = <T>(make: () => T) => Object.fromEntries(ops.map((op) => [op, make()])) as Record<Op, T>;
    const runs = table(() => [] as number[]);
    const cpuRuns = cpuOf.map(() => table(() => [] as number[]));
    const warmup = {} as Record<Op, number>;
    const counts = {} as Record<Op, number>;
    for (let round = 0; round <= repeats; round++) {
      for (const op of ops) {
        const cpu0 = cpuOf.map(treeRunMs);
        const t0 = performance.now();
        const reply = ok(await client.command(opsTable[op]), op);
        const ms = performance.now() - t0;
        const cpu = cpuOf.map((pid, k) => treeRunMs(pid) - cpu0[k]!);
        if (round === 0) {
          warmup[op] = ms;
          counts[op] = countOf(opsTable[op], reply.untagged);
        } else {
          runs[op].push(ms);
          cpu.forEach((c, k) => cpuRuns[k]![op].push(c));
        }
      }
    }
    const medians = (r: Record<Op, number[]>) => Object.fromEntries(ops.map((op) => [op, median(r[op])])) as Record<Op, number>;
    return { medianMs: medians(runs), runsMs: runs, warmupMs: warmup, counts, medianCpuMs: cpuRuns.map(medians) };
  } finally {
    await client.logout();
  }
}
