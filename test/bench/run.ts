/**
 * `npm run bench [-- --quick] [-- --only ingest,large,idle,mix,mongodb] [-- --keep]`: this server against Dovecot on
 * the same machine, workload by workload, alternating which server goes first. Prints one table and writes it as
 * JSON under `.bench/results/`. What each workload does: README.md "Performance", and the file named after it.
 * The `mongodb` group runs a third peer, this server on the MongoDB backend (mongo-peer.ts: on the stand-in, an
 * in-process JavaScript server in a process of its own, unless WILDDUCK_TEST_MONGODB_URL names a real server).
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
import { argv, env, runtimeVersion, writeErr, writeOut } from '../../hooks/runtime.ts';
import { dataBlock, ingestMessage, smallMessage } from './corpus.ts';
import { dovecotVersion, ensureDovecot, startDovecot } from './dovecot-peer.ts';
import { idleMemory, type IdleStep } from './idle.ts';
import { appendIngest, lmtpIngest, warmUp, type IngestResult } from './ingest.ts';
import { FETCHES, LARGE_OPS, dovecotLargeHome, measureLarge, oursLargeDir, populateDovecot, populateOurs, type LargeOp } from './large-mailbox.ts';
import { runImaptest, type ImaptestVariant } from './imaptest.ts';
import { runMix, seedMix, type MixOptions } from './mix.ts';
import { mongoLabel, startMongoBackend } from './mongo-peer.ts';
import { profileWindow, startOurs } from './ours-peer.ts';
import { BENCH_USERS, BIG_USER, CACHE, FETCH_USER, INGEST_USER, MIX_CLIENTS as CLIENTS, WARMUP_USER, type Peer } from './peer.ts';
import { benchPlan, selectGroups } from './plan.ts';
import { treeCpuMs } from './proc-stats.ts';
import { formatFigure, formatTable, median, toJson, type BenchResult, type Row } from './report.ts';

const { values: flags } = parseArgs({
  args: argv(),
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, keep: { type: 'boolean', default: false } },
});
const quick = flags.quick!;
const plan = benchPlan(quick);
/** Messages each server takes by LMTP and by APPEND before the ingest workloads (ingest.ts warmUp). */
const WARMUP = 40;
const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes.subarray(0, 2048));
const only = selectGroups(flags.only);

