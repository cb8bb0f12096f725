/**
 * What `npm run bench` runs: the workload groups (`--only`) and the sizes of a quick and a full run (run.ts).
 */

/** The workload groups, in the order they run; all of them by default. */
export const GROUPS = ['ingest', 'large', 'idle', 'mix', 'mongodb'] as const;
export type Group = (typeof GROUPS)[number];

/** The groups `--only a,b` names (every group without it); an unknown name is an error, not a silent skip. */
export function selectGroups(only: string | undefined): Set<Group> {
  if (only === undefined) return new Set(GROUPS);
  const names = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(GROUPS as readonly string[]).includes(n));
  if (unknown.length || !names.length) throw new Error(`--only takes some of ${GROUPS.join(', ')}; got "${only}"`);
  return new Set(names as Group[]);
}

export interface Plan {
  /** Messages per ingest workload, and in how many rounds (each row the median round). */
  ingest: number;
  ingestRounds: number;
  /** Messages in the large mailbox, and repeats of each op on it (and on the MongoDB group's mailbox). */
  large: number;
  repeats: number;
  idle: number[];
  idleSettleMs: number;
  mixSeconds: number;
  /** The MongoDB-backend group: messages per ingest workload (one round), and messages in its FETCH mailbox. */
  mongoIngest: number;
  mongoMailbox: number;
}

export function benchPlan(quick: boolean): Plan {
  return quick
    ? { ingest: 60, ingestRounds: 1, large: 10_000, repeats: 3, idle: [1_000], idleSettleMs: 2_000, mixSeconds: 6, mongoIngest: 60, mongoMailbox: 500 }
    : { ingest: 500, ingestRounds: 3, large: 100_000, repeats: 5, idle: [1_000, 10_000], idleSettleMs: 60_000, mixSeconds: 30, mongoIngest: 200, mongoMailbox: 1_000 };
}
