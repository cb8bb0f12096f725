/**
 * Composition of a running server: open storage, build the app (hooks + plugins), load the TLS material once,
 * and start the enabled listeners (HTTP, LMTP, POP3, IMAP), every line protocol on the shared TCP listener with
 * that one TLS context.
 */
import type { Config } from '../hooks/config.ts';
import type { Logger } from '../hooks/log.ts';
import { createApp, type App } from './app.ts';
import { openStorage, type OpenStorageOptions } from '../storage/open.ts';
import { checkCredentials } from '../storage/users.ts';
import { PasswordChecker } from '../storage/password-check.ts';
import type { PasswordCheckOptions, SharedCheckCache } from '../storage/password-check.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { startHttp, type Listener } from './http.ts';
import { startLmtp } from './lmtp.ts';
import { startPop3 } from './pop3.ts';
import { startImap } from './imap.ts';
import { loadTlsContext } from './net/tls.ts';
import type { SharedSlots } from './net/listener.ts';

/** The password checker's limits from config (`auth.passwordChecks`). */
export function passwordChecksFromConfig(config: Pick<Config, 'auth'>): PasswordCheckOptions {
  const c = config.auth.passwordChecks;
  return { concurrency: c.concurrency, maxQueue: c.maxQueue, maxQueuePerClient: c.maxQueuePerClient, cacheTtlMs: c.cacheSeconds * 1000, cacheEntries: c.cacheEntries };
}

/** `sharedChecks`: remembered password checks shared with the other worker processes (protocols/net/cluster.ts). */
export async function bootApp(config: Config, log: Logger, storageOptions: OpenStorageOptions = {}, sharedChecks?: SharedCheckCache): Promise<App> {
  const storage = await openStorage(config, (message) => log.warn(message), storageOptions);
  const checker = new PasswordChecker({ ...passwordChecksFromConfig(config), shared: sharedChecks });
  try {
    return await createApp({
      config,
      log,
      storage,
      checkCredentials: (login, password, scope, client) => checkCredentials(storage, login, password, scope, { checker, client }),
      ingest: (source) =>
        ingestMessage(source, storage.blobs, {
          maxSize: config.limits.maxMessageSize,
          blobThreshold: config.limits.blobThreshold,
          searchTextLimit: config.limits.searchTextLimit,
          maxHtmlDepth: config.limits.maxHtmlDepth,
          maxHeaderSize: config.limits.maxHeaderBytes,
        }),
    });
  } catch (err) {
    await storage.close().catch(() => {});
    throw err;
  }
}

/** `shared`: connection counts shared with the other worker processes of the server (protocols/net/cluster.ts). */
export async function startListeners(app: App, shared: SharedSlots | null = null): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const { config, log } = app;
  // one certificate for every protocol, loaded (or generated) once, and only when a line protocol runs
  const tls = config.imap.enabled || config.pop3.enabled || config.lmtp.enabled ? await loadTlsContext(config, log) : null;
  try {
    if (config.api.enabled) listeners.push(await startHttp(app));
    if (config.lmtp.enabled) listeners.push(...(await startLmtp(app, tls, { shared })));
    if (config.pop3.enabled) listeners.push(...(await startPop3(app, tls, shared)));
    if (config.imap.enabled) listeners.push(...(await startImap(app, tls, shared)));
  } catch (err) {
    for (const l of listeners) await l.close().catch(() => {});
    throw err;
  }
  return listeners;
}
