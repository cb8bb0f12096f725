/**
 * A MongoDB server for tests: the real server `WILDDUCK_TEST_MONGODB_URL` names, or else the stand-in, the in-process
 * wire-compatible server of `@push.rocks/smartmongo` (its CongoServer) started on a free loopback port. The stand-in
 * is not MongoDB: it enforces no unique index, isolates no transaction, accepts no string or integer `_id`, runs no
 * change stream, mangles a document holding binary data when that document is updated, returns the ObjectIds of a
 * `distinct` as hex strings, and runs a findAndModify as a read then a write (made atomic here: serializeCommands),
 * and its streaming heartbeat fails under load (polled here: serverMonitoringMode). A test that needs real
 * MongoDB behaviour skips on it, naming the gap (`standInGap`).
 *
 * Every `database()` is a fresh database name on the one server; its `drop()` removes it. `stop()` stops the stand-in
 * (a real server is left running).
 */
import { randomBytes } from 'node:crypto';
import { env } from 'node:process';
import { MongoClient } from 'mongodb';
import { freePort } from './free-port.ts';

/** Names a real MongoDB server (any database path in it is ignored: each test gets a database of its own). */
export const MONGODB_URL_VARIABLE = 'WILDDUCK_TEST_MONGODB_URL';

/** Whether the tests of this process run on the stand-in (no real server named). */
export const mongoIsStandIn = !env[MONGODB_URL_VARIABLE];

/** A skip message naming the stand-in's gap, for tests that need real MongoDB behaviour. */
export function standInGap(gap: string): string {
  return `the MongoDB stand-in (smartmongo CongoServer) ${gap}; set ${MONGODB_URL_VARIABLE} to a real server to run this`;
}

export interface MongoTestDatabase {
  /** The server's connection string (no database in it). */
  readonly url: string;
  /** The fresh database's name (openMongoStorage's `database`). */
  readonly name: string;
  /** Drops the database. */
  drop(): Promise<void>;
}

export interface MongoTestServer {
  readonly standIn: boolean;
  readonly url: string;
  /** A fresh, empty database on the server. */
  database(): Promise<MongoTestDatabase>;
  /** Stops the stand-in; closes the helper's connection to a real server. */
  stop(): Promise<void>;
  /** The stand-in only (null for a real server): takes it down and brings it back on the same port, data kept. */
  readonly outage: { down(): Promise<void>; up(): Promise<void> } | null;
}

interface StandIn {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Makes each command of the stand-in run alone, as MongoDB makes every single-document write atomic. The stand-in's
 * findAndModify reads, then writes, awaiting between: under Deno (whose sockets hand data over in promise callbacks)
 * two `$inc`s on one document interleave there and both return the same value, and under Node they are atomic only
 * because nothing between them waits for I/O. Commands of different connections still interleave with each other.
 */
function serializeCommands(server: StandIn): void {
  const router = (server as unknown as { commandRouter?: { route(command: unknown): Promise<unknown> } }).commandRouter;
  if (!router || typeof router.route !== 'function') throw new Error('the MongoDB stand-in changed: no commandRouter.route to serialize');
  const route = router.route.bind(router);
  let tail: Promise<unknown> = Promise.resolve();
  router.route = (command: unknown) => {
    const result = tail.then(() => route(command));
    tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  };
}

async function startStandIn(): Promise<{ url: string; server: StandIn }> {
  // the package's main entry pulls mongodb-memory-server, which downloads a server: import the stand-in alone
  const { CongoServer } = (await import('@push.rocks/smartmongo/dist_ts/congodb/index.js')) as unknown as {
    CongoServer: new (options: { port: number; host?: string }) => StandIn;
  };
  const port = await freePort();
  const server = new CongoServer({ port, host: '127.0.0.1' });
  serializeCommands(server);
  await server.start();
  // the driver's streaming heartbeat (a hello answered again and again, moreToCome) fails on the stand-in under load,
  // which clears the connection pool and fails the operations in flight: poll instead
  return { url: `mongodb://127.0.0.1:${port}/?directConnection=true&serverMonitoringMode=poll`, server };
}

export async function startMongo(): Promise<MongoTestServer> {
  const given = env[MONGODB_URL_VARIABLE];
  const started = given ? null : await startStandIn();
  const url = given ?? started!.url;
  const admin = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  await admin.connect();
  const names = new Set<string>();
  return {
    standIn: !given,
    url,
    async database() {
      const name = `wdtest_${randomBytes(6).toString('hex')}`;
      names.add(name);
      return {
        url,
        name,
        async drop() {
          names.delete(name);
          await admin.db(name).dropDatabase();
        },
      };
    },
    outage: started && {
      down: () => started.server.stop(),
      up: () => started.server.start(),
    },
    async stop() {
      try {
        for (const name of names) await admin.db(name).dropDatabase();
        names.clear();
      } finally {
        await admin.close();
        await started?.server.stop();
      }
    },
  };
}

let shared: Promise<MongoTestServer> | null = null;

/** One server for a whole test file, started at first use; `stopSharedMongo` (in the file's `after`) stops it. */
export function sharedMongo(): Promise<MongoTestServer> {
  shared ??= startMongo();
  return shared;
}

export async function stopSharedMongo(): Promise<void> {
  const s = shared;
  shared = null;
  if (s) await (await s).stop();
}
