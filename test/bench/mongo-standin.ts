/**
 * The MongoDB stand-in (test/helpers/mongo-server.ts: smartmongo's CongoServer, an in-process JavaScript server, not
 * MongoDB) in a process of its own, for the bench's MongoDB-backend peer (mongo-peer.ts): its CPU is then neither
 * the bench's nor our server's, and is read separately. Prints one JSON line `{"url": ...}` on stdout once it
 * listens; stops on SIGTERM or when its stdin closes (the bench went away).
 */
import { env, stdin, stdout } from 'node:process';
import { MONGODB_URL_VARIABLE, startMongo } from '../helpers/mongo-server.ts';

delete env[MONGODB_URL_VARIABLE]; // always the stand-in here: a real server needs no process of ours
const server = await startMongo();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop().catch(() => undefined);
  process.exit(0);
};
process.once('SIGTERM', stop);
stdin.on('end', stop);
stdin.on('close', stop);
stdin.resume();
stdout.write(JSON.stringify({ url: server.url }) + '\n');
