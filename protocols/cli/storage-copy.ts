/**
 * `wildduck storage copy --to TARGET [--verify-only] [--parallel N]`: copies the whole store the config names (the
 * source) into TARGET, then verifies the copy (storage/copy.ts). TARGET is `mongodb://…` / `mongodb+srv://…` (the
 * MongoDB backend, with the config's other storage.mongodb options) or `sqlite:DIR` / a directory (an embedded store
 * in DIR). Ctrl-C stops after the messages in flight; running the command again resumes (and picks up what the source
 * took in meanwhile). Exit status: 0 copied and verified, 1 the verification found differences, 130 stopped.
 */
import { resolve } from 'node:path';
import type { Config } from '../../hooks/config.ts';
import { copyStore, verifyCopy } from '../../storage/copy.ts';
import type { CopyProgress } from '../../storage/copy.ts';
import { openStorage } from '../../storage/open.ts';
import type { StoragePorts } from '../../storage/ports.ts';
import { onShutdownSignal, stdoutIsTerminal, writeOut } from '../../hooks/runtime.ts';

export const STORAGE_USAGE = `  wildduck storage copy --to mongodb://HOST/DB|sqlite:DIR|DIR [--verify-only] [--parallel N]`;

/** `--to` comes from the delivery options (the same flag). */
export const STORAGE_OPTIONS = {
  'verify-only': { type: 'boolean' },
  parallel: { type: 'string' },
} as const;

export class StorageUsageError extends Error {}

/** On a terminal: the progress line redrawn at most this often. Otherwise: a line this often. */
const TERMINAL_REDRAW_MS = 200;
const LOG_LINE_MS = 5_000;

/** The config that opens TARGET: the source's, with the backend and where it keeps its data replaced. */
export function targetConfig(config: Config, to: string): Config {
  if (/^mongodb(\+srv)?:\/\//.test(to)) {
    return { ...config, storage: { ...config.storage, backend: 'mongodb', mongodb: { ...config.storage.mongodb, url: to } } };
  }
  const dir = to.startsWith('sqlite:') ? to.slice('sqlite:'.length) : to;
  if (!dir || /^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) throw new StorageUsageError(`--to: expected mongodb://…, sqlite:DIR or a directory, not "${to}"`);
  // the embedded store keeps counters and locks in memory; the copy needs no Redis
  return { ...config, dataDir: dir, storage: { ...config.storage, backend: 'sqlite', ephemeral: 'memory' } };
}

