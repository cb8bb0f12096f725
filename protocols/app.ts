/**
 * Composition root: builds the hook tree from config, loads the plugins (then the default ones config did not
 * name or switch off: quota, submission (the relay for submitted mail), spam-routing (the MTA's spam verdict, step 3
 * of delivery); then the ones the server always runs:
 * failed-login limits; the per-user delivery rules — filters, forwarding, autoreply — which do nothing until a
 * user sets them up (and, for sending, until `delivery.relay.host` is set); and the storage plugin last), and
 * hands protocols one `App` to pass to the pipeline functions. protocols/server.ts opens storage and calls it.
 *
 * It sits on the protocols floor because it imports the plugins: hooks/ never imports plugins/ or protocols/
 * (test/import-floors.test.ts), so the plugin host and pipeline stay usable without this particular set.
 */
import type { Config } from '../hooks/config.ts';
import type { Logger } from '../hooks/log.ts';
import { createHooks } from '../hooks/tree.ts';
import type { Hooks } from '../hooks/tree.ts';
import { loadPlugins } from '../hooks/host.ts';
import type { LoadedPlugin, PluginRegistry } from '../hooks/host.ts';
import { storageReader } from '../hooks/storage-reader.ts';
import type { IngestFn, PipelineApp } from '../hooks/pipeline/run.ts';
import type { StoragePorts } from '../storage/ports.ts';
import { MailboxIndexes } from '../storage/mailbox-index/registry.ts';
import { SortDataCache } from '../storage/mailbox-index/sort-cache.ts';
import { builtinPlugins } from '../plugins/index.ts';
import { createStoragePlugin } from '../plugins/storage.ts';
import { createLoginLimitsPlugin, loginLimitsFromConfig } from '../plugins/login-limits.ts';
import type { CheckCredentials } from '../plugins/storage.ts';
import { createFiltersPlugin } from '../plugins/filters.ts';
import { createForwardingPlugin } from '../plugins/forwarding.ts';
import { createAutoreplyPlugin } from '../plugins/autoreply.ts';
import { createQuotaPlugin } from '../plugins/quota.ts';
import { createSubmissionPlugin } from '../plugins/submission.ts';
import { createImapEsortPlugin } from '../plugins/imap-esort.ts';
import { createImapSortPlugin } from '../plugins/imap-sort.ts';
import { createImapThreadPlugin } from '../plugins/imap-thread.ts';
import { createSpamRoutingPlugin } from '../plugins/spam-routing.ts';
import { storeMessage } from '../hooks/pipeline/store-message.ts';
import { createMailbox } from '../hooks/pipeline/mailboxes.ts';
import { Metrics } from '../hooks/metrics.ts';

export type { IngestFn, CheckCredentials };

export interface AppOptions {
  config: Config;
  log: Logger;
  /** An opened backend; the app owns it from now on (`close()` closes it). */
  storage: StoragePorts;
  /** storage/mime's ingestMessage bound to `storage.blobs` and the config limits. */
  ingest: IngestFn;
  /** Login check for auth.authenticate: storage/users.ts checkCredentials bound to `storage`. */
  checkCredentials: CheckCredentials;
  /** Built-in plugin registry; defaults to plugins/index.ts. Tests pass their own. */
  registry?: PluginRegistry;
}

export interface App extends PipelineApp {
  readonly config: Config;
  readonly log: Logger;
  /** The full hook tree: protocols pass the app to pipeline functions, which run the hooks. */
  readonly hooks: Hooks;
  readonly storage: StoragePorts;
  readonly ingest: IngestFn;
  /** Loaded plugins in apply order (the storage plugin last). */
  readonly plugins: readonly LoadedPlugin[];
  /** The shared per-mailbox indexes of this process (storage/mailbox-index): what selected IMAP sessions view. */
  readonly indexes: MailboxIndexes;
  /** The shared SORT / THREAD data of this process (storage/mailbox-index/sort-cache.ts), behind plugins' messages.sortData. */
  readonly sortCache: SortDataCache;
  /** This app's metrics registry: connections, commands, deliveries, errors, API requests (`GET /metrics`). */
  readonly metrics: Metrics;
  /** Closes plugins in reverse order, then the storage backend. Idempotent. */
  close(): Promise<void>;
}

/** Throws PluginError / Error on a bad plugin setup; the caller still owns `storage` then. */
export async function createApp(options: AppOptions): Promise<App> {
  const { config, log, storage, ingest, checkCredentials } = options;
  const hooks = createHooks({ timeoutMs: config.hooks.timeoutMs, trace: config.hooks.trace, log });
  const metrics = new Metrics();
  const pipelineApp: PipelineApp = { config, log, hooks, storage, ingest, metrics };
  const sortCache = new SortDataCache(storage.messages, { maxMessages: config.storage.mailboxIndex.sortCacheMessages });
  hooks.mailbox.afterDelete.tap('sort-cache', (_ctx, _input, mailbox) => sortCache.dropMailbox(mailbox.id));
  const host = await loadPlugins({
    hooks,
    config,
    log,
    storage: storageReader(storage, { sortData: (mailboxId, uids, wanted) => sortCache.sortData(mailboxId, uids, wanted) }),
    registry: options.registry ?? builtinPlugins,
    pipeline: { storeMessage: (ctx, input) => storeMessage(pipelineApp, ctx, input), createMailbox: (ctx, input) => createMailbox(pipelineApp, ctx, input) },
    // loaded unless config names them (its entry replaces the default) or switches them off: ['quota', false]
    defaults: [createQuotaPlugin(), createSubmissionPlugin(), createSpamRoutingPlugin(), createImapSortPlugin(), createImapEsortPlugin(), createImapThreadPlugin()],
    always: [
      createLoginLimitsPlugin(loginLimitsFromConfig(config)),
      createFiltersPlugin(),
      createForwardingPlugin(),
      createAutoreplyPlugin(),
      createStoragePlugin({ storage, checkCredentials, backend: config.storage.backend }),
    ],
  });
  let closing: Promise<void> | null = null;
  const { lingerSeconds, maxLingering, snapshotMinMessages } = config.storage.mailboxIndex;
  const indexes = new MailboxIndexes(storage, { lingerMs: lingerSeconds * 1000, maxLingering, snapshotMinMessages });
  return Object.freeze({
    config,
    log,
    hooks,
    storage,
    ingest,
    plugins: host.plugins,
    indexes,
    sortCache,
    metrics,
    close: () =>
      (closing ??= (async () => {
        await host.close();
        await indexes.close();
        try {
          await storage.close();
        } catch (err) {
          log.error('storage close failed', { err });
        }
      })()),
  });
}