const t0 = performance.now();
const log = (line: string) => writeErr(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const rows: Row[] = [];
const details: Record<string, unknown> = { plan };
/** The four ingest workloads, in the order they run (ingestRound). */
const INGEST_NAMES = ['LMTP delivery, 1 connection', 'LMTP delivery, 4 connections', 'IMAP APPEND, 1 connection', 'IMAP APPEND, 4 connections'];
/** Where in the corpus the warm-up messages and the MongoDB group's messages start: far from the ingest group's slices. */
const WARM_FROM = 1_000_000;
const MONGO_WARM_FROM = 1_100_000;
const MONGO_CORPUS_FROM = 500_000;

/** One round of the four ingest workloads, each on `n` corpus messages of its own from `first` on: their bytes and runs. */
function ingestRound(first: number, n: number): { bytes: number[]; runs: Array<(p: Peer) => Promise<IngestResult>> } {
  const corpora = [0, 1, 2, 3].map((k) => Array.from({ length: n }, (_, i) => ingestMessage(first + k * n + i)));
  const bytes = corpora.map((c) => c.reduce((sum, m) => sum + m.length, 0));
  const blocks = corpora.slice(0, 2).map((c) => c.map(dataBlock));
  return {
    bytes,
    runs: [
      (p) => lmtpIngest(p, blocks[0]!, bytes[0]!, 1),
      (p) => lmtpIngest(p, blocks[1]!, bytes[1]!, 4),
      (p) => appendIngest(p, corpora[2]!, bytes[2]!, 1),
      (p) => appendIngest(p, corpora[3]!, bytes[3]!, 4),
    ],
  };
}

/** Steady state, not a cold start: WARMUP text-only messages from `from` on, far outside the measured slices (no pool attachment). */
const warmCorpus = (from: number) =>
  Array.from({ length: 400 }, (_, i) => ingestMessage(from + i)).filter((m) => !textOf(m).includes('multipart/mixed')).slice(0, WARMUP);

const row = (workload: string, unit: string, better: Row['better'], ours: number | null, dovecot: number | null, note?: string) =>
  rows.push({ workload, unit, better, ours, dovecot, ...(note ? { note } : {}) });

/** Runs `fn` on every server given, one after the other, a different one first on each workload (ours first on even ones). */
let turn = 0;
async function each<K extends string, T>(peers: Record<K, Peer>, what: string, fn: (peer: Peer) => Promise<T>): Promise<Record<K, T>> {
  const names = Object.keys(peers) as K[];
  const first = turn++ % names.length;
  const order = [...names.slice(first), ...names.slice(0, first)];
  const out = {} as Record<K, T>;
  for (const name of order) {
    const started = performance.now();
    const from = hrtime.bigint();
    out[name] = await fn(peers[name]);
    if (peers[name].name === 'ours') profileWindow(`${what}${name === 'ours' ? '' : ` (${name})`}`, from, hrtime.bigint());
    log(`${what}: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  details[what] = out;
  return out;
}

// without Dovecot only the MongoDB group runs, its rows ours only (the Dovecot column empty)
let noDovecot: string | null = null;
try {
  ensureDovecot(log);
} catch (err) {
  if ([...only].some((g) => g !== 'mongodb')) throw err;
  noDovecot = (err as Error).message;
  log(`no Dovecot (${noDovecot}): the MongoDB rows show ours only`);
}
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
  noDovecot
    ? null
    : startDovecot(join(root, 'dovecot'), [
        ...BENCH_USERS.map((name) => ({ name, home: join(root, 'dovecot', 'mail', name) })),
        { name: BIG_USER, home: dovecotLargeHome(plan.large) },
      ]),
]);
const failed = started.find((s) => s.status === 'rejected');
if (failed) {
  for (const s of started) if (s.status === 'fulfilled') await s.value?.stop();
  throw failed.reason;
}
const [ours, dovecot] = started.map((s) => (s as PromiseFulfilledResult<Peer | null>).value) as [Peer, Peer | null];
/** Every group but the MongoDB one runs only with Dovecot (above). */
const peers = { ours, dovecot: dovecot! };
log(`servers up: ours imap ${ours.imapPort} lmtp ${ours.lmtpPort}; ${dovecot ? `Dovecot imap ${dovecot.imapPort} lmtp ${dovecot.lmtpPort}` : 'no Dovecot'}`);

try {
  if (only.has('ingest')) {
    const n = plan.ingest;
    log(`corpus: ${plan.ingestRounds} round(s) of 4 × ${n} messages`);
    await each(peers, `warm-up (${WARMUP} messages by LMTP and by APPEND, not measured)`, (p) => warmUp(p, warmCorpus(WARM_FROM)));
    const names = INGEST_NAMES;
    const results = names.map(() => ({ ours: [] as IngestResult[], dovecot: [] as IngestResult[] }));
    let firstRound: { raw: number; ours: number; dovecot: number } | null = null;
    for (let round = 0; round < plan.ingestRounds; round++) {
      // round r, workload k takes slice r * 4 + k of the corpus: fresh messages every time (a Message-ID is never seen twice)
      const { bytes, runs } = ingestRound(round * 4 * n, n);
      log(`round ${round + 1}: ${4 * n} messages, ${(bytes.reduce((a, b) => a + b, 0) / 1e6).toFixed(1)} MB (${(bytes[0]! / n / 1024).toFixed(0)} KB average)`);
      for (const [k, fn] of runs.entries()) {
        const suffix = plan.ingestRounds > 1 ? ` (round ${round + 1})` : '';
        const r = await each(peers, `${names[k]}${suffix}`, fn);
        results[k]!.ours.push(r.ours);
        results[k]!.dovecot.push(r.dovecot);
      }
      // stored/raw after the first round's 4 × n messages: more rounds would share the attachment pool further
      if (round === 0) {
        const raw = bytes.reduce((a, b) => a + b, 0);
        firstRound = { raw, ours: peers.ours.storedBytes(INGEST_USER), dovecot: peers.dovecot.storedBytes(INGEST_USER) };
      }
    }
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
      const r = await each({ ours: oursLarge, dovecot: peers.dovecot }, `large mailbox (${plan.large})`, (p) => measureLarge(p.imapPort, plan.repeats));
      const label: Record<LargeOp, string> = {
        select: 'SELECT INBOX',
        fetch: 'UID FETCH 1:* (UID FLAGS RFC822.SIZE)',
        searchSubject: 'UID SEARCH SUBJECT',
        searchFrom: 'UID SEARCH FROM',
        searchText: 'UID SEARCH TEXT',
        sortDate: 'UID SORT (DATE) ALL',
        sortSubject: 'UID SORT (SUBJECT) ALL',
        threadReferences: 'UID THREAD REFERENCES ALL',
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
    const r = await each(peers, `idle ${plan.idle.join(', ')}`, (p) => idleMemory(p, plan.idle, plan.idleSettleMs));
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
      const r = await each(peers, name, (p) => runMix(p, options));
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
        const r = await each(peers, name, (p) => runImaptest(imaptest, p, root, plan.mixSeconds, variant));
        row(name, 'cmds/s', 'higher', r.ours.commandsPerSecond, r.dovecot.commandsPerSecond, `errors: ours ${r.ours.errors}, Dovecot ${r.dovecot.errors}`);
        row(`server CPU per command (${name})`, 'ms', 'lower', r.ours.cpuMsPerCommand, r.dovecot.cpuMsPerCommand);
      }
    }
  }
  if (only.has('mongodb')) await mongodbGroup();
} finally {
  await Promise.all([ours.stop(), dovecot?.stop()]);
  if (!flags.keep) rmSync(root, { recursive: true, force: true });
  else log(`kept ${root}`);
}

/**
 * The MongoDB backend (mongo-peer.ts) as a third peer: the ingest workloads on one round of fresh messages, then
 * FETCHes on a mailbox of plan.mongoMailbox small messages (APPENDed, not measured), each against Dovecot and,
 * in the note, our embedded backend on the same messages. On the stand-in each row says so, and the stand-in's own
 * CPU (its process apart from our server's) is in the CPU rows' notes.
 */
async function mongodbGroup(): Promise<void> {
  const mongo = await startMongoBackend(join(root, 'mongodb.log'));
  let oursMongo: Peer | null = null;
  try {
    const dataDir = join(root, 'ours-mongodb');
    mkdirSync(dataDir);
    oursMongo = await startOurs(dataDir, join(root, 'ours-mongodb.log'), [WARMUP_USER, INGEST_USER, FETCH_USER], mongo.env);
    log(`MongoDB peer up (${mongo.standIn ? `stand-in, pid ${mongo.pid}` : 'real MongoDB'}): imap ${oursMongo.imapPort} lmtp ${oursMongo.lmtpPort}`);
    const trio = { ours: oursMongo, ...(dovecot && { dovecot }), embedded: ours } as Record<'ours' | 'dovecot' | 'embedded', Peer>;
    const label = (workload: string) => mongoLabel(workload, mongo.standIn);
    const standInCpuMs = () => (mongo.pid === null ? 0 : treeCpuMs(mongo.pid));
    /** `each` on the three peers (Dovecot's figure null without it); `standInMs`: the stand-in's CPU during the MongoDB peer's turn. */
    const onTrio = async <T>(what: string, fn: (p: Peer) => Promise<T>) => {
      let standInMs = 0;
      const r = await each(trio, `MongoDB group: ${what}`, async (p) => {
        if (p !== oursMongo) return fn(p);
        const c0 = standInCpuMs();
        const out = await fn(p);
        standInMs = standInCpuMs() - c0;
        return out;
      });
      return { ours: r.ours, embedded: r.embedded, dovecot: dovecot ? r.dovecot : null, standInMs };
    };
    const standInNote = (ms: string) => (mongo.standIn ? `stand-in's own process ${ms} ms more` : 'the MongoDB server\'s CPU not measured');
    const noteOf = (parts: Array<string | null | false>) => [...parts, !dovecot && 'Dovecot not installed: ours only'].filter(Boolean).join('; ');

    await onTrio(`warm-up (${WARMUP} messages by LMTP and by APPEND, not measured)`, (p) => warmUp(p, warmCorpus(MONGO_WARM_FROM)));
    const n = plan.mongoIngest;
    const { runs } = ingestRound(MONGO_CORPUS_FROM, n);
    const ingest = [];
    for (const [k, fn] of runs.entries()) ingest.push(await onTrio(INGEST_NAMES[k]!, fn));
    for (const [k, name] of INGEST_NAMES.entries()) {
      const r = ingest[k]!;
      row(label(name), 'msg/s', 'higher', r.ours.perSecond, r.dovecot?.perSecond ?? null, noteOf([`${n} messages`, `embedded backend ${formatFigure(r.embedded.perSecond)} msg/s`]));
    }
    for (const [k, name] of INGEST_NAMES.entries()) {
      const r = ingest[k]!;
      const note = noteOf([standInNote(formatFigure(r.standInMs / n)), `embedded backend ${formatFigure(r.embedded.cpuMsPerMessage)} ms`]);
      row(label(`server CPU per message: ${name}`), 'ms', 'lower', r.ours.cpuMsPerMessage, r.dovecot?.cpuMsPerMessage ?? null, note);
    }

    const size = plan.mongoMailbox;
    const small = Array.from({ length: size }, (_, i) => smallMessage(i));
    const populated = await onTrio(`FETCH mailbox of ${size} messages (APPEND, 4 connections, not measured)`, (p) =>
      appendIngest(p, small, small.reduce((sum, m) => sum + m.length, 0), 4, FETCH_USER),
    );
    log(`FETCH mailbox populated: ours on MongoDB ${populated.ours.perSecond.toFixed(0)} msg/s, embedded ${populated.embedded.perSecond.toFixed(0)}, Dovecot ${populated.dovecot?.perSecond.toFixed(0) ?? '–'}`);
    const ops = { select: LARGE_OPS.select, metadata: LARGE_OPS.fetch, headers: FETCHES.headers, body: FETCHES.body };
    const r = await onTrio(`FETCH, ${size} messages`, (p) =>
      measureLarge(p.imapPort, plan.repeats, { ops, user: FETCH_USER, cpuOf: p === oursMongo && mongo.pid !== null ? [p.pid, mongo.pid] : [p.pid] }),
    );
    type Op = keyof typeof ops;
    const cpu = (x: { medianCpuMs: Array<Record<Op, number>> }, op: Op, k = 0) => formatFigure(x.medianCpuMs[k]![op]);
    for (const op of Object.keys(ops) as Op[]) {
      const counts = new Set([r.ours, r.dovecot, r.embedded].map((x) => x?.counts[op]).filter((c) => c !== undefined));
      const note = noteOf([
        `server CPU per command ours ${cpu(r.ours, op)}${r.dovecot ? `, Dovecot ${cpu(r.dovecot, op)}` : ''} ms`,
        mongo.standIn && `stand-in ${cpu(r.ours, op, 1)} ms`,
        `embedded backend ${formatFigure(r.embedded.medianMs[op])} ms (CPU ${cpu(r.embedded, op)})`,
        counts.size > 1 && `counts differ: ours ${r.ours.counts[op]}, Dovecot ${r.dovecot?.counts[op]}, embedded ${r.embedded.counts[op]}`,
      ]);
      row(label(`${ops[op]}, ${size.toLocaleString('en-US')} messages`), 'ms', 'lower', r.ours.medianMs[op], r.dovecot?.medianMs[op] ?? null, note);
    }
  } finally {
    await oursMongo?.stop();
    await mongo.stop();
  }
}

const result: BenchResult = {
  startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
  durationSeconds: (performance.now() - t0) / 1000,
  mode: quick ? 'quick' : 'full',
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: runtimeVersion, dovecot: noDovecot ? 'none' : dovecotVersion() },
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
