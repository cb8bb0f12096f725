/**
 * The real CLI server (`cli/main.ts start`) in a child process, for end-to-end tests (test/cluster.test.ts,
 * test/redis-e2e.test.ts): started with WILDDUCK_* variables on ephemeral ports and JSON logs, its log entries read
 * as they arrive (which worker took a connection, when it is ready), and small IMAP / POP3 exchanges over it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnTs } from './spawn-ts.ts';
import { connectPlain, type LineClient } from './line-client.ts';
import { env as runtimeEnv } from '../../hooks/runtime.ts';

const CLI = new URL('../../protocols/cli/main.ts', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Server {
  child: ChildProcess;
  /** Settles when the child has exited and its output is read to the end. */
  closed: Promise<void>;
  ports: Record<string, number>;
  ready: { workers: number };
  entries(): Array<Record<string, unknown>>;
  output(): string;
}

export function startServer(dir: string, env: Record<string, string>): Promise<Server> {
  const child = spawnTs(CLI, ['start'], {
    cwd: dir,
    env: {
      ...runtimeEnv(),
      WILDDUCK_LOG_FORMAT: 'json',
      WILDDUCK_API_ENABLED: 'false',
      WILDDUCK_LMTP_PORT: '0',
      WILDDUCK_IMAP_PORT: '0',
      WILDDUCK_IMAP_TLS_PORT: '0',
      WILDDUCK_POP3_PORT: '0',
      WILDDUCK_POP3_TLS_PORT: '0',
      ...env,
    },
  });
  let out = '';
  let err = '';
  const parsed: Array<Record<string, unknown>> = [];
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ready line in 90 s; stdout: ${out.slice(-4000)} stderr: ${err}`));
    }, 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before it was ready; stdout: ${out.slice(-4000)} stderr: ${err}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        parsed.push(entry);
        if (entry.msg !== 'wildduck ready') continue;
        clearTimeout(timer);
        const ports: Record<string, number> = {};
        for (const url of entry.listeners as string[]) {
          const m = /^(\w+):\/\/.*:(\d+)$/.exec(url)!;
          ports[m[1]!] = Number(m[2]);
        }
        resolve({ child, closed, ports, ready: { workers: entry.workers as number }, entries: () => parsed, output: () => out + err });
      }
    });
  });
}

/** Waits for a log entry matching `match`, read from the server's output as it arrives. */
export async function logEntry(server: Server, match: (entry: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = server.entries().find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no log entry for ${what}\n${server.output().slice(-4000)}`);
    await sleep(20);
  }
}

export interface Client {
  lines: LineClient;
  worker: number;
}

/** Connects, reads the greeting, and learns from the server's log which worker took the connection. */
export async function connect(server: Server, port: number): Promise<Client> {
  const lines = await connectPlain(port);
  await lines.line(30_000);
  const local = (lines.socket as unknown as { localPort: number }).localPort;
  const entry = await logEntry(server, (e) => e.msg === 'connection opened' && e.port === local, `the connection from port ${local}`);
  return { lines, worker: entry.worker as number };
}

/** Connections until there is one on each of two different workers. */
export async function onTwoWorkers(server: Server, port: number): Promise<[Client, Client]> {
  const spare: Client[] = [];
  for (let i = 0; i < 20; i++) {
    const client = await connect(server, port);
    const other = spare.find((c) => c.worker !== client.worker);
    if (other) {
      for (const c of spare) if (c !== other) c.lines.close();
      return [other, client];
    }
    spare.push(client);
  }
  throw new Error('20 connections, all on one worker');
}

/** Sends an IMAP command and returns every line up to and including its tagged reply. */
export async function imap(client: Client, tag: string, command: string): Promise<string[]> {
  client.lines.send(`${tag} ${command}\r\n`);
  return untilTagged(client, tag);
}

/** APPENDs `message` to INBOX (a synchronizing literal); returns every line up to the tagged reply. */
export async function appendTo(client: Client, tag: string, message: string): Promise<string[]> {
  client.lines.send(`${tag} APPEND INBOX {${message.length}}\r\n`);
  assert.match(await client.lines.line(30_000), /^\+/);
  client.lines.send(message + '\r\n');
  return untilTagged(client, tag);
}

