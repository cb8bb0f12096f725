/**
 * The process model of `wildduck start` (README "Processes and cores").
 *
 * - **One process** (`server.workers: 1`, and always on Deno, whose node:cluster is a stub): the process opens the
 *   storage, boots the app and runs every listener, as `startSingle` does.
 * - **Primary + workers** (Node.js, `server.workers` 0 = one per CPU core, or N > 1): the primary does what must
 *   happen once per server — opens the storage (migrations run here, before any worker starts), loads or generates
 *   the TLS certificate, polls the change log for changes written beside the server (the CLI) — then forks the
 *   workers with node:cluster. Each worker boots the whole app on the same SQLite file (WAL: readers never wait;
 *   writers take turns under the busy timeout) and listens on the same ports: node:cluster hands the accepted
 *   connections out round-robin. The primary holds the one MemoryEphemeral and serves it to the workers over the
 *   cluster IPC channel (storage/ephemeral/hub.ts ↔ remote.ts), so failed-login limits, per-user connection
 *   counts, transfer counters, POP3 maildrop locks, `\Recent` marks and pub/sub (IDLE, the HTTP event stream) are
 *   shared by all workers, as they would be by server instances sharing Redis. With `storage.ephemeral: 'redis'`
 *   they are in Redis instead, and every process (the primary, each worker) talks to Redis itself; the primary's
 *   store then only counts the connections of this server's listeners and shares the remembered password checks.
 *   A worker that dies is restarted (its locks and reservations are given back first); SIGTERM/SIGINT on the
 *   primary stops every worker gracefully (goodbyes to clients), then the primary. If the primary dies, workers
 *   exit (node:cluster ends a worker whose IPC channel closes).
 *
 * - **Maintenance process** (with workers, `storage.sqlite.maintenanceProcess`, default on): one more forked process
 *   that serves nothing and writes the search indexes and checkpoints the WAL for all (storage/sqlite/maintenance.ts),
 *   off the event loops that serve connections; forked once every worker listens. Restarted when it dies; while it
 *   is gone, search tests the new messages by their stored text and the workers' own autocheckpoint bounds the WAL.
 *
 * Workers log with a `worker` field (1..N; `maintenance`). The primary logs `wildduck ready` once every worker listens.
 */
