/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): the functions with the most self time and the most
 * total time (self + callees, each function counted once per stack) and the self time per source file, merged over
 * every file given.
 *
 *   node --import tsx test/bench/cpuprofile-summary.ts [--top N] [--callers NAME] FILE.cpuprofile...
 *
 * --callers NAME also lists the call paths (innermost first, 6 deep) that lead to functions named NAME.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { argv } from 'node:process';
import { REPO } from './peer.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
const callersAt = args.indexOf('--callers');
const callersOf = callersAt >= 0 ? args.splice(callersAt, 2)[1] : undefined;

const self = new Map<string, number>();
const total = new Map<string, number>();
const paths = new Map<string, number>();
const files = new Map<string, number>();
let allMs = 0;
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

for (const file of args) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    const where = f.url.startsWith('file://') ? relative(REPO, new URL(f.url).pathname) : f.url;
    return `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`;
  };
  const ms = new Map<number, number>();
  p.samples.forEach((id, i) => ms.set(id, (ms.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  for (const [id, t] of ms) {
    allMs += t;
    add(self, label(byId.get(id)!), t);
    add(files, byId.get(id)!.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|[a-z-]+)\//, '$1/') || '(native)', t);
    if (callersOf && byId.get(id)!.callFrame.functionName === callersOf) {
      const path: string[] = [];
      for (let at = parent.get(id); at !== undefined && path.length < 6; at = parent.get(at)) path.push(byId.get(at)!.callFrame.functionName || '(anonymous)');
      add(paths, path.join(' < '), t);
    }
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!);
      if (seen.has(l)) continue;
      seen.add(l);
      add(total, l, t);
    }
  }
}

const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${allMs.toFixed(0)} ms sampled)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${v.toFixed(0).padStart(8)} ms ${((100 * v) / allMs).toFixed(1).padStart(5)} %  ${k}`);
  }
};
print('self time', self);
print('total time', total);
print('self time by file', files);
if (callersOf) print(`paths to ${callersOf}`, paths);
