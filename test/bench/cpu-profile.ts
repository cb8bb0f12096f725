/**
 * `tsx test/bench/cpu-profile.ts FILE.cpuprofile... [--top N] [--filter TEXT] [--window NAME]`: the functions with
 * the most self time and the most total time (self + callees, each function counted once per sample), and the self
 * time per source file, across V8 CPU
 * profiles, e.g. the ones `WD_BENCH_PROF=DIR npm run bench` makes our server write (test/bench/ours-peer.ts).
 * --window keeps only the samples taken during the bench workloads whose name contains NAME (DIR/windows.json,
 * written by test/bench/run.ts next to the profiles).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { argv, writeOut } from '../../hooks/runtime.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values: flags, positionals: files } = parseArgs({
  args: argv(),
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, filter: { type: 'string' }, window: { type: 'string' }, callers: { type: 'string' } },
});

const windows = flags.window
  ? (JSON.parse(readFileSync(join(dirname(files[0]!), 'windows.json'), 'utf8')) as Array<{ name: string; from: number; to: number }>).filter((w) =>
      w.name.includes(flags.window!),
    )
  : undefined;
const kept = (t: number) => !windows || windows.some((w) => t >= w.from && t < w.to);

const self = new Map<string, number>();
/** --callers NAME: the call paths (3 frames up) of samples whose own function's name contains NAME. */
const callers = new Map<string, number>();
const total = new Map<string, number>();
/** Self time per source file. */
const byFile = new Map<string, number>();
let all = 0;
let idle = 0;
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfileNode) => {
    const f = n.callFrame;
    const where = f.url.replace(/^file:\/\//, '').replace(/^.*?\/(node_modules|protocols|storage|hooks|plugins|test)\//, '$1/');
    return `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`;
  };
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    t += us;
    if (!kept(t)) return;
    const node = byId.get(id)!;
    all += us;
    if (node.callFrame.functionName === '(idle)') idle += us;
    add(self, name(node), us);
    add(byFile, node.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|protocols|storage|hooks|plugins|test)\//, '$1/') || '(native)', us);
    if (flags.callers && name(node).includes(flags.callers)) {
      const path: string[] = [];
      for (let at = parent.get(id); at !== undefined && path.length < 3; at = parent.get(at)) path.push(name(byId.get(at)!));
      add(callers, path.join(' < '), us);
    }
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = name(byId.get(at)!);
      if (!seen.has(k)) add(total, k, us), seen.add(k);
    }
  });
}

const top = Number(flags.top);
const busy = all - idle;
const show = (title: string, m: Map<string, number>) => {
  writeOut(`\n${title} (ms, % of ${(busy / 1000).toFixed(0)} ms busy; ${(idle / 1000).toFixed(0)} ms idle)\n`);
  [...m]
    .filter(([k]) => !flags.filter || k.includes(flags.filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, us]) => writeOut(`${(us / 1000).toFixed(1).padStart(9)} ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}\n`));
};
if (flags.callers) show(`callers of ${flags.callers}`, callers);
show('self time', self);
show('total time', total);
show('self time by file', byFile);