import { Buffer } from 'node:buffer';
import type { Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import type { Config } from '../../hooks/config.ts';
import type { Logger } from '../../hooks/log.ts';
import type { App } from '../app.ts';
import { openStorage } from '../../storage/open.ts';
import { MemoryEphemeral } from '../../storage/ephemeral/memory.ts';
import { EphemeralHub, type AttachedPeer } from '../../storage/ephemeral/hub.ts';
import { RemoteEphemeral } from '../../storage/ephemeral/remote.ts';
import type { StoragePorts } from '../../storage/ports.ts';
import { canForkWorkers, cliCommandLine, env, exit, onShutdownSignal } from '../../hooks/runtime.ts';
import { bootApp, startListeners } from '../server.ts';
import { loadTlsContext } from './tls.ts';
import type { Listener } from './listener.ts';
import { MemorySettler } from './memory-settle.ts';

/** Messages between the primary and a worker (besides the ephemeral store's, which start with `wd:eph`). */
type ControlMessage = { t: 'wd:ready'; listeners: string[] } | { t: 'wd:stop' };

const MAX_RESTART_DELAY_MS = 30_000;

/** The environment variable that hands each worker the HMAC key of the shared password-check cache. */
const CHECK_KEY_VARIABLE = 'WD_PASSWORD_CHECK_KEY';
/** Set (to 1) in the environment of the maintenance process (startMaintenance). */
const MAINTENANCE_VARIABLE = 'WD_MAINTENANCE_PROCESS';

/** Whether a maintenance process writes the search indexes and checkpoints the WAL for the workers. */
function hasMaintenanceProcess(config: Config): boolean {
  return config.storage.backend === 'sqlite' && config.storage.sqlite.maintenanceProcess;
}

/** How many processes serve: 1 means no workers. */
export function workerCount(config: Config): number {
  if (!canForkWorkers) return 1;
  const wanted = config.server.workers;
  if (wanted > 0) return wanted;
  try {
    return Math.max(1, availableParallelism());
  } catch {
    return Math.max(1, cpus().length);
  }
}

/** Boots the app and starts its listeners; on a failure to listen, closes the app again. */
async function serve(config: Config, log: Logger, shared: RemoteEphemeral | null = null): Promise<{ app: App; listeners: Listener[] }> {
  const key = env()[CHECK_KEY_VARIABLE];
  const sharedChecks = shared && key ? { store: shared, key: Buffer.from(key, 'hex') } : undefined;
  const backgroundWork = hasMaintenanceProcess(config) ? ('others' as const) : ('self' as const);
  // storage.ephemeral 'redis': the worker's storage talks to Redis itself; the primary's store still counts the
  // connections of this server's listeners (its caps are per server) and shares the remembered password checks
  const storageOptions = !shared ? {} : config.storage.ephemeral === 'redis' ? { changePollMs: 0, backgroundWork } : { ephemeral: shared, changePollMs: 0, backgroundWork };
  const app = await bootApp(config, log, storageOptions, sharedChecks);
  try {
    return { app, listeners: await startListeners(app, shared) };
  } catch (err) {
    await app.close().catch(() => {});
    throw err;
  }
}

async function stopServing(app: App, listeners: Listener[], log: Logger): Promise<void> {
  for (const listener of listeners) await listener.close().catch(() => {});
  await app.close().catch((err: unknown) => log.error('error during shutdown', { err }));
}

async function tellIfNoUsers(storage: StoragePorts, log: Logger): Promise<void> {
  if ((await storage.users.list({ limit: 1 })).items.length === 0) {
    log.info(`no users yet: create the first one with \`${cliCommandLine()} user add NAME --password - --address NAME@example.com\``);
  }
}

/** A serving process gives memory back after bursts (when its collector is exposed; see protocols/net/memory-settle.ts). */
function settleMemory(config: Config, log: Logger): void {
  const { enabled, growthMb, checkSeconds } = config.server.memorySettle;
  if (!enabled) return;
  MemorySettler.start({
    growthBytes: growthMb * 1024 * 1024,
    checkMs: checkSeconds * 1000,
    onSettle: ({ grownBytes, ms }) => log.debug('memory settled after a burst', { grownMb: Math.round(grownBytes / 1048576), gcMs: Math.round(ms) }),
  });
}

/** `wildduck start` in this process: the single-process server, a cluster primary or one of its workers. */
export async function startServer(config: Config, log: Logger): Promise<void> {
  if (canForkWorkers) {
    const cluster = (await import('node:cluster')).default;
    if (cluster.isWorker) return env()[MAINTENANCE_VARIABLE] ? startMaintenance(config, log, cluster.worker!) : startWorker(config, log, cluster.worker!);
    const count = workerCount(config);
    if (count > 1) return startPrimary(config, log, count);
  } else if (config.server.workers !== 1) {
    log.info('one process serves: worker processes need node:cluster, which this runtime does not provide', { workers: config.server.workers });
  }
  return startSingle(config, log);
}

async function startSingle(config: Config, log: Logger): Promise<void> {
  let running: { app: App; listeners: Listener[] } | null = null;
  onShutdownSignal(async (signal) => {
    log.info('shutting down', { signal });
    if (running) await stopServing(running.app, running.listeners, log);
    log.info('stopped');
    exit(0);
  });
  running = await serve(config, log);
  settleMemory(config, log);
  log.info('wildduck ready', { dataDir: config.dataDir, storage: config.storage.backend, ephemeral: config.storage.ephemeral, workers: 1, listeners: running.listeners.map((l) => l.describe) });
  await tellIfNoUsers(running.app.storage, log);
}

async function startWorker(config: Config, baseLog: Logger, worker: Worker): Promise<void> {
  const log = baseLog.child({ worker: worker.id });
  const ephemeral = new RemoteEphemeral({ send: (m) => worker.send(m), onMessage: (handler) => worker.on('message', handler) });
  worker.on('disconnect', () => ephemeral.close()); // node:cluster exits the worker right after
  let running: { app: App; listeners: Listener[] } | null = null;
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info('worker stopping', { reason });
    if (running) await stopServing(running.app, running.listeners, log);
    exit(0);
  };
  worker.on('message', (message: ControlMessage) => {
    if (message?.t === 'wd:stop') void stop('primary');
  });
  // Ctrl-C reaches the whole process group: stop with the primary instead of dying mid-command
  onShutdownSignal((signal) => void stop(signal));
  try {
    running = await serve(config, log, ephemeral);
  } catch (err) {
    log.error('worker failed to start', { err });
    exit(1);
  }
  if (stopping) return;
  settleMemory(config, log);
  worker.send({ t: 'wd:ready', listeners: running.listeners.map((l) => l.describe) } satisfies ControlMessage);
}