export async function untilTagged(client: Client, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const line = await client.lines.line(30_000);
    out.push(line);
    if (line.startsWith(`${tag} `)) return out;
  }
}

export async function pop3(client: Client, command: string): Promise<string> {
  client.lines.send(`${command}\r\n`);
  return client.lines.line(30_000);
}


/**
 * alice's `watcher` SELECTs INBOX (empty) and IDLEs; `writer` (another worker or server instance) logs in as alice and
 * APPENDs one message: the watcher hears `* 1 EXISTS` and holds it as `\Recent`, the writer's SELECT then sees it
 * as not recent (one session gets each message). Both log out.
 */
export async function idleSeesAppendFromElsewhere(watcher: Client, writer: Client, subject: string): Promise<void> {
  assert.match((await imap(watcher, 'a', 'LOGIN alice alice-pw')).at(-1)!, /^a OK/);
  assert.match((await imap(watcher, 'b', 'SELECT INBOX')).at(-1)!, /^b OK \[READ-WRITE\]/);
  watcher.lines.send('c IDLE\r\n');
  assert.equal(await watcher.lines.line(30_000), '+ idling');

  assert.match((await imap(writer, 'a', 'LOGIN alice alice-pw')).at(-1)!, /^a OK/);
  const message = `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n\r\nHello from elsewhere.\r\n`;
  assert.match((await appendTo(writer, 'b', message)).at(-1)!, /^b OK/);

  const pushed: string[] = [];
  while (!pushed.includes('* 1 EXISTS')) pushed.push(await watcher.lines.line(30_000));
  watcher.lines.send('DONE\r\n');
  const done = await untilTagged(watcher, 'c');
  assert.match(done.at(-1)!, /^c OK/);
  assert.ok([...pushed, ...done].includes('* 1 RECENT'), `the watching session holds the new message as \\Recent: ${pushed.join(' | ')}`);

  // the watcher claimed the message as recent; a SELECT elsewhere must not see it as recent
  const selected = await imap(writer, 'c', 'SELECT INBOX');
  assert.ok(selected.includes('* 1 EXISTS'));
  assert.ok(selected.includes('* 0 RECENT'), selected.join('\n'));
  for (const c of [watcher, writer]) {
    await imap(c, 'z', 'LOGOUT');
    c.lines.close();
  }
}

/**
 * `user` opens its POP3 maildrop on `holder`; a session on `other` (another worker or server instance) is refused
 * `[IN-USE]` until the holder QUITs, then gets it. Both connections are closed.
 */
export async function pop3LockHoldsElsewhere(holder: Client, other: Client, user: string, password: string): Promise<void> {
  assert.match(await pop3(holder, `USER ${user}`), /^\+OK/);
  assert.match(await pop3(holder, `PASS ${password}`), /^\+OK/);
  assert.match(await pop3(other, `USER ${user}`), /^\+OK/);
  assert.match(await pop3(other, `PASS ${password}`), /^-ERR \[IN-USE\]/);
  assert.match(await pop3(holder, 'QUIT'), /^\+OK/);
  holder.lines.close();
  assert.match(await pop3(other, `USER ${user}`), /^\+OK/);
  assert.match(await pop3(other, `PASS ${password}`), /^\+OK/, 'released by QUIT on the other side');
  assert.match(await pop3(other, 'QUIT'), /^\+OK/);
  other.lines.close();
}

/** Sends each server SIGTERM and checks it logged "stopped" and (on Node.js; Deno's child_process reports no exit code for a signalled child) exited 0. */
export async function stopsCleanly(servers: readonly Server[]): Promise<void> {
  const { runtimeName } = await import('../../hooks/runtime.ts');
  for (const server of servers) {
    server.child.kill('SIGTERM');
    await server.closed;
    assert.match(server.output(), /"msg":"stopped"}/);
    if (runtimeName !== 'deno') assert.equal(server.child.exitCode, 0, server.output().slice(-4000));
  }
}
