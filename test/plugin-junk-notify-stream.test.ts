/**
 * Junk notification on the HTTP event stream: `marked.spam` / `marked.ham` arrive as named SSE events without an
 * id (so Last-Event-ID still names a change-log entry and resumption is exact), from IMAP MOVE and from the HTTP
 * API; with `stream: false` (or the plugin off) the stream carries only changes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bootHttpTestApp, ROOT_TOKEN } from './helpers/http-harness.ts';
import type { HttpTestApp } from './helpers/http-harness.ts';
import { appendMessage, login, message } from './helpers/imap-harness.ts';
import { publishUserEvent } from '../hooks/events.ts';
import type { JunkEvent } from '../plugins/junk-notify.ts';

interface SseBlock {
  id?: string;
  event?: string;
  data?: any;
  comment?: string;
}

/** Opens the user's event stream and reads it block by block. */
async function openStream(t: HttpTestApp, user: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(`${t.base}/users/${user}/updates`, { headers: { 'x-access-token': ROOT_TOKEN, ...headers }, signal: controller.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (): Promise<SseBlock> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block: SseBlock = {};
        for (const line of buffer.slice(0, end).split('\n')) {
          if (line.startsWith(':')) block.comment = line.slice(1).trim();
          else if (line.startsWith('id: ')) block.id = line.slice(4);
          else if (line.startsWith('event: ')) block.event = line.slice(7);
          else if (line.startsWith('data: ')) block.data = JSON.parse(line.slice(6));
        }
        buffer = buffer.slice(end + 2);
        return block;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
  /** Blocks with data up to and including the first one `stop` accepts. */
  const until = async (stop: (b: SseBlock) => boolean): Promise<SseBlock[]> => {
    const out: SseBlock[] = [];
    for (;;) {
      const block = await next();
      if (!block.data) continue;
      out.push(block);
      if (stop(block)) return out;
    }
  };
  await next(); // retry + opening comment
  return { next, until, close: () => controller.abort() };
}

describe('junk-notify on the HTTP event stream', () => {
  let t: HttpTestApp;
  let user: string;
  let boxes: Record<string, string>;
  before(async () => {
    t = await bootHttpTestApp({ api: { sseKeepAliveSeconds: 30 }, plugins: [['junk-notify', {}]] });
    user = (await t.request('POST', '/users', { body: { username: 'alice', password: 'secret' } })).body.id;
    boxes = Object.fromEntries((await t.request('GET', `/users/${user}/mailboxes`)).body.results.map((m: { path: string; id: string }) => [m.path, m.id]));
  });
  after(() => t.close());

  it('IMAP MOVE into Junk: the changes, then a named marked.spam event without an id; resuming from the last id is exact', async () => {
    const stream = await openStream(t, user);
    const imap = await login(t.app);
    assert.match(await appendMessage(imap, 'INBOX', message('spammy')), /^OK/);
    assert.match(await imap.status('SELECT INBOX'), /^OK/);
    assert.match(await imap.status('MOVE 1 Junk'), /^OK/);
    const blocks = await stream.until((b) => b.event === 'marked.spam');
    stream.close();
    const changes = blocks.filter((b) => !b.event);
    assert.deepEqual(changes.map((b) => b.data.command).sort(), ['EXISTS', 'EXISTS', 'EXPUNGE'], 'the append, then the move');
    assert.ok(changes.every((b) => /^\d+$/.test(b.id!)));
    const spam = blocks[blocks.length - 1]!;
    assert.equal(spam.id, undefined, 'live events carry no id');
    const data = spam.data as JunkEvent;
    assert.equal(data.event, 'marked.spam');
    assert.deepEqual([data.from.path, data.to.path, data.action, data.via], ['INBOX', 'Junk', 'move', 'imap']);
    assert.equal(data.message.messageId, '<spammy@example.com>');
    assert.equal(data.user.id, user);

    // An EventSource reconnects with the last id it saw: the last change's. It gets what came after, nothing twice.
    const lastId = changes[changes.length - 1]!.id!;
    await t.request('PUT', `/users/${user}/mailboxes/${boxes.Junk}/messages/1`, { body: { flagged: true } });
    const resumed = await openStream(t, user, { 'last-event-id': lastId });
    const [flagged] = await resumed.until(() => true);
    assert.equal(flagged!.data.command, 'FETCH');
    assert.equal(Number(flagged!.id), Number(lastId) + 1);
    resumed.close();
    await imap.status('LOGOUT');
  });

  it('a move out of Junk through the HTTP API is marked.ham (via http); only this user’s streams get it', async () => {
    const other = (await t.request('POST', '/users', { body: { username: 'bob', password: 'secret2' } })).body.id;
    const bobStream = await openStream(t, other);
    const stream = await openStream(t, user);
    const moved = await t.request('PUT', `/users/${user}/mailboxes/${boxes.Junk}/messages/1`, { body: { moveTo: boxes.INBOX } });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const blocks = await stream.until((b) => b.event !== undefined);
    const ham = blocks[blocks.length - 1]!;
    assert.equal(ham.event, 'marked.ham');
    assert.deepEqual([ham.data.from.path, ham.data.to.path, ham.data.via], ['Junk', 'INBOX', 'http']);
    stream.close();
    // bob's stream saw nothing but what bob publishes
    await publishUserEvent(t.app.storage.ephemeral, other, { event: 'test.ping', data: { n: 1 } });
    const [ping] = await bobStream.until(() => true);
    assert.deepEqual([ping!.event, ping!.data], ['test.ping', { n: 1 }]);
    bobStream.close();
  });

  it('with stream: false the stream carries only changes', async () => {
    const off = await bootHttpTestApp({ plugins: [['junk-notify', { stream: false }]] });
    try {
      const id = (await off.request('POST', '/users', { body: { username: 'carol', password: 'secret' } })).body.id;
      const mine = Object.fromEntries((await off.request('GET', `/users/${id}/mailboxes`)).body.results.map((m: { path: string; id: string }) => [m.path, m.id]));
      const raw = Buffer.from(message('quiet')).toString('base64');
      assert.equal((await off.request('POST', `/users/${id}/mailboxes/${mine.INBOX}/messages`, { body: { raw } })).status, 200);
      const stream = await openStream(off, id);
      assert.equal((await off.request('PUT', `/users/${id}/mailboxes/${mine.INBOX}/messages/1`, { body: { moveTo: mine.Junk } })).status, 200);
      // a marker after the move: everything before it has been written
      await publishUserEvent(off.app.storage.ephemeral, id, { event: 'test.marker', data: {} });
      const blocks = await stream.until((b) => b.event === 'test.marker');
      stream.close();
      assert.deepEqual(blocks.filter((b) => b.event).map((b) => b.event), ['test.marker']);
    } finally {
      await off.close();
    }
  });
});
