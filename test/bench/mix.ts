/**
 * A mixed concurrent IMAP load in the spirit of imaptest's default profile, written for the bench. Each client has
 * its own user (mix1..mixN, seeded with SEED_MESSAGES messages) and repeats a session:
 *
 *   LOGIN (100 %)  LIST "" * (50 %)  STATUS INBOX (50 %)  SELECT INBOX (100 %)
 *   FETCH 1:* (UID FLAGS) (100 %)  FETCH one message's header and text (100 %)
 *   STORE +FLAGS \Seen or \Flagged (50 %)  UID SEARCH SUBJECT (50 %)  STORE +FLAGS \Deleted (100 %)
 *   EXPUNGE (100 %)  APPEND a 1–3 KB message (100 %)  LOGOUT (100 %)
 *
 * so every session adds one message and removes one. With `keepSessions` a client logs in once and repeats the
 * session from LIST without LOGOUT. With `pipelining` the commands between SELECT and EXPUNGE are sent at once.
 * Counted: every tagged reply (commands), OK LOGINs (logins), and NO / BAD replies or dropped connections (errors);
 * `latencyMs` is the mean time from sending to the tagged reply per command name (pipelined commands include their
 * wait behind the ones sent before them).
 */
import { smallMessage, prng } from './corpus.ts';
import { ImapClient, ok, type Reply } from './imap-client.ts';
import { PASSWORD, mixUser, type Peer } from './peer.ts';
import { treeCpuMs } from './proc-stats.ts';

export const SEED_MESSAGES = 10;

export interface MixOptions {
  clients: number;
  seconds: number;
  keepSessions: boolean;
  pipelining: boolean;
}

export interface MixResult extends MixOptions {
  commands: number;
  logins: number;
  errors: number;
  firstError: string;
  commandsPerSecond: number;
  loginsPerSecond: number;
  cpuMsPerCommand: number;
  latencyMs: Record<string, { count: number; mean: number }>;
}

/** Brings every mix user's INBOX to SEED_MESSAGES messages (untimed setup). */
export async function seedMix(peer: Peer, clients: number): Promise<void> {
  let next = 0;
  // four at a time: a burst of first logins (scrypt, not cached yet) would fill a server's per-client queue
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let u = next++; u < clients; u = next++) await seedOne(peer, u);
    }),
  );
}

async function seedOne(peer: Peer, u: number): Promise<void> {
  const c = await ImapClient.connect(peer.imapPort);
  await c.login(mixUser(u), PASSWORD);
  const exists = Number(/\* (\d+) EXISTS/.exec(ok(await c.command('SELECT INBOX'), 'SELECT').untagged.join('\n'))?.[1] ?? 0);
  for (let i = exists; i < SEED_MESSAGES; i++) ok(await c.append('INBOX', smallMessage(500_000 + u * 100 + i)), 'APPEND');
  await c.logout();
}

export async function runMix(peer: Peer, options: MixOptions): Promise<MixResult> {
  let commands = 0;
  let logins = 0;
  let errors = 0;
  let firstError = '';
  let stop = false;
  const error = (what: string) => {
    errors++;
    firstError ||= what;
  };
  const latency = new Map<string, { count: number; totalMs: number }>();
  const timed = async (what: string, send: () => Promise<Reply>): Promise<Reply> => {
    const t = performance.now();
    const r = await send();
    const l = latency.get(what) ?? { count: 0, totalMs: 0 };
    l.count++;
    l.totalMs += performance.now() - t;
    latency.set(what, l);
    commands++;
    if (r.status !== 'OK') error(`${what}: ${r.status} ${r.text}`);
    return r;
  };
  const commandName = (cmd: string) => (cmd.startsWith('UID ') ? cmd.split(' ', 2).join(' ') : cmd.split(' ')[0]!);

  async function client(u: number): Promise<void> {
    const rand = prng(9001 + u);
    const pick = (n: number) => 1 + Math.floor(rand() * n);
    let appended = 0;
    let conn: ImapClient | null = null;
    while (!stop) {
      try {
        if (!conn) {
          conn = await ImapClient.connect(peer.imapPort);
          const c = conn;
          const login = await timed('LOGIN', () => c.command(`LOGIN "${mixUser(u)}" "${PASSWORD}"`));
          if (login.status !== 'OK') {
            conn.close();
            conn = null;
            continue;
          }
          logins++;
        }
        const c = conn;
        const run = (cmd: string) => timed(commandName(cmd), () => c.command(cmd));
        if (rand() < 0.5) await run('LIST "" "*"');
        if (rand() < 0.5) await run('STATUS INBOX (MESSAGES UNSEEN UIDNEXT)');
        const select = await run('SELECT INBOX');
        const exists = Number(/\* (\d+) EXISTS/.exec(select.untagged.join('\n'))?.[1] ?? 0);
        const batch: string[] = ['FETCH 1:* (UID FLAGS)'];
        if (exists > 0) batch.push(`FETCH ${pick(exists)} (UID RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT])`);
        if (exists > 0 && rand() < 0.5) batch.push(`STORE ${pick(exists)} +FLAGS (${rand() < 0.5 ? '\\Seen' : '\\Flagged'})`);
        if (rand() < 0.5) batch.push('UID SEARCH SUBJECT report');
        if (exists > 0) batch.push(`STORE ${pick(exists)} +FLAGS.SILENT (\\Deleted)`);
        if (options.pipelining) await Promise.all(batch.map(run));
        else for (const cmd of batch) await run(cmd);
        await run('EXPUNGE');
        await timed('APPEND', () => c.append('INBOX', smallMessage(1_000_000 + u * 100_000 + appended++)));
        if (!options.keepSessions) {
          await timed('LOGOUT', () => c.command('LOGOUT'));
          c.close();
          conn = null;
        }
      } catch (err) {
        if (stop) break;
        error(String((err as Error).message ?? err));
        conn?.close();
        conn = null;
      }
    }
    conn?.close();
  }

  const cpu0 = treeCpuMs(peer.pid);
  const t0 = performance.now();
  const timer = setTimeout(() => (stop = true), options.seconds * 1000);
  await Promise.all(Array.from({ length: options.clients }, (_, u) => client(u)));
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = treeCpuMs(peer.pid) - cpu0;
  return {
    ...options,
    commands,
    logins,
    errors,
    firstError,
    commandsPerSecond: commands / seconds,
    loginsPerSecond: logins / seconds,
    cpuMsPerCommand: cpu / Math.max(commands, 1),
    latencyMs: Object.fromEntries([...latency].map(([name, l]) => [name, { count: l.count, mean: l.totalMs / l.count }])),
  };
}
