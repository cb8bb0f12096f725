/**
 * Junk notification: a user moving (or copying) a message into their `\Junk` mailbox says "this is spam"
 * (`marked.spam`); moving one out of it says "this is not" (`marked.ham`). The plugin turns that into
 *
 *   - signed webhooks: POST JSON to each of `webhooks[].url`, `X-WildDuck-Signature: sha256=<hex HMAC-SHA256 of
 *     the body with webhooks[].secret>`, `X-WildDuck-Event`, `X-WildDuck-Delivery` (a unique id; retries reuse it);
 *   - optionally a learn request: the raw message POSTed to `learn.spamUrl` / `learn.hamUrl` (rspamd's
 *     `/learnspam` and `/learnham` controller endpoints, or anything alike), with `learn.headers` (e.g. Password).
 *   - events on the HTTP event stream (`GET /users/:user/updates`, `stream: true`, the default): the same JSON as
 *     the webhook body, as a named SSE event `marked.spam` / `marked.ham`, published on the user's ephemeral
 *     channel (hooks/events.ts) so it reaches streams served by any instance. Live only: a stream that is not
 *     open when it happens does not get it (the webhooks are the durable path).
 *
 * It taps `message.afterMove` and `message.afterCopy` at OBSERVE, so IMAP MOVE, COPY (and COPY + EXPUNGE), the
 * HTTP API and any plugin moving messages are all covered; mail *delivered* to Junk (spam routing, filters) is
 * the server's own classification and emits nothing. The tap only writes the events to a durable queue — one
 * JSON file per delivery under `<dataDir>/queue/junk-notify/` (written to a temp name, then renamed) — and
 * returns: sending never blocks or fails the user's command. A background sender posts what is due; a
 * failure (network, non-2xx) is retried with exponential backoff (`retry.baseMs` · 2^attempt, capped at
 * `retry.maxMs`) up to `retry.attempts` times, then moved to `failed/`. After a restart the sender picks the
 * queue up where it stopped.
 *
 *   plugins: [['junk-notify', { webhooks: [{ url: 'https://hooks.example/wildduck', secret: '...' }],
 *                               learn: { spamUrl: 'http://127.0.0.1:11334/learnspam', hamUrl: 'http://127.0.0.1:11334/learnham' } }]]
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { OBSERVE } from '../hooks/stages.ts';
import type { HookContext } from '../hooks/context.ts';
import type { CopyInput, CopyResult } from '../hooks/types.ts';
import type { BlobsPort, MailboxRecord } from '../storage/ports.ts';
import { readAll, readMessage } from '../storage/mime/reassemble.ts';
import { publishUserEvent } from '../hooks/events.ts';

export const JUNK_NOTIFY_PLUGIN = 'junk-notify';

const optionsSchema = z
  .object({
    webhooks: z.array(z.object({ url: z.string().url(), secret: z.string().min(1) }).strict()),
    learn: z
      .object({ spamUrl: z.string().url(), hamUrl: z.string().url(), headers: z.record(z.string(), z.string()).default({}) })
      .strict()
      .nullable(),
    retry: z
      .object({ attempts: z.number().int().positive(), baseMs: z.number().int().positive(), maxMs: z.number().int().positive() })
      .strict(),
    /** How often the sender looks for due deliveries (it also wakes on every new event). */
    pollMs: z.number().int().positive(),
    /** Also publish each event on the HTTP event stream (GET /users/:user/updates). */
    stream: z.boolean(),
    /** Per request. */
    timeoutMs: z.number().int().positive(),
    /** Queue directory; default `<dataDir>/queue/junk-notify`. */
    queueDir: z.string().min(1).nullable(),
  })
  .strict();

export type JunkNotifyOptions = z.output<typeof optionsSchema>;

export type JunkEventName = 'marked.spam' | 'marked.ham';

/** The webhook body. */
export interface JunkEvent {
  readonly id: string;
  readonly event: JunkEventName;
  readonly time: string;
  readonly user: { readonly id: string; readonly username: string | null };
  readonly from: { readonly mailbox: string; readonly path: string };
  readonly to: { readonly mailbox: string; readonly path: string };
  readonly message: { readonly uid: number; readonly messageId: string | null; readonly subject: string; readonly size: number };
  /** How it happened: 'move' or 'copy'. */
  readonly action: 'move' | 'copy';
  /** Protocol of the session that did it (imap, http, internal). */
  readonly via: string;
}