/**
 * The maintenance process of a server with workers (storage/sqlite/maintenance.ts): opens the storage to write the
 * search indexes and checkpoint the WAL for every process, and serves nothing. Stops on the primary's word.
 */
async function startMaintenance(config: Config, baseLog: Logger, worker: Worker): Promise<void> {
  const log = baseLog.child({ worker: 'maintenance' });
  let storage: StoragePorts | null = null;
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.debug('maintenance process stopping', { reason });
    await storage?.close().catch((err: unknown) => log.error('storage close failed', { err }));
    exit(0);
  };
  worker.on('message', (message: ControlMessage) => {
    if (message?.t === 'wd:stop') void stop('primary');
  });
  onShutdownSignal((signal) => void stop(signal));
  try {
    storage = await openStorage(config, (message) => log.warn(message), { ephemeral: new MemoryEphemeral(), changePollMs: 0, backgroundWork: 'here' });
  } catch (err) {
    log.error('maintenance process failed to start', { err });
    exit(1);
  }
  if (stopping) await storage?.close().catch(() => {});
  else settleMemory(config, log);
}

async function startPrimary(config: Config, log: Logger, count: number): Promise<void> {
  const cluster = (await import('node:cluster')).default;
  // before the first fork: who accepts connections (server.connections)
  cluster.schedulingPolicy = config.server.connections === 'kernel' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const shared = new MemoryEphemeral();
  // one HMAC key for the password checks every worker remembers in the shared store (storage/password-check.ts)
  const checkKey = randomBytes(32).toString('hex');
  // once per server, before any worker: migrations (at open), the certificate, the change-log poller
  const maintained = hasMaintenanceProcess(config);
  // storage.ephemeral 'redis': the primary's storage talks to Redis (unreachable: the server stops here, before any
  // worker); every process, the CLI too, announces its own changes there, so nobody polls the change log for them
  const redis = config.storage.ephemeral === 'redis';
  const storage = await openStorage(config, (message) => log.warn(message), { ...(redis ? {} : { ephemeral: shared }), backgroundWork: maintained ? 'others' : 'self' });
  const changes = storage.changes as Partial<{ watch(): () => void; observed(channel: string, message: string): void }>;
  const unwatch = (redis ? undefined : changes.watch?.()) ?? (() => {});
  if (config.imap.enabled || config.pop3.enabled || config.lmtp.enabled) await loadTlsContext(config, log);
  const hub = new EphemeralHub(shared, { onPublish: (channel, message) => changes.observed?.(channel, message) });

  const peers = new Map<Worker, AttachedPeer>();
  /** Slots (1..count) whose current worker listens. */
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  let restartDelay = config.server.restartDelayMs;
  let healthySince = Date.now();

  const fork = (slot: number): void => {
    const worker = cluster.fork({ [CHECK_KEY_VARIABLE]: checkKey });
    const peer = hub.attach({ send: (m) => worker.send(m) });
    peers.set(worker, peer);
    worker.on('message', (message: unknown) => {
      if (peer.receive(message)) return;
      const control = message as ControlMessage;
      if (control?.t === 'wd:ready') {
        ready.add(slot);
        log.debug('worker ready', { worker: worker.id, pid: worker.process.pid });
        if (!announced && ready.size === count) {
          announced = true;
          healthySince = Date.now();
          log.info('wildduck ready', { dataDir: config.dataDir, storage: config.storage.backend, ephemeral: config.storage.ephemeral, workers: count, listeners: control.listeners });
          void tellIfNoUsers(storage, log).catch(() => {});
          // once the workers serve: its start (loading the code) does not compete with theirs
          if (maintained && !stopping) forkMaintenance();
          settleMemory(config, log);
        }
      }
    });
    worker.on('exit', (code, signal) => {
      ready.delete(slot);
      peers.delete(worker);
      void peer.detach();
      if (stopping) return;
      if (!announced) {
        log.error('a worker failed to start; stopping', { worker: worker.id, code, signal });
        void shutdown('startup failure', 1);
        return;
      }
      // back off while workers keep dying, back to the configured delay after a healthy minute
      if (Date.now() - healthySince > 60_000) restartDelay = config.server.restartDelayMs;
      log.warn('worker died; restarting it', { worker: worker.id, code, signal, inMs: restartDelay });
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, restartDelay);
      restartDelay = Math.min(MAX_RESTART_DELAY_MS, Math.max(1, restartDelay * 2));
      healthySince = Date.now();
    });
  };

  /** The maintenance process (maintained), restarted when it dies like a worker. */
  let maintenance: Worker | null = null;
  let maintenanceDelay = config.server.restartDelayMs;
  const forkMaintenance = (): void => {
    const worker = cluster.fork({ [MAINTENANCE_VARIABLE]: '1' });
    const started = Date.now();
    maintenance = worker;
    worker.on('online', () => log.debug('maintenance process started', { pid: worker.process.pid }));
    worker.on('exit', (code, signal) => {
      if (maintenance === worker) maintenance = null;
      if (stopping) return;
      if (Date.now() - started > 60_000) maintenanceDelay = config.server.restartDelayMs;
      log.warn('maintenance process died; restarting it', { code, signal, inMs: maintenanceDelay });
      setTimeout(() => {
        if (!stopping) forkMaintenance();
      }, maintenanceDelay);
      maintenanceDelay = Math.min(MAX_RESTART_DELAY_MS, Math.max(1, maintenanceDelay * 2));
    });
  };

  const shutdown = async (reason: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal: reason, workers: peers.size });
    const workers = [...peers.keys(), ...(maintenance ? [maintenance] : [])];
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((done) => {
            if (worker.isDead()) return done();
            const timer = setTimeout(() => {
              log.warn('worker did not stop in time; killing it', { worker: worker.id });
              worker.process.kill('SIGKILL');
            }, config.server.stopTimeoutSeconds * 1000);
            worker.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            try {
              worker.send({ t: 'wd:stop' } satisfies ControlMessage);
            } catch {
              worker.process.kill('SIGTERM');
            }
          }),
      ),
    );
    unwatch();
    await storage.close().catch((err: unknown) => log.error('storage close failed', { err }));
    shared.close();
    log.info('stopped');
    exit(code);
  };

  onShutdownSignal((signal) => void shutdown(signal, 0));
  log.info('starting workers', { workers: count, maintenanceProcess: maintained });
  for (let slot = 1; slot <= count; slot++) fork(slot);
}
