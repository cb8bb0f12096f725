/**
 * CPU time and memory of a server's whole process tree, from /proc (Linux). CPU sums utime + stime of every live
 * process in the tree plus cutime + cstime (the children each one has reaped), so processes that came and went
 * (Dovecot's imap and lmtp processes) are counted exactly once.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const PAGE = 4096;

export interface Stat {
  pid: number;
  ppid: number;
  /** utime, stime, cutime, cstime in ticks */
  cpu: number;
  rssPages: number;
}

function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null; // gone
  }
  // the command name (field 2) may contain spaces: split after its closing parenthesis
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3]
  return { pid, ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), rssPages: Number(f[21]) };
}

/** Every process in the tree rooted at `root` (root included). */
export function processTree(root: number): Stat[] {
  const all: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.push(s);
  }
  const children = new Map<number, Stat[]>();
  for (const s of all) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const out: Stat[] = [];
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) return out;
  const stack = [rootStat];
  while (stack.length) {
    const s = stack.pop()!;
    out.push(s);
    for (const c of children.get(s.pid) ?? []) stack.push(c);
  }
  return out;
}

/** CPU milliseconds used so far by the tree (live processes and the children they reaped). */
export function treeCpuMs(root: number): number {
  return (processTree(root).reduce((sum, s) => sum + s.cpu, 0) * 1000) / TICKS_PER_SECOND;
}

/**
 * CPU milliseconds the tree's live threads ran so far, to the nanosecond (`/proc/<pid>/task/<tid>/schedstat`): for
 * spans too short for treeCpuMs's 10 ms ticks, such as one command. Reaped children are not counted.
 */
export function treeRunMs(root: number): number {
  let ns = 0;
  for (const s of processTree(root)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${s.pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${s.pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      } catch {
        // the thread ended
      }
    }
  }
  return ns / 1e6;
}

function pss(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Memory of the tree in bytes: `rss` sums each process's resident set (pages shared between processes counted
 * once per process), `pss` sums proportional set sizes (shared pages split between the processes sharing them,
 * so the sum is what the tree really occupies).
 */
export function treeMemory(root: number): { rss: number; pss: number; processes: number } {
  const tree = processTree(root);
  return { rss: tree.reduce((sum, s) => sum + s.rssPages * PAGE, 0), pss: tree.reduce((sum, s) => sum + pss(s.pid), 0), processes: tree.length };
}