/** One queued delivery (a file in the queue directory). */
interface QueueItem {
  id: string;
  kind: 'webhook' | 'learn';
  url: string;
  /** webhook: the JSON body; learn: empty (the message is read when sent). */
  body: string;
  event: JunkEventName;
  /** learn: where the message is now. */
  message?: { mailboxId: string; uid: number };
  attempts: number;
  due: number;
  lastError?: string;
}

/**
 * A mailbox id as queued: one queued by the embedded backend before its ids became 24 hex digits (SQLite migration
 * 13, storage/sqlite/common.ts) is its decimal row id, which names the same mailbox in hexadecimal now.
 */
export function legacyId(id: string): string {
  return /^[1-9][0-9]{0,15}$/.test(id) ? Number(id).toString(16).padStart(24, '0') : id;
}

/** HMAC-SHA256 of the body, as sent in X-WildDuck-Signature (`sha256=<hex>`). */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

function classify(from: MailboxRecord, to: MailboxRecord): JunkEventName | null {
  const fromJunk = from.specialUse === '\\Junk';
  const toJunk = to.specialUse === '\\Junk';
  if (toJunk && !fromJunk) return 'marked.spam';
  if (fromJunk && !toJunk && to.specialUse !== '\\Trash') return 'marked.ham';
  return null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const junkNotifyPlugin = definePlugin<JunkNotifyOptions>({
  description: 'Webhooks (signed, retried, durable) and spam-filter learn requests when users move mail into or out of Junk',
  optionsSchema,
  defaults: {
    webhooks: [],
    learn: null,
    retry: { attempts: 8, baseMs: 1000, maxMs: 15 * 60 * 1000 },
    pollMs: 5000,
    stream: true,
    timeoutMs: 10_000,
    queueDir: null,
  },
  create(options) {
    let dir = '';
    let timer: ReturnType<typeof setTimeout> | null = null;
    let running: Promise<void> | null = null;
    let again = false;
    let closed = false;
    let api: PluginApi;
    const secrets = new Map(options.webhooks.map((w) => [w.url, w.secret]));

    const write = async (item: QueueItem, where = dir): Promise<void> => {
      const tmp = join(where, `.${item.id}.${randomUUID()}.tmp`);
      await writeFile(tmp, JSON.stringify(item));
      await rename(tmp, join(where, `${item.id}.json`));
    };

    const post = async (url: string, body: string | Uint8Array, headers: Record<string, string>): Promise<void> => {
      const controller = new AbortController();
      const t = setTimeout(() => controller.abort(), options.timeoutMs);
      try {
        const res = await fetch(url, { method: 'POST', body, headers, signal: controller.signal });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
      } finally {
        clearTimeout(t);
      }
    };

    const send = async (item: QueueItem): Promise<'sent' | 'gone'> => {
      if (item.kind === 'webhook') {
        const secret = secrets.get(item.url);
        if (secret === undefined) return 'gone'; // the webhook was removed from config
        await post(item.url, item.body, {
          'content-type': 'application/json',
          'x-wildduck-event': item.event,
          'x-wildduck-delivery': item.id,
          'x-wildduck-signature': signBody(secret, item.body),
        });
        return 'sent';
      }
      const ref = item.message!;
      const record = await api.storage.messages.get(legacyId(ref.mailboxId), ref.uid);
      const content = record ? await api.storage.messages.content(record.id) : null;
      if (!record || !content) return 'gone'; // expunged meanwhile: nothing to learn from
      const bytes = await readAll(readMessage(content, api.storage.blobs as BlobsPort));
      await post(item.url, bytes, { 'content-type': 'message/rfc822', ...(options.learn?.headers ?? {}) });
      return 'sent';
    };

    /** One pass over the queue: send what is due, reschedule failures. */
    const drain = async (): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
      } catch {
        return;
      }
      for (const name of names) {
        if (closed) return;
        // several processes drain one queue (the workers of a multi-process server): one sends each item
        const lockKey = `junk-notify:${name}`;
        const token = await api.storage.ephemeral.lock(lockKey, options.timeoutMs * 2 + 60_000).catch(() => null);
        if (!token) continue;
        try {
          await deliver(join(dir, name));
        } finally {
          await api.storage.ephemeral.unlock(lockKey, token).catch(() => false);
        }
      }
    };

    /** Sends one queued item if it is due (under its lock); a failure is rescheduled or, at the last attempt, parked. */
    const deliver = async (file: string): Promise<void> => {
      let item: QueueItem;
      try {
        item = JSON.parse(await readFile(file, 'utf8')) as QueueItem;
      } catch {
        return; // removed by another pass
      }
      if (item.due > Date.now()) return;
      try {
        const result = await send(item);
        await rm(file, { force: true });
        api.log.info(result === 'sent' ? 'junk notification sent' : 'junk notification dropped', { event: item.event, kind: item.kind, url: item.url, attempts: item.attempts + 1 });
      } catch (err) {
        item.attempts++;
        item.lastError = (err as Error)?.message ?? String(err);
        if (item.attempts >= options.retry.attempts) {
          await write(item, join(dir, 'failed'));
          await rm(file, { force: true });
          api.log.warn('junk notification failed for good', { event: item.event, url: item.url, attempts: item.attempts, error: item.lastError });
        } else {
          item.due = Date.now() + Math.min(options.retry.maxMs, options.retry.baseMs * 2 ** (item.attempts - 1));
          await write(item);
          api.log.info('junk notification will be retried', { event: item.event, url: item.url, attempts: item.attempts, error: item.lastError });
        }
      }
    };

    const schedule = (ms: number) => {
      if (closed) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(kick, ms);
      (timer as { unref?: () => void }).unref?.();
    };

    /** Runs a drain now (or right after the running one), then again at the next poll or earliest due time. */
    function kick(): void {
      if (closed) return;
      if (running) {
        again = true;
        return;
      }
      running = (async () => {
        do {
          again = false;
          await drain().catch((err) => api.log.error('junk notification queue failed', { err }));
        } while (again && !closed);
      })().finally(() => {
        running = null;
        schedule(Math.min(options.pollMs, options.retry.baseMs));
      });
    }

    const observe = (action: 'move' | 'copy') => async (ctx: HookContext, input: CopyInput, result: CopyResult) => {
      if (options.webhooks.length === 0 && !options.learn && !options.stream) return;
      const [from, to] = await Promise.all([api.storage.mailboxes.get(input.mailboxId), api.storage.mailboxes.get(input.targetMailboxId)]);
      if (!from || !to) return;
      const event = classify(from, to);
      if (!event) return;
      const user = await api.storage.users.get(input.userId);
      const items: QueueItem[] = [];
      for (const mapping of result.mappings) {
        const record = await api.storage.messages.get(to.id, mapping.destinationUid);
        const body: JunkEvent = {
          id: randomUUID(),
          event,
          time: new Date().toISOString(),
          user: { id: input.userId, username: user?.username ?? null },
          from: { mailbox: from.id, path: from.path },
          to: { mailbox: to.id, path: to.path },
          message: { uid: mapping.destinationUid, messageId: record?.messageId ?? null, subject: record?.subject ?? '', size: record?.size ?? 0 },
          action,
          via: ctx.session.protocol,
        };
        const json = JSON.stringify(body);
        if (options.stream) {
          await publishUserEvent(api.storage.ephemeral, input.userId, { event, data: { ...body } }).catch((err) => ctx.log.warn('could not publish the junk event', { err }));
        }
        for (const hook of options.webhooks) items.push({ id: `${Date.now()}-${randomUUID()}`, kind: 'webhook', url: hook.url, body: json, event, attempts: 0, due: 0 });
        if (options.learn) {
          const url = event === 'marked.spam' ? options.learn.spamUrl : options.learn.hamUrl;
          items.push({ id: `${Date.now()}-${randomUUID()}`, kind: 'learn', url, body: '', event, message: { mailboxId: to.id, uid: mapping.destinationUid }, attempts: 0, due: 0 });
        }
      }
      if (items.length === 0) return;
      for (const item of items) await write(item);
      ctx.log.info('junk notifications queued', { event, messages: result.mappings.length, deliveries: items.length });
      kick();
    };

    return {
      name: JUNK_NOTIFY_PLUGIN,
      async apply(pluginApi: PluginApi) {
        api = pluginApi;
        dir = resolve(options.queueDir ?? join(api.config.dataDir, 'queue', JUNK_NOTIFY_PLUGIN));
        await mkdir(join(dir, 'failed'), { recursive: true });
        api.hooks.message.afterMove.tapPromise({ stage: OBSERVE }, observe('move'));
        api.hooks.message.afterCopy.tapPromise({ stage: OBSERVE }, observe('copy'));
        schedule(0); // deliveries left from before a restart
      },
      async close() {
        closed = true;
        if (timer) clearTimeout(timer);
        // let a running pass finish its current request (bounded by timeoutMs)
        if (running) await Promise.race([running, sleep(options.timeoutMs)]);
      },
    };
  },
});
