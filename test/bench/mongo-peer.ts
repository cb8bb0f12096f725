/**
 * The MongoDB backend as a bench peer: our server (ours-peer.ts) with `storage.backend = mongodb` on a database of
 * its own, ephemeral state in the server (`storage.ephemeral = memory`: one instance). The database lives on the
 * server `WILDDUCK_TEST_MONGODB_URL` names, else on the stand-in (smartmongo's CongoServer, an in-process JavaScript
 * server, not MongoDB) started in a child process of its own (mongo-standin.ts), so our server's CPU per message
 * stays comparable with the embedded backend's and the stand-in's CPU is read on its own.
 *
 * On the stand-in the rows measure our backend's code path plus a JavaScript stand-in, not MongoDB's speed: every
 * row says so (`mongoLabel`).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { execPath } from 'node:process';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { env as runtimeEnv } from '../../hooks/runtime.ts';
import { MONGODB_URL_VARIABLE } from '../helpers/mongo-server.ts';

const STAND_IN = fileURLToPath(new URL('./mongo-standin.ts', import.meta.url));

/** What the rows on the stand-in say about it. */
export const STAND_IN_NAME = 'MongoDB stand-in (smartmongo, in-process JS server), not MongoDB';

export interface MongoBackend {
  /** True on the stand-in, false on a real server. */
  readonly standIn: boolean;
  /** The stand-in's process (null on a real server, which is not ours to measure). */
  readonly pid: number | null;
  /** The WILDDUCK_* variables that put our server on the backend's fresh database. */
  readonly env: Record<string, string>;
  /** Drops the database; stops the stand-in. */
  stop(): Promise<void>;
}

/** The label of a row measured on the MongoDB backend: the stand-in (or the real server) named in it. */
export function mongoLabel(workload: string, standIn: boolean): string {
  return standIn ? `${workload}, MongoDB backend on the ${STAND_IN_NAME}` : `${workload}, MongoDB backend (real MongoDB)`;
}

/** The variables of `storage.backend = mongodb` on `database` at `url` (hooks/config.ts). */
export function mongoEnv(url: string, database: string): Record<string, string> {
  return {
    WILDDUCK_STORAGE_BACKEND: 'mongodb',
    WILDDUCK_STORAGE_MONGODB_URL: url,
    WILDDUCK_STORAGE_MONGODB_DATABASE: database,
    WILDDUCK_STORAGE_EPHEMERAL: 'memory',
  };
}

/** Starts the stand-in in its own process (or takes the real server named) and picks a fresh database on it. */
export async function startMongoBackend(logFile: string): Promise<MongoBackend> {
  const database = `wdbench_${randomBytes(6).toString('hex')}`;
  const given = runtimeEnv()[MONGODB_URL_VARIABLE];
  const standIn = given ? null : await startStandIn(logFile);
  const url = given ?? standIn!.url;
  return {
    standIn: !given,
    pid: standIn?.pid ?? null,
    env: mongoEnv(url, database),
    async stop() {
      try {
        if (given) {
          const client = new MongoClient(given, { serverSelectionTimeoutMS: 5000 });
          try {
            await client.db(database).dropDatabase();
          } finally {
            await client.close();
          }
        }
      } finally {
        await standIn?.stop();
      }
    },
  };
}

async function startStandIn(logFile: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const err = openSync(logFile, 'a');
  // stdin a pipe: the stand-in stops when it closes (the bench ended without stopping it)
  const child = spawn(execPath, ['--import', import.meta.resolve('tsx'), STAND_IN], { stdio: ['pipe', 'pipe', err] });
  closeSync(err);
  let exited: number | null = null;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code ?? -1;
      resolve();
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      text += chunk;
      const line = text.split('\n').slice(0, -1).find((l) => l.startsWith('{"url"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    void gone.then(() => reject(new Error(`the MongoDB stand-in exited (${exited}) before it listened; see ${logFile}`)));
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (exited !== null) return;
      child.kill('SIGTERM');
      await gone;
    },
  };
}
