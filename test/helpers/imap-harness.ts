/**
 * IMAP test harness: a real app on SQLite in a temp directory, sessions over an in-memory duplex pair, and a
 * small transcript client (send lines, collect everything up to the tagged response).
 */
import { after, before } from 'node:test';
import { Duplex } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './test-backend.ts';
import { resolveConfig } from '../../hooks/config.ts';
import type { ConfigInput } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import type { LogFields, Logger } from '../../hooks/log.ts';
import type { App } from '../../protocols/app.ts';
import { createUser } from '../../storage/users.ts';
import { duplexConnection, handleImapConnection } from '../../protocols/imap.ts';
import type { DuplexConnectionOptions } from '../../protocols/imap.ts';

export interface ImapTestApp {
  app: App;
  dataDir: string;
  logs: LogFields[];
  userId: string;
  close(): Promise<void>;
}

/** Boots the whole stack with user `alice` / `secret`. `log` replaces the debug logger that fills `logs`. */
export async function bootImapTestApp(overrides: ConfigInput = {}, log?: Logger): Promise<ImapTestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-imap-'));
  const config = resolveConfig({
    dataDir,
    ...overrides,
    auth: { failedLogins: { delayMs: 0 }, ...(overrides.auth ?? {}) },
    imap: { port: 0, tlsPort: null, ...(overrides.imap ?? {}) },
  });
  const logs: LogFields[] = [];
  const app = await bootTestApp(config, log ?? createLogger({ level: 'debug', format: 'json', sink: (_line, entry) => logs.push(entry) }));
  const { user } = await createUser(app.storage, config, { username: 'alice', password: 'secret', addresses: ['alice@example.com'] });
  return {
    app,
    dataDir,
    logs,
    userId: user.id,
    close: async () => {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The suite's app, booted before its first test and closed after its last: call it inside `describe`. The object it
 * returns is filled in when the suite starts (read its fields inside the tests, not at definition time).
 */
export function imapTestAppPerSuite(overrides: ConfigInput = {}): ImapTestApp {
  const t = {} as ImapTestApp;
  before(async () => {
    Object.assign(t, await bootImapTestApp(overrides));
  });
  after(() => t.close());
  return t;
}

/** Two connected in-memory duplex streams. */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      destroy(err, callback) {
        const peer = other();
        if (!peer.destroyed) peer.push(null);
        callback(err);
      },
    });
  sides.push(make(() => sides[1]!), make(() => sides[0]!));
  return [sides[0]!, sides[1]!];
}

const decoder = new TextDecoder();

export class TestClient {
  readonly socket: Duplex;
  /** Everything received and not yet consumed. */
  buffer = '';
  closed = false;
  readonly done: Promise<void>;
  #waiters: Array<() => void> = [];
  #tag = 0;

  constructor(socket: Duplex, done: Promise<void>) {
    this.socket = socket;
    this.done = done;
    socket.on('data', (chunk: Uint8Array) => {
      this.buffer += decoder.decode(chunk, { stream: true });
      this.#wake();
    });
    socket.on('end', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `test(buffer)` returns an index ≥ 0 (end of what to take), then removes and returns that much. */
  async take(test: (buffer: string) => number, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = test(this.buffer);
      if (end >= 0) {
        const out = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end);
        return out;
      }
      if (this.closed) throw new Error(`connection closed; buffer: ${JSON.stringify(this.buffer.slice(0, 2000))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; buffer: ${JSON.stringify(this.buffer.slice(0, 2000))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next full line (without CRLF). */
  async line(timeoutMs?: number): Promise<string> {
    const text = await this.take((b) => {
      const at = b.indexOf('\r\n');
      return at < 0 ? -1 : at + 2;
    }, timeoutMs);
    return text.slice(0, -2);
  }

  write(text: string | Uint8Array): void {
    this.socket.write(text);
  }

  nextTag(): string {
    return `A${++this.#tag}`;
  }

  /** Sends `tag command` and returns the raw response text up to and including the tagged line. */
  async raw(command: string, tag = this.nextTag(), timeoutMs?: number): Promise<string> {
    this.write(`${tag} ${command}\r\n`);
    return this.untilTagged(tag, timeoutMs);
  }

  async untilTagged(tag: string, timeoutMs?: number): Promise<string> {
    return this.take((b) => {
      const at = b.startsWith(`${tag} `) ? 0 : b.indexOf(`\r\n${tag} `);
      if (at < 0) return -1;
      const end = b.indexOf('\r\n', at + 2);
      return end < 0 ? -1 : end + 2;
    }, timeoutMs);
  }

  /** Sends a command and returns its response lines (literals stay inside the lines they belong to). */
  async command(command: string, timeoutMs?: number): Promise<string[]> {
    const tag = this.nextTag();
    const text = await this.raw(command, tag, timeoutMs);
    return text.replace(/\r\n$/, '').split('\r\n').map((l) => l.replace(new RegExp(`^${tag} `), 'TAG '));
  }

  /** The tagged line's status of a command: 'OK' | 'NO' | 'BAD' plus text. */
  async status(command: string): Promise<string> {
    const lines = await this.command(command);
    return lines[lines.length - 1]!.replace(/^TAG /, '');
  }

  end(): void {
    this.socket.end();
  }
}

/** Opens a session on `app` over an in-memory pair and reads the greeting. */
export async function connect(app: App, options: DuplexConnectionOptions = {}): Promise<{ client: TestClient; greeting: string }> {
  const [server, clientSide] = duplexPair();
  const done = handleImapConnection(app, duplexConnection(server, options));
  const client = new TestClient(clientSide, done);
  const greeting = await client.line();
  return { client, greeting };
}

/** Connects and logs in as alice. */
export async function login(app: App, options: DuplexConnectionOptions = {}): Promise<TestClient> {
  const { client } = await connect(app, options);
  const status = await client.status('LOGIN alice secret');
  if (!status.startsWith('OK')) throw new Error(`login failed: ${status}`);
  return client;
}

/** A small RFC 5322 message. */
export function message(subject: string, body = 'Hello there.\r\n', extra = ''): string {
  return `From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.com>\r\n${extra}\r\n${body}`;
}

/** APPENDs a message with a synchronizing literal, answering the continuation; returns the tagged line. */
export async function appendMessage(client: TestClient, mailbox: string, text: string, flags = ''): Promise<string> {
  const tag = client.nextTag();
  const size = new TextEncoder().encode(text).length;
  client.write(`${tag} APPEND ${mailbox}${flags ? ` (${flags})` : ''} {${size}}\r\n`);
  const cont = await client.line();
  if (!cont.startsWith('+')) return cont;
  client.write(text + '\r\n');
  const out = await client.untilTagged(tag);
  return out.split('\r\n').filter(Boolean).pop()!.replace(`${tag} `, '');
}

/** CREATE `name` and APPEND `count` messages to it, subjects `name-1` … `name-count`. */
export async function createWithMessages(client: TestClient, name: string, count: number): Promise<void> {
  await client.command(`CREATE ${name}`);
  for (let i = 1; i <= count; i++) await appendMessage(client, name, message(`${name}-${i}`));
}

/** Two sessions of the test user on a new mailbox `name` holding `count` messages, both with it selected. */
export async function twoSessionsOn(app: App, name: string, count: number): Promise<[TestClient, TestClient]> {
  const a = await login(app);
  const b = await login(app);
  await createWithMessages(a, name, count);
  await a.command(`SELECT ${name}`);
  await b.command(`SELECT ${name}`);
  return [a, b];
}