/** Where a config keeps its store, to refuse copying a store onto itself. */
function location(config: Config): string {
  return config.storage.backend === 'mongodb' ? config.storage.mongodb.url : `sqlite:${resolve(config.dataDir)}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/**
 * Progress output: on a terminal one line redrawn in place (messages done/total, bytes, rate, ETA); otherwise a line
 * every few seconds, so a log file stays short.
 */
export class ProgressLine {
  #terminal: boolean;
  #out: (text: string) => void;
  #now: () => number;
  #started: number;
  #last = Number.NEGATIVE_INFINITY;
  #drawn = false;
  /** The latest progress not drawn yet (terminal: drawn by `end`). */
  #pending: CopyProgress | null = null;

  constructor(options: { terminal: boolean; out: (text: string) => void; now?: () => number }) {
    this.#terminal = options.terminal;
    this.#out = options.out;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
  }

  static describe(p: CopyProgress, elapsedMs: number): string {
    const verb = p.phase === 'verify' ? 'verified' : 'copied';
    const percent = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : p.messagesTotal > 0 ? Math.floor((100 * p.messagesDone) / p.messagesTotal) : 100;
    // the rate counts the bytes this run moved, not the ones found in the target already
    const moved = p.phase === 'verify' ? p.bytesDone : p.bytesCopied;
    const rate = elapsedMs > 0 ? (moved * 1000) / elapsedMs : 0;
    const eta = rate > 0 ? duration(((p.bytesTotal - p.bytesDone) / rate) * 1000) : '?';
    return `${verb} ${p.messagesDone}/${p.messagesTotal} messages (${percent}%), ${bytes(p.bytesDone)}/${bytes(p.bytesTotal)}, ${bytes(rate)}/s, ETA ${eta}`;
  }

  update(p: CopyProgress): void {
    const now = this.#now();
    if (p.phase === 'plan') {
      this.#started = now; // nothing to show while the source is counted
      return;
    }
    this.#pending = p;
    if (now - this.#last < (this.#terminal ? TERMINAL_REDRAW_MS : LOG_LINE_MS)) return;
    this.#last = now;
    this.#draw(p, now);
  }

  #draw(p: CopyProgress, now: number): void {
    this.#pending = null;
    const line = ProgressLine.describe(p, now - this.#started);
    if (this.#terminal) {
      this.#out(`\r${line}\x1b[K`);
      this.#drawn = true;
    } else this.#out(`${line}\n`);
  }

  /** Starts a new phase (its rate and ETA count from now). */
  restart(): void {
    this.end();
    this.#started = this.#now();
    this.#last = Number.NEGATIVE_INFINITY;
  }

  /** Leaves the redrawn line (the next output starts on a line of its own). */
  end(): void {
    if (this.#terminal && this.#pending) this.#draw(this.#pending, this.#now());
    this.#pending = null;
    if (this.#drawn) this.#out('\n');
    this.#drawn = false;
  }
}

export interface StorageCommandHooks {
  /** Opens the storage a config names (tests). */
  open?: (config: Config, role: 'source' | 'target') => Promise<StoragePorts>;
  terminal?: boolean;
  /** Asked between batches (tests stop a copy after N messages with it); Ctrl-C stops too. */
  shouldStop?: () => boolean;
  /** Stop on SIGINT / SIGTERM (default true; tests running it in-process say false). */
  signals?: boolean;
}

/** Runs `wildduck storage SUB ...`; output goes to `out`. Returns the exit status. */
export async function storageCommand(
  config: Config,
  args: string[],
  values: Record<string, unknown>,
  out: (text: string) => void = writeOut,
  hooks: StorageCommandHooks = {},
): Promise<number> {
  const [sub] = args;
  if (sub !== 'copy') throw new StorageUsageError(`unknown storage command "${sub ?? ''}"`);
  const to = values.to;
  if (typeof to !== 'string' || to === '') throw new StorageUsageError('storage copy needs --to TARGET');
  const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1 || parallel > 256)) throw new StorageUsageError('--parallel must be a whole number from 1 to 256');
  const destination = targetConfig(config, to);
  if (location(destination) === location(config)) throw new StorageUsageError(`--to names the store the config uses (${location(config)})`);

  // The source is only read: its search indexing and WAL checkpoints stay with the server that may run on it.
  const open = hooks.open ?? ((c: Config, role: 'source' | 'target') => openStorage(c, undefined, { changePollMs: 0, ...(role === 'source' ? { backgroundWork: 'others' as const } : {}) }));
  let interrupted = false;
  if (hooks.signals !== false) {
    onShutdownSignal(() => {
      interrupted = true;
    });
  }
  const shouldStop = () => interrupted || (hooks.shouldStop?.() ?? false);
  const line = new ProgressLine({ terminal: hooks.terminal ?? stdoutIsTerminal(), out });

  const source = await open(config, 'source');
  try {
    const target = await open(destination, 'target');
    try {
      out(`source ${location(config)}\ntarget ${location(destination)}\n`);
      if (!values['verify-only']) {
        const copied = await copyStore(source, target, {
          parallel,
          shouldStop,
          progress: (p) => line.update(p),
          ingest: {
            blobThreshold: config.limits.blobThreshold,
            searchTextLimit: config.limits.searchTextLimit,
            maxHtmlDepth: config.limits.maxHtmlDepth,
            maxHeaderSize: config.limits.maxHeaderBytes,
          },
        });
        line.end();
        out(
          `${copied.stopped ? 'stopped' : 'copied'}: ${copied.users} users, ${copied.documents} documents, ${copied.messagesDone}/${copied.messagesTotal} messages ` +
            `(${copied.messagesCopied} copied now, ${bytes(copied.bytesCopied)}; ${copied.flagsUpdated} flag changes, ${copied.expunged} expunged, ${copied.mailboxesRemoved} mailboxes removed since an earlier run)\n`,
        );
        if (copied.stopped) {
          out('run the same command again to resume\n');
          return 130;
        }
      }
      line.restart();
      const verified = await verifyCopy(source, target, { shouldStop, progress: (p) => line.update(p) });
      line.end();
      for (const m of verified.mismatches) out(`differs: ${m}\n`);
      if (verified.mismatchCount > verified.mismatches.length) out(`… and ${verified.mismatchCount - verified.mismatches.length} more\n`);
      out(
        `${verified.stopped ? 'verification stopped' : 'verified'}: ${verified.users} users, ${verified.mailboxes} mailboxes, ${verified.messages} messages (${bytes(verified.bytes)}), ` +
          `${verified.mismatchCount} differences\n`,
      );
      if (verified.stopped) return 130;
      if (verified.mismatchCount > 0) return 1;
      return 0;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
