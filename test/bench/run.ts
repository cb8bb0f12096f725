/**
 * `npm run bench [-- --quick] [-- --only ingest,large,idle,mix] [-- --keep]`: this server against Dovecot on the
 * same machine, workload by workload, alternating which server goes first. Prints one table and writes it as
 * JSON under `.bench/results/`. What each workload does: README.md "Performance", and the file named after it.
 *
 * --quick: 60 messages per ingest workload, a 10,000-message large mailbox, 1,000 IDLE sessions, 6 s per mixed
 * load (under 3 minutes once the large mailbox is cached). Full: 500 / 100,000 / 1,000 and 10,000 / 30 s, and the
 * ingest workloads run in 3 rounds on fresh messages, each row the median of its rounds (one 500-message run of
 * either server varies by up to a third between runs on this machine).
 * Before the ingest workloads both servers take WARMUP text messages by LMTP and by APPEND, not measured (ingest.ts).
 */
import { parseArgs } from 'node:util';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { hrtime } from 'node:process';
import { join } from 'node:path';
import { argv, env, runtimeVersion, writeErr, writeOut } from '../../protocols/runtime.ts';
import { dataBlock, ingestMessage } from './corpus.ts';
import { dovecotVersion, ensureDovecot, startDovecot } from './dovecot-peer.ts';
import { idleMemory, type IdleStep } from './idle.ts';
import { appendIngest, lmtpIngest, warmUp, type IngestResult } from './ingest.ts';
import { LARGE_OPS, dovecotLargeHome, measureLarge, oursLargeDir, populateDovecot, populateOurs, type LargeOp } from './large-mailbox.ts';
import { runImaptest, type ImaptestVariant } from './imaptest.ts';
import { runMix, seedMix, type MixOptions } from './mix.ts';
import { profileWindow, startOurs } from './ours-peer.ts';
import { BENCH_USERS, BIG_USER, CACHE, INGEST_USER, MIX_CLIENTS as CLIENTS, type Peer } from './peer.ts';
import { formatTable, toJson, type BenchResult, type Row } from './report.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, keep: { type: 'boolean', default: false } },
});
const quick = flags.quick!;
const plan = quick
  ? { ingest: 60, ingestRounds: 1, large: 10_000, repeats: 3, idle: [1_000], idleSettleMs: 2_000, mixSeconds: 6 }
  : { ingest: 500, ingestRounds: 3, large: 100_000, repeats: 5, idle: [1_000, 10_000], idleSettleMs: 60_000, mixSeconds: 30 };
/** Messages each server takes by LMTP and by APPEND before the ingest workloads (ingest.ts warmUp). */
const WARMUP = 40;
const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes.subarray(0, 2048));
const only = new Set((flags.only ?? 'ingest,large,idle,mix').split(',').map((s) => s.trim()));

