/** What a workload needs from a server under test: its ports, its process tree, its disk use. */
import { fileURLToPath } from 'node:url';
import { env } from '../../hooks/runtime.ts';

export interface Peer {
  readonly name: 'ours' | 'dovecot';
  readonly imapPort: number;
  readonly lmtpPort: number;
  /** Root of the server's process tree (what proc-stats reads). */
  readonly pid: number;
  /** Bytes on disk holding `user`'s mail (ours: the whole data directory). */
  storedBytes(user: string): number;
  stop(): Promise<void>;
}

/** Every bench user has this password; addresses are NAME@DOMAIN. */
export const PASSWORD = 'bench-secret-1';
export const DOMAIN = 'example.com';

/** The users both servers get: ingest target, the IDLE crowd's account, the FETCH mailbox's, the mixed-load clients. */
export const INGEST_USER = 'ingest';
/** Takes the warm-up deliveries before the ingest workloads (test/bench/ingest.ts warmUp). */
export const WARMUP_USER = 'warmup';
export const IDLE_USER = 'idler';
export const BIG_USER = 'big';
/** Holds the MongoDB group's FETCH mailbox (run.ts). */
export const FETCH_USER = 'fetcher';
export const mixUser = (i: number): string => `mix${i + 1}`;
export const MIX_CLIENTS = 20;
export const BENCH_USERS = [INGEST_USER, WARMUP_USER, IDLE_USER, FETCH_USER, ...Array.from({ length: MIX_CLIENTS }, (_, i) => mixUser(i))];

/** The repository root and the bench cache (`.bench/`, gitignored). */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CACHE = env().WILDDUCK_BENCH_CACHE ?? `${REPO}.bench`;

export { freePort } from '../helpers/free-port.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes (then throws `what`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
