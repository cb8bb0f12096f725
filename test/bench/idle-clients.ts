/**
 * The IDLE crowd, run as its own process so its memory and file descriptors are not the server's:
 *
 *   idle-clients.ts PORT USER PASSWORD COUNT
 *
 * Opens COUNT connections (200 setting up at a time), each LOGIN, SELECT INBOX, IDLE; prints one JSON line
 * `{"ready": n, "errors": e, "firstError": "...", "seconds": s}` once all are idling (or failed), then holds them
 * until its standard input closes or says anything, and exits.
 */
import { ImapClient } from './imap-client.ts';
import { argv, exit, writeOut } from '../../protocols/runtime.ts';
import { stdin } from 'node:process';

const [port, user, password, countText] = argv();
const count = Number(countText);
const clients: ImapClient[] = [];
let errors = 0;
let firstError = '';
let next = 0;
const t0 = performance.now();

async function one(): Promise<void> {
  let client: ImapClient | null = null;
  try {
    client = await ImapClient.connect(Number(port), '127.0.0.1', 120_000);
    await client.login(user!, password!);
    const r = await client.command('SELECT INBOX');
    if (r.status !== 'OK') throw new Error(`SELECT: ${r.text}`);
    await client.idle();
    clients.push(client);
  } catch (err) {
    errors++;
    firstError ||= String((err as Error).message ?? err);
    client?.close();
  }
}

await Promise.all(
  Array.from({ length: 200 }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  }),
);
writeOut(JSON.stringify({ ready: clients.length, errors, firstError, seconds: (performance.now() - t0) / 1000 }) + '\n');
const stop = () => {
  for (const c of clients) c.close();
  exit(0);
};
stdin.on('data', stop);
stdin.on('end', stop);
