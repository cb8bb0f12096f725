/**
 * The storage backend the protocol tests run on. `WILDDUCK_TEST_BACKEND=mongodb` runs every app the harnesses boot
 * (bootTestApp, test/helpers/imap-harness.ts, test/helpers/http-harness.ts) on MongoDB: the server
 * `WILDDUCK_TEST_MONGODB_URL` names, else the in-process stand-in (test/helpers/mongo-server.ts; it is not MongoDB).
 * Each app gets a fresh database, dropped when the app closes; the stand-in runs while any app is open and stops with
 * the last, so a test file's process can end. Unset (or `sqlite`): the embedded default in the app's data dir.
 */
import { env } from 'node:process';
import { bootApp } from '../../protocols/server.ts';
import type { Config } from '../../hooks/config.ts';
import type { Logger } from '../../hooks/log.ts';
import type { App } from '../../protocols/app.ts';
import type { OpenStorageOptions } from '../../storage/open.ts';
import { mongoIsStandIn, startMongo } from './mongo-server.ts';
import type { MongoTestServer } from './mongo-server.ts';

export const BACKEND_VARIABLE = 'WILDDUCK_TEST_BACKEND';

const chosen = env[BACKEND_VARIABLE] ?? 'sqlite';
if (chosen !== 'sqlite' && chosen !== 'mongodb') throw new Error(`${BACKEND_VARIABLE} must be "sqlite" or "mongodb", not "${chosen}"`);

/** The backend under test. */
export const testBackend: 'sqlite' | 'mongodb' = chosen;

/**
 * For `skip:` on a test that holds only on the embedded backend (it reads the SQLite file, or measures its disk use):
 * false there, else a message saying why the test does not apply.
 */
export function sqliteOnly(why: string): string | false {
  return testBackend === 'sqlite' ? false : `embedded backend only: ${why}`;
}

/** Whether the apps run on the MongoDB stand-in, which runs every command of every app one at a time in this process. */
export const onStandIn = testBackend === 'mongodb' && mongoIsStandIn;

/** How much longer a deadline is on the stand-in: a burst of logins queues hundreds of lookups on it. */
const STAND_IN_DEADLINE_FACTOR = 4;

/**
 * A deadline for something that must happen (a hook's time limit, a wait for an answer; never a speed bound): longer
 * when the apps run on the stand-in.
 */
export function deadlineMs(ms: number): number {
  return onStandIn ? ms * STAND_IN_DEADLINE_FACTOR : ms;
}

let server: Promise<MongoTestServer> | null = null;
let users = 0;

/** A fresh database on the shared server; `release` drops it, and stops the server when no app uses it any more. */
async function acquireDatabase(): Promise<{ url: string; name: string; release(): Promise<void> }> {
  users++;
  try {
    server ??= startMongo();
    const db = await (await server).database();
    let released = false;
    return {
      url: db.url,
      name: db.name,
      async release() {
        if (released) return;
        released = true;
        try {
          await db.drop();
        } finally {
          await releaseServer();
        }
      },
    };
  } catch (err) {
    await releaseServer();
    throw err;
  }
}

async function releaseServer(): Promise<void> {
  users--;
  if (users > 0 || !server) return;
  const s = server;
  server = null;
  await (await s.catch(() => null))?.stop();
}

/** The config an app runs on under the chosen backend (the same config on SQLite). */
export function onTestBackend(config: Config, db: { url: string; name: string }): Config {
  return { ...config, storage: { ...config.storage, backend: 'mongodb', mongodb: { ...config.storage.mongodb, url: db.url, database: db.name } } };
}

/**
 * For a test that opens the storage itself or starts the server in a child process: `config` on the backend under
 * test, the environment that puts a child's server on it (`WILDDUCK_STORAGE_*`, empty on SQLite), and `release`,
 * which drops the database (call it when the test is done with both).
 */
export async function testBackendStorage(config: Config): Promise<{ config: Config; env: Record<string, string>; release(): Promise<void> }> {
  if (testBackend === 'sqlite') return { config, env: {}, release: async () => {} };
  const db = await acquireDatabase();
  const env = { WILDDUCK_STORAGE_BACKEND: 'mongodb', WILDDUCK_STORAGE_MONGODB_URL: db.url, WILDDUCK_STORAGE_MONGODB_DATABASE: db.name };
  return { config: onTestBackend(config, db), env, release: () => db.release() };
}

/** `bootApp` on the backend under test. On MongoDB the app's `close()` also drops its database. */
export function bootTestApp(config: Config, log: Logger, storageOptions: OpenStorageOptions = {}): Promise<App> {
  return bootOnTestBackend(config, (c) => bootApp(c, log, storageOptions));
}

/**
 * `boot` (an app built some other way than bootApp, e.g. with a plugin registry of its own, its storage from
 * `openStorage(config)`) given the config for the backend under test. On MongoDB the app's `close()` also drops its
 * database.
 */
export async function bootOnTestBackend(config: Config, boot: (config: Config) => Promise<App>): Promise<App> {
  if (testBackend === 'sqlite') return boot(config);
  const db = await acquireDatabase();
  let app: App;
  try {
    app = await boot(onTestBackend(config, db));
  } catch (err) {
    await db.release();
    throw err;
  }
  // the app is frozen: hand out a copy whose close also drops the database
  const close = app.close;
  return Object.freeze({
    ...app,
    close: async () => {
      try {
        await close();
      } finally {
        await db.release();
      }
    },
  });
}