const t0 = performance.now();
const log = (line: string) => writeErr(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const rows: Row[] = [];
const details: Record<string, unknown> = { plan };
const row = (workload: string, unit: string, better: Row['better'], ours: number | null, dovecot: number | null, note?: string) =>
  rows.push({ workload, unit, better, ours, dovecot, ...(note ? { note } : {}) });

/** Runs `fn` on both servers, ours first on even workloads and Dovecot first on odd ones. */
let turn = 0;
async function both<T>(peers: { ours: Peer; dovecot: Peer }, what: string, fn: (peer: Peer) => Promise<T>): Promise<{ ours: T; dovecot: T }> {
  const order: Array<'ours' | 'dovecot'> = turn++ % 2 === 0 ? ['ours', 'dovecot'] : ['dovecot', 'ours'];
  const out = {} as { ours: T; dovecot: T };
  for (const name of order) {
    const started = performance.now();
    const from = hrtime.bigint();
    out[name] = await fn(peers[name]);
    if (name === 'ours') profileWindow(what, from, hrtime.bigint());
    log(`${what}: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  details[what] = out;
  return out;
}

ensureDovecot(log);
const root = mkdtempSync(join(tmpdir(), 'wd-bench-'));
chmodSync(root, 0o755); // Dovecot's unprivileged processes read below it
mkdirSync(join(root, 'ours'));
log(`working in ${root}; cache in ${CACHE}`);

// the large mailbox: populated once per size, reused afterwards
if (only.has('large')) {
  const d = populateDovecot(plan.large);
  if (d) log(`Dovecot's ${plan.large}-message Maildir written in ${d.toFixed(1)} s`);
  const o = await populateOurs(plan.large, log);
  if (o) log(`our ${plan.large}-message mailbox populated in ${o.toFixed(1)} s`);
  details.largePopulationSeconds = { ours: o || 'cached', dovecot: d || 'cached' };
}

const started = await Promise.allSettled([
  startOurs(join(root, 'ours'), join(root, 'ours.log'), BENCH_USERS),
  startDovecot(join(root, 'dovecot'), [
    ...BENCH_USERS.map((name) => ({ name, home: join(root, 'dovecot', 'mail', name) })),
    { name: BIG_USER, home: dovecotLargeHome(plan.large) },
  ]),
]);
const failed = started.find((s) => s.status === 'rejected');
if (failed) {
  for (const s of started) if (s.status === 'fulfilled') await s.value.stop();
  throw failed.reason;
}
const [ours, dovecot] = started.map((s) => (s as PromiseFulfilledResult<Peer>).value) as [Peer, Peer];
const peers = { ours, dovecot };
log(`servers up: ours imap ${peers.ours.imapPort} lmtp ${peers.ours.lmtpPort}; Dovecot imap ${peers.dovecot.imapPort} lmtp ${peers.dovecot.lmtpPort}`);

try {
  if (only.has('ingest')) {
    const n = plan.ingest;
    // round r, workload k takes slice r * 4 + k of the corpus: fresh messages every time (a Message-ID is never seen twice)
    const slice = (k: number) => Array.from({ length: n }, (_, i) => ingestMessage(k * n + i));
    log(`corpus: ${plan.ingestRounds} round(s) of 4 × ${n} messages`);
    // steady state, not a cold start: text-only messages from far outside the measured slices (no pool attachment)
    const warm = Array.from({ length: 400 }, (_, i) => ingestMessage(1_000_000 + i)).filter((m) => !textOf(m).includes('multipart/mixed')).slice(0, WARMUP);
    await both(peers, `warm-up (${warm.length} messages by LMTP and by APPEND, not measured)`, (p) => warmUp(p, warm));
    const names = ['LMTP delivery, 1 connection', 'LMTP delivery, 4 connections', 'IMAP APPEND, 1 connection', 'IMAP APPEND, 4 connections'];
    const results = names.map(() => ({ ours: [] as IngestResult[], dovecot: [] as IngestResult[] }));
    let firstRound: { raw: number; ours: number; dovecot: number } | null = null;
    for (let round = 0; round < plan.ingestRounds; round++) {
      const corpora = [0, 1, 2, 3].map((k) => slice(round * 4 + k));
      const bytes = corpora.map((c) => c.reduce((sum, m) => sum + m.length, 0));
      const blocks = corpora.slice(0, 2).map((c) => c.map(dataBlock));
      log(`round ${round + 1}: ${4 * n} messages, ${(bytes.reduce((a, b) => a + b, 0) / 1e6).toFixed(1)} MB (${(bytes[0]! / n / 1024).toFixed(0)} KB average)`);
      const runs: Array<(p: Peer) => Promise<IngestResult>> = [
        (p) => lmtpIngest(p, blocks[0]!, bytes[0]!, 1),
        (p) => lmtpIngest(p, blocks[1]!, bytes[1]!, 4),
        (p) => appendIngest(p, corpora[2]!, bytes[2]!, 1),
        (p) => appendIngest(p, corpora[3]!, bytes[3]!, 4),
      ];
      for (const [k, fn] of runs.entries()) {
        const suffix = plan.ingestRounds > 1 ? ` (round ${round + 1})` : '';
        const r = await both(peers, `${names[k]}${suffix}`, fn);
        results[k]!.ours.push(r.ours);
        results[k]!.dovecot.push(r.dovecot);
      }
      // stored/raw after the first round's 4 × n messages: more rounds would share the attachment pool further
      if (round === 0) {
        const raw = bytes.reduce((a, b) => a + b, 0);
        firstRound = { raw, ours: peers.ours.storedBytes(INGEST_USER), dovecot: peers.dovecot.storedBytes(INGEST_USER) };
      }
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    const spread = (values: number[]) => values.map((v) => v.toFixed(0)).join(' / ');
    for (const [k, name] of names.entries()) {
      const { ours, dovecot } = results[k]!;
      const note = plan.ingestRounds > 1 ? `median of ${plan.ingestRounds} rounds; ours ${spread(ours.map((r) => r.perSecond))}, Dovecot ${spread(dovecot.map((r) => r.perSecond))}` : undefined;
      row(name, 'msg/s', 'higher', median(ours.map((r) => r.perSecond)), median(dovecot.map((r) => r.perSecond)), note);
    }
    for (const [k, name] of names.entries()) {
      const { ours, dovecot } = results[k]!;
      row(`server CPU per message: ${name}`, 'ms', 'lower', median(ours.map((r) => r.cpuMsPerMessage)), median(dovecot.map((r) => r.cpuMsPerMessage)));
    }
    details.storedBytes = firstRound;
    row('stored / raw bytes after the ingest workloads', 'ratio', 'lower', firstRound!.ours / firstRound!.raw, firstRound!.dovecot / firstRound!.raw, plan.ingestRounds > 1 ? 'after the first round' : undefined);
  }

  if (only.has('large')) {
    const oursLarge = await startOurs(join(oursLargeDir(plan.large), 'data'), join(root, 'ours-large.log'), []);
    try {
      const r = await both({ ours: oursLarge, dovecot: peers.dovecot }, `large mailbox (${plan.large})`, (p) => measureLarge(p.imapPort, plan.repeats));
      const label: Record<LargeOp, string> = {
        select: 'SELECT INBOX',
        fetch: 'UID FETCH 1:* (UID FLAGS RFC822.SIZE)',
        searchSubject: 'UID SEARCH SUBJECT',
        searchFrom: 'UID SEARCH FROM',
        searchText: 'UID SEARCH TEXT',
      };
      for (const op of Object.keys(LARGE_OPS) as LargeOp[]) {
        const agree = r.ours.counts[op] === r.dovecot.counts[op];
        row(`${label[op]}, ${plan.large.toLocaleString('en-US')} messages`, 'ms', 'lower', r.ours.medianMs[op], r.dovecot.medianMs[op], agree ? undefined : `counts differ: ${r.ours.counts[op]} vs ${r.dovecot.counts[op]}`);
      }
      // the warm-up round's SELECT: the first after the server started (our index read from its snapshot, or in full
      // on the first run after population; Dovecot's index files from disk, or built on its first run)
      row(`SELECT INBOX, first after start, ${plan.large.toLocaleString('en-US')} messages`, 'ms', 'lower', r.ours.warmupMs.select, r.dovecot.warmupMs.select);
    } finally {
      await oursLarge.stop();
    }
  }

  if (only.has('idle')) {
    const r = await both(peers, `idle ${plan.idle.join(', ')}`, (p) => idleMemory(p, plan.idle, plan.idleSettleMs));
    const held = (x: IdleStep) => `${x.ready} held, ${x.errors} failed`;
    const settle = `after ${plan.idleSettleMs / 1000} s idle`;
    for (const [k, n] of plan.idle.entries()) {
      const o = r.ours.steps[k]!;
      const d = r.dovecot.steps[k]!;
      const at2s = `2 s after: ours ${(o.pssPerSessionAt2s / 1024).toFixed(1)}, Dovecot ${(d.pssPerSessionAt2s / 1024).toFixed(0)} KB`;
      row(`idle memory per IMAP session (PSS, ${settle}), ${n.toLocaleString('en-US')} IDLE`, 'KB', 'lower', o.pssPerSession / 1024, d.pssPerSession / 1024, `ours ${held(o)}; Dovecot ${held(d)}; ${at2s}`);
      row(`idle memory per IMAP session (RSS sum, ${settle}), ${n.toLocaleString('en-US')} IDLE`, 'KB', 'lower', o.rssPerSession / 1024, d.rssPerSession / 1024);
    }
  }

  if (only.has('mix')) {
    await Promise.all([seedMix(peers.ours, CLIENTS), seedMix(peers.dovecot, CLIENTS)]);
    const variants: Array<[string, MixOptions]> = [
      [`mixed IMAP load, ${CLIENTS} clients, logins included`, { clients: CLIENTS, seconds: plan.mixSeconds, keepSessions: false, pipelining: true }],
      [`the same mix, sessions kept (no LOGOUT)`, { clients: CLIENTS, seconds: plan.mixSeconds, keepSessions: true, pipelining: true }],
      ['the mix, 1 client, no pipelining', { clients: 1, seconds: plan.mixSeconds, keepSessions: false, pipelining: false }],
    ];
    for (const [name, options] of variants) {
      const r = await both(peers, name, (p) => runMix(p, options));
      const errs = `errors: ours ${r.ours.errors}, Dovecot ${r.dovecot.errors}`;
      row(name, 'cmds/s', 'higher', r.ours.commandsPerSecond, r.dovecot.commandsPerSecond, errs);
      if (!options.keepSessions) row(`logins per second (${name})`, 'logins/s', 'higher', r.ours.loginsPerSecond, r.dovecot.loginsPerSecond);
      row(`server CPU per command (${name})`, 'ms', 'lower', r.ours.cpuMsPerCommand, r.dovecot.cpuMsPerCommand);
    }
    const imaptest = env().IMAPTEST;
    if (imaptest) {
      const imaptestVariants: Array<[string, ImaptestVariant]> = [
        [`imaptest default mix, ${CLIENTS} clients`, { clients: CLIENTS, logouts: true, pipelining: true }],
        [`imaptest, sessions kept (logout=0), ${CLIENTS} clients`, { clients: CLIENTS, logouts: false, pipelining: true }],
        ['imaptest, 1 client, no pipelining', { clients: 1, logouts: true, pipelining: false }],
      ];
      for (const [name, variant] of imaptestVariants) {
        const r = await both(peers, name, (p) => runImaptest(imaptest, p, root, plan.mixSeconds, variant));
        row(name, 'cmds/s', 'higher', r.ours.commandsPerSecond, r.dovecot.commandsPerSecond, `errors: ours ${r.ours.errors}, Dovecot ${r.dovecot.errors}`);
        row(`server CPU per command (${name})`, 'ms', 'lower', r.ours.cpuMsPerCommand, r.dovecot.cpuMsPerCommand);
      }
    }
  }
  // a slot for the MongoDB + Redis backend's rows, once it exists
  row('MongoDB backend rows', '', 'higher', null, null, 'backend not built yet');
} finally {
  await Promise.all([peers.ours.stop(), peers.dovecot.stop()]);
  if (!flags.keep) rmSync(root, { recursive: true, force: true });
  else log(`kept ${root}`);
}

const result: BenchResult = {
  startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
  durationSeconds: (performance.now() - t0) / 1000,
  mode: quick ? 'quick' : 'full',
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: runtimeVersion, dovecot: dovecotVersion() },
  rows,
  details,
};
const resultsDir = join(CACHE, 'results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `bench-${result.startedAt.replace(/[:.]/g, '-')}-${result.mode}.json`);
writeFileSync(file, toJson(result));
writeOut(
  `\n${formatTable(rows)}\n\n${result.mode} run, ${result.durationSeconds.toFixed(0)} s, ${result.machine.cpus} × ${result.machine.cpuModel}, ` +
    `Node ${result.machine.node}, ${result.machine.dovecot}\nJSON: ${file}\n`,
);
