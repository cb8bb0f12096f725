/**
 * Live updates: `GET /users/:user/updates` as Server-Sent Events from the change log that IMAP IDLE uses
 * (`changes.since` / `changes.subscribe`). One event per change, its `id` the change id, so a client that
 * reconnects with `Last-Event-ID` (or `?lastEventId=`) gets what it missed, as far as the log still holds it.
 * Without one, the stream starts at the newest change. Comments every `api.sseKeepAliveSeconds` keep proxies
 * from closing an idle stream; the stream ends when the client leaves or the server shuts down.
 *
 * Event data is WildDuck-style JSON: `{ command, mailbox, uid, message, flags, modseq, path, time }` with
 * command EXISTS (new message), EXPUNGE, FETCH (flags changed), CREATE, RENAME, DELETE, SUBSCRIBE.
 *
 * Live events that are not changes (hooks/events.ts: what plugins publish on the user's ephemeral channel, e.g.
 * junk-notify's `marked.spam` / `marked.ham`) are forwarded as named events (`event: marked.spam`, data the
 * published JSON), so an EventSource sees them through `addEventListener('marked.spam')`, not `onmessage`.
 * They carry no `id:` line on purpose: an SSE client's last event id is only replaced by an event that has one,
 * so after a live event it still names the last change, and a reconnect resumes the change log exactly (no
 * gap, no repeat). Live events are not replayed after a reconnect; the webhooks are the durable channel.
 * At most LIVE_QUEUE of them wait for a slow reader; older ones are dropped.
 */
import { z } from 'zod';
import type { ChangeEntry, ChangeType, StoragePorts } from '../../storage/ports.ts';
import { parseUserEvent, userEventChannel } from '../../hooks/events.ts';
import type { UserEvent } from '../../hooks/events.ts';
import { ApiError } from './errors.ts';
import { userParams } from './common.ts';
import { StreamReply, route } from './route.ts';
import type { Route } from './route.ts';

const COMMANDS: Record<ChangeType, string> = {
  exists: 'EXISTS',
  expunge: 'EXPUNGE',
  flags: 'FETCH',
  'mailbox.create': 'CREATE',
  'mailbox.rename': 'RENAME',
  'mailbox.delete': 'DELETE',
  'mailbox.subscribe': 'SUBSCRIBE',
};

/** One change as an SSE event. */
export function changeEvent(change: ChangeEntry): string {
  const data: Record<string, unknown> = { command: COMMANDS[change.type], type: change.type, mailbox: change.mailboxId, modseq: change.modseq, time: change.created };
  if (change.uid !== null) Object.assign(data, { uid: change.uid, message: change.uid });
  if (change.flags !== null) data.flags = change.flags;
  if (change.path !== null) data.path = change.path;
  return `id: ${change.id}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A live (non-change) event as an SSE event: named, without an id (see the header comment). */
export function liveEvent(event: UserEvent): string {
  return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** How many changes are read from the log at a time. */
const BATCH = 500;
/** Live events kept for a reader that is behind. */
const LIVE_QUEUE = 1000;

async function* events(storage: StoragePorts, userId: string, startAfter: number | null, keepAliveMs: number, signal: AbortSignal): AsyncIterable<string> {
  let wake: (() => void) | null = null;
  let pending = true; // read the log once at the start
  const poke = () => {
    pending = true;
    wake?.();
  };
  const unsubscribe = storage.changes.subscribe(userId, poke);
  const live: UserEvent[] = [];
  const unsubscribeLive = storage.ephemeral.subscribe(userEventChannel(userId), (message) => {
    const event = parseUserEvent(message);
    if (!event) return;
    if (live.push(event) > LIVE_QUEUE) live.shift();
    wake?.();
  });
  signal.addEventListener('abort', poke, { once: true });
  try {
    let after = startAfter ?? (await storage.changes.latest(userId));
    yield `retry: 3000\n: stream of changes after ${after}\n\n`;
    while (!signal.aborted) {
      if (pending) {
        pending = false;
        for (;;) {
          const batch = await storage.changes.since(userId, after, { limit: BATCH });
          for (const change of batch) {
            yield changeEvent(change);
            after = change.id;
          }
          if (batch.length < BATCH || signal.aborted) break;
        }
        continue;
      }
      if (live.length) {
        yield liveEvent(live.shift()!);
        continue;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await new Promise<boolean>((resolve) => {
        wake = () => resolve(false);
        timer = setTimeout(() => resolve(true), keepAliveMs);
      });
      wake = null;
      clearTimeout(timer);
      if (timedOut && !pending && !live.length && !signal.aborted) yield ': keep-alive\n\n';
    }
  } finally {
    unsubscribe();
    unsubscribeLive();
    signal.removeEventListener('abort', poke);
  }
}

function lastEventId(header: string | string[] | undefined, query: number | undefined): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && value.trim() !== '') {
    if (!/^\d+$/.test(value.trim())) throw new ApiError('InputValidationError', 'Last-Event-ID must be a change id', [{ path: 'headers.last-event-id', message: 'expected a number' }]);
    return Number(value.trim());
  }
  return query ?? null;
}

export const updateRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/updates',
    summary: 'Server-Sent Events of mailbox changes (new messages, flags, expunges, mailbox changes); resumable with Last-Event-ID',
    tag: 'Mailboxes',
    access: 'owner',
    params: userParams,
    query: z.object({ lastEventId: z.coerce.number().int().nonnegative().optional().describe('Like the Last-Event-ID header (which wins)') }),
    rawResponse: 'text/event-stream',
    async handler({ app, user, query, headers }) {
      const start = lastEventId(headers['last-event-id'], query.lastEventId);
      const keepAliveMs = app.config.api.sseKeepAliveSeconds * 1000;
      return new StreamReply('text/event-stream; charset=utf-8', (signal) => events(app.storage, user.id, start, keepAliveMs, signal), {
        headers: { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
      });
    },
  }),
];
