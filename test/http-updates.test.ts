/** HTTP API live updates: Server-Sent Events from the change log, fed by IMAP and the API, resumable, kept alive, ended on shutdown. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp, ROOT_TOKEN } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { appendMessage, login, message } from './helpers/imap-harness.ts';

interface SseEvent {
  id?: string;
  data?: any;
  comment?: string;
}

/** Reads an SSE response: events as they come, parsed. */
class SseReader {
  private buffer = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  ended = false;
  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }
  /** The next event or comment block; null at the end of the stream. */
  async next(): Promise<SseEvent | null> {
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const event: SseEvent = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) event.comment = line.slice(1).trim();
          else if (line.startsWith('id: ')) event.id = line.slice(4);
          else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
        }
        return event;
      }
      const { value, done } = await this.reader.read();
      if (done) {
        this.ended = true;
        return null;
      }
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }
  /** The next event with data (skipping comments). */
  async nextData(): Promise<SseEvent> {
    for (;;) {
      const event = await this.next();
      if (!event) throw new Error('stream ended');
      if (event.data) return event;
    }
  }
  cancel() {
    return this.reader.cancel().catch(() => {});
  }
}

describe('HTTP API: live updates (SSE)', () => {
  let t: HttpTestApp;
  let user: string;
  let inbox: string;
  const open = async (headers: Record<string, string> = {}, path = `/users/${user}/updates`) => {
    const res = await fetch(t.base + path, { headers: { 'x-access-token': ROOT_TOKEN, ...headers } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = new SseReader(res.body!);
    const hello = await reader.next();
    assert.match(hello!.comment!, /stream of changes/);
    return reader;
  };

  before(async () => {
    t = await bootHttpTestApp({ api: { sseKeepAliveSeconds: 1 }, imap: { enabled: false } });
    user = (await t.request('POST', '/users', { body: { username: 'alice', password: 'secret' } })).body.id;
    inbox = (await t.request('GET', `/users/${user}/mailboxes`)).body.results[0].id;
  });
  after(() => t.close());

  it('delivers a message appended over IMAP, flag changes and expunges made through the API', async () => {
    const stream = await open();
    const imap = await login(t.app);
    assert.match(await appendMessage(imap, 'INBOX', message('Over IMAP')), /^OK/);
    const exists = await stream.nextData();
    assert.deepEqual([exists.data.command, exists.data.mailbox, exists.data.uid], ['EXISTS', inbox, 1]);
    assert.ok(Number(exists.id) > 0);
    await t.request('PUT', `/users/${user}/mailboxes/${inbox}/messages/1`, { body: { flagged: true } });
    const flags = await stream.nextData();
    assert.equal(flags.data.command, 'FETCH');
    assert.deepEqual(flags.data.flags, ['\\Flagged']);
    await t.request('DELETE', `/users/${user}/mailboxes/${inbox}/messages/1`);
    const gone = await stream.nextData();
    assert.deepEqual([gone.data.command, gone.data.uid], ['EXPUNGE', 1]);
    await t.request('POST', `/users/${user}/mailboxes`, { body: { path: 'Projects' } });
    const made = await stream.nextData();
    assert.deepEqual([made.data.command, made.data.path], ['CREATE', 'Projects']);
    await imap.status('LOGOUT');
    await stream.cancel();
  });

  it('resumes after Last-Event-ID and sends keep-alive comments', async () => {
    const first = await open({ 'last-event-id': '0' });
    const replay: string[] = [];
    for (;;) {
      const event = (await first.nextData()).data;
      replay.push(event.command);
      if (event.path === 'Projects') break;
    }
    // the user's default mailboxes first, then what the first test did
    assert.deepEqual(replay.slice(-4), ['EXISTS', 'FETCH', 'EXPUNGE', 'CREATE']);
    assert.ok(replay.slice(0, -4).every((c) => c === 'CREATE'));
    await first.cancel();
    const latest = await t.app.storage.changes.latest(user);
    const resumed = await open({ 'last-event-id': String(latest - 1) });
    assert.equal((await resumed.nextData()).data.command, 'CREATE');
    const keepAlive = await resumed.next();
    assert.equal(keepAlive?.comment, 'keep-alive');
    await resumed.cancel();
    const byQuery = await open({}, `/users/${user}/updates?lastEventId=${latest - 1}`);
    assert.equal((await byQuery.nextData()).id, String(latest));
    await byQuery.cancel();
  });

  it('refuses bad resume ids and other users', async () => {
    const res = await fetch(`${t.base}/users/${user}/updates`, { headers: { 'x-access-token': ROOT_TOKEN, 'last-event-id': 'abc' } });
    assert.equal(res.status, 400);
    await t.request('POST', '/users', { body: { username: 'lee', password: 'x1' } });
    const token = (await t.request('POST', '/authenticate', { body: { username: 'lee', password: 'x1', token: true } })).body.token;
    assert.equal((await t.request('GET', `/users/${user}/updates`, { token })).status, 403);
  });

  it('ends open streams cleanly when the server shuts down', async () => {
    const stream = await open();
    const started = Date.now();
    await t.listener.close();
    while ((await stream.next()) !== null);
    assert.equal(stream.ended, true);
    assert.ok(Date.now() - started < 3000);
  });
});
