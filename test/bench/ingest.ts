/**
 * Ingest throughput: LMTP delivery and IMAP APPEND of a slice of the corpus over `connections` connections that
 * share one queue of messages. Connections (and IMAP logins) are set up before the clock and the server's CPU
 * counter start, so the figures are messages per second and server CPU ms per message of ingest alone.
 */
import { ImapClient, ok } from './imap-client.ts';
import { LmtpClient } from './lmtp-client.ts';
import { dataBlock } from './corpus.ts';
import { DOMAIN, INGEST_USER, PASSWORD, WARMUP_USER, type Peer } from './peer.ts';
import { treeCpuMs } from './proc-stats.ts';

export interface IngestResult {
  messages: number;
  bytes: number;
  seconds: number;
  perSecond: number;
  cpuMsPerMessage: number;
}

async function measure(peer: Peer, count: number, bytes: number, run: () => Promise<void>): Promise<IngestResult> {
  const cpu0 = treeCpuMs(peer.pid);
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = treeCpuMs(peer.pid) - cpu0;
  return { messages: count, bytes, seconds, perSecond: count / seconds, cpuMsPerMessage: cpu / count };
}

/** Runs `work(i)` for every index of `items` on `workers` loops that take the next index from a shared queue. */
async function drain<T>(workers: T[], items: number, work: (worker: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(workers.map(async (w) => {
    while (next < items) await work(w, next++);
  }));
}

/** `messages[i]` are the raw messages; `blocks[i]` the same dot-stuffed for DATA. */
export async function lmtpIngest(peer: Peer, blocks: Uint8Array[], rawBytes: number, connections: number, user = INGEST_USER): Promise<IngestResult> {
  const clients = await Promise.all(Array.from({ length: connections }, () => LmtpClient.connect(peer.lmtpPort)));
  const rcpt = `${user}@${DOMAIN}`;
  const result = await measure(peer, blocks.length, rawBytes, () => drain(clients, blocks.length, (c, i) => c.deliver('sender@remote.test', rcpt, blocks[i]!)));
  await Promise.all(clients.map((c) => c.quit()));
  return result;
}

export async function appendIngest(peer: Peer, messages: Uint8Array[], rawBytes: number, connections: number, user = INGEST_USER): Promise<IngestResult> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = await ImapClient.connect(peer.imapPort);
      await c.login(user, PASSWORD);
      return c;
    }),
  );
  const result = await measure(peer, messages.length, rawBytes, () =>
    drain(clients, messages.length, async (c, i) => void ok(await c.append('INBOX', messages[i]!), 'APPEND')),
  );
  await Promise.all(clients.map((c) => c.logout()));
  return result;
}

/**
 * Before the measured workloads, each server takes `messages` by LMTP and by APPEND (two connections each, so each
 * of our two worker processes gets both protocols) into WARMUP_USER's mailbox, so the figures are a running server's, not its first minute's: our server's JIT compiles
 * the ingest path and its database statements get prepared; Dovecot's processes start and its caches fill. The
 * messages should carry no attachment from the measured corpus's pool (that would be deduplicated later).
 */
export async function warmUp(peer: Peer, messages: Uint8Array[]): Promise<void> {
  await lmtpIngest(peer, messages.map(dataBlock), 0, 2, WARMUP_USER);
  await appendIngest(peer, messages, 0, 2, WARMUP_USER);
}
