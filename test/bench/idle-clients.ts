/**
 * The IDLE crowd, run as its own process so its memory and file descriptors are not the server's:
 *
 *   idle-clients.ts PORT USER PASSWORD COUNT
 *
 * Opens COUNT connections (200 setting up at a time), each LOGIN, SELECT INBOX, IDLE; prints one JSON line
 * `{"ready": n, "errors": e, "firstError": "...", "seconds": s}` once all are idling (or failed). Then reads its
 * standard input a line at a time: a number grows the crowd to that many sessions in all (another JSON line when
 * they are up), anything else (or the end of the input) closes every connection and exits.
 */
import { createInterface } from 'node:readline';
import { stdin } from 'node:process';
import { ImapClient } from './imap-client.ts';
import { argv, exit, writeOut } from '../../hooks/runtime.ts';

const [port, user, password, countText] = argv();
const clients: ImapClient[] = [];
let errors = 0;
let firstError = '';

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

/** Opens sessions until `total` were attempted in all (ready or failed), then reports. */
let attempted = 0;
async function growTo(total: number): Promise<void> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      while (attempted < total) {
        attempted++;
        await one();
      }
    }),
  );
  writeOut(JSON.stringify({ ready: clients.length, errors, firstError, seconds: (performance.now() - t0) / 1000 }) + '\n');
}

const stop = () => {
  for (const c of clients) c.close();
  exit(0);
};
await growTo(Number(countText));
const lines = createInterface({ input: stdin });
lines.on('line', (line) => {
  const total = Number(line.trim());
  if (!Number.isInteger(total) || total <= 0) return stop();
  lines.pause();
  void growTo(total).then(() => lines.resume());
});
lines.on('close', stop);
