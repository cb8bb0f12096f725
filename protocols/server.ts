/**
 * Composition of a running server: open storage, build the app (hooks + plugins), start the enabled
 * listeners. Protocol listeners that this build does not contain yet are reported, not faked.
 */
import type { Config } from '../hooks/config.ts';
import type { Logger } from '../hooks/log.ts';
import { createApp, type App } from '../hooks/app.ts';
import { openStorage } from '../storage/open.ts';
import { checkCredentials } from '../storage/users.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { startHttp, type Listener } from './http.ts';
import { lmtpHandler } from './lmtp.ts';
import { pop3Handler } from './pop3.ts';
import { startImap } from './imap.ts';
import { startPlainListener } from './plain-listener.ts';

export async function bootApp(config: Config, log: Logger): Promise<App> {
  const storage = await openStorage(config);
  try {
    return await createApp({
      config,
      log,
      storage,
      checkCredentials: (login, password) => checkCredentials(storage, login, password),
      ingest: (source) =>
        ingestMessage(source, storage.blobs, {
          maxSize: config.limits.maxMessageSize,
          blobThreshold: config.limits.blobThreshold,
          searchTextLimit: config.limits.searchTextLimit,
          maxHeaderSize: config.limits.maxHeaderBytes,
        }),
    });
  } catch (err) {
    await storage.close().catch(() => {});
    throw err;
  }
}

export async function startListeners(app: App): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const { config, log } = app;
  try {
    if (config.api.enabled) listeners.push(await startHttp(app));
    if (config.lmtp.enabled) {
      // plain TCP until the shared listener (TLS, PROXY, per-IP limits) is wired in
      listeners.push(await startPlainListener({ name: 'lmtp', host: config.lmtp.host, port: config.lmtp.port, log, onConnection: lmtpHandler(app) }));
    }
    if (config.pop3.enabled) {
      // plain TCP only (no STLS, no POP3S) until the shared listener is wired in
      listeners.push(await startPlainListener({ name: 'pop3', host: config.pop3.host, port: config.pop3.port, log, onConnection: pop3Handler(app) }));
    }
    if (config.imap.enabled) listeners.push(...(await startImap(app)));
  } catch (err) {
    for (const l of listeners) await l.close().catch(() => {});
    throw err;
  }
  return listeners;
}
