/**
 * Messages, writing: flags and moves (one message or a UID range such as `1:*`), delete, and upload of a raw
 * RFC 822 message. Every write is a pipeline call (`updateFlags`, `moveMessages`, `expungeMessages`,
 * `storeMessage`), so quota and the other plugins hold as they do for IMAP.
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import { expungeMessages, moveMessages, storeMessage, updateFlags } from '../../hooks/pipeline/index.ts';
import type { App } from '../app.ts';
import type { HookContext } from '../../hooks/context.ts';
import type { MailboxRecord } from '../../storage/ports.ts';
import { isSequenceSet, selectUids } from '../imap/sequence.ts';
import { ApiError } from './errors.ts';
import { id, unwrap } from './common.ts';
import { findMailbox, mailboxParams } from './mailboxes.ts';
import { findMessage, messageParams } from './messages.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

/** WildDuck's flag fields and move target. */
const updateBody = z.object({
  seen: z.boolean().optional(),
  flagged: z.boolean().optional(),
  deleted: z.boolean().optional(),
  draft: z.boolean().optional(),
  answered: z.boolean().optional().describe('Addition: \\Answered'),
  moveTo: id('mailbox to move the messages to').optional(),
});

type UpdateBody = z.output<typeof updateBody>;

const FLAG_FIELDS: Array<[keyof UpdateBody, string]> = [
  ['seen', '\\Seen'],
  ['flagged', '\\Flagged'],
  ['deleted', '\\Deleted'],
  ['draft', '\\Draft'],
  ['answered', '\\Answered'],
];

/** Applies flag changes, then the move; answers WildDuck's `{ updated }` or `{ mailbox, id: [[old, new]] }`. */
async function applyUpdate(app: App, ctx: HookContext, userId: string, box: MailboxRecord, uids: number[], body: UpdateBody) {
  const add = FLAG_FIELDS.filter(([k]) => body[k] === true).map(([, f]) => f);
  const remove = FLAG_FIELDS.filter(([k]) => body[k] === false).map(([, f]) => f);
  const target = body.moveTo === undefined ? null : await findMailbox(app, userId, body.moveTo);
  if (uids.length > 0) {
    for (const [action, flags] of [['add', add], ['remove', remove]] as const) {
      if (flags.length > 0) unwrap(await updateFlags(app, ctx, { userId, mailboxId: box.id, uids, update: { action, flags } }));
    }
  }
  if (target && target.id !== box.id) {
    if (uids.length === 0) return { mailbox: target.id, id: [] };
    const moved = unwrap(await moveMessages(app, ctx, { userId, mailboxId: box.id, uids, targetMailboxId: target.id }));
    return { mailbox: target.id, id: moved.mappings.map((m) => [m.sourceUid, m.destinationUid]) };
  }
  return { updated: uids.length };
}

/** A message selection: a UID set in IMAP syntax (`1:*`, `4,7:9`), against the mailbox's UIDs. */
const selection = z
  .string()
  .trim()
  .max(4096)
  .refine(isSequenceSet, 'expected UIDs like 12, 1:5,9 or 1:*')
  .describe('UID range of the messages, IMAP syntax: 12, 1:5,9, 1:*');

/** Internal date for uploads: a date string or ms number. */
const dateInput = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'expected a date' });
    return z.NEVER;
  }
  return ms;
});

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/** The JSON `raw` field: base64 (WildDuck), or the message as text (anything that is not base64, as every message has a ':'). */
function rawBytes(raw: string): Uint8Array {
  return BASE64.test(raw) ? Buffer.from(raw.replace(/\s+/g, ''), 'base64') : Buffer.from(raw, 'utf8');
}

export const messageWriteRoutes: Route[] = [
  route({
    method: 'PUT',
    path: '/users/:user/mailboxes/:mailbox/messages/:message',
    summary: 'Change the flags of a message or move it to another mailbox',
    tag: 'Messages',
    access: 'owner',
    params: messageParams,
    body: updateBody,
    async handler({ app, ctx, user, params, body }) {
      const { box, record } = await findMessage(app, user.id, params.mailbox, params.message);
      return applyUpdate(app, ctx, user.id, box, [record.uid], body);
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/mailboxes/:mailbox/messages',
    summary: 'Change flags of or move several messages, selected by a UID range (`message`: "1:*")',
    tag: 'Messages',
    access: 'owner',
    params: mailboxParams,
    body: updateBody.extend({ message: selection }),
    async handler({ app, ctx, user, params, body }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      const uids = selectUids(body.message, (await app.storage.messages.index(box.id)).map((e) => e.uid));
      return applyUpdate(app, ctx, user.id, box, uids, body);
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/mailboxes/:mailbox/messages/:message',
    summary: 'Delete a message (expunged at once, as WildDuck does)',
    tag: 'Messages',
    access: 'owner',
    params: messageParams,
    async handler({ app, ctx, user, params }) {
      const { box, record } = await findMessage(app, user.id, params.mailbox, params.message);
      unwrap(await expungeMessages(app, ctx, { userId: user.id, mailboxId: box.id, uids: [record.uid] }));
      return {};
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/mailboxes/:mailbox/messages',
    summary: 'Delete every message in a mailbox',
    tag: 'Messages',
    access: 'owner',
    params: mailboxParams,
    async handler({ app, ctx, user, params }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      const uids = (await app.storage.messages.index(box.id)).map((e) => e.uid);
      if (uids.length === 0) return { deleted: 0, errors: 0 };
      const result = unwrap(await expungeMessages(app, ctx, { userId: user.id, mailboxId: box.id, uids }));
      return { deleted: result.uids.length, errors: uids.length - result.uids.length };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/mailboxes/:mailbox/messages',
    summary: 'Upload a raw RFC 822 message: JSON `raw` (base64 or text) or a message/rfc822 body with flags in the query',
    tag: 'Messages',
    access: 'owner',
    params: mailboxParams,
    query: z.object({
      unseen: z.stringbool().optional().describe('message/rfc822 uploads: store without \\Seen'),
      flagged: z.stringbool().optional(),
      draft: z.stringbool().optional(),
      date: dateInput.optional().describe('Internal date (default now)'),
    }),
    body: z.object({
      raw: z.string().min(1).optional().describe('The message, base64-encoded (or as text)'),
      unseen: z.boolean().optional().describe('Store without \\Seen (default: seen, as WildDuck)'),
      flagged: z.boolean().optional(),
      draft: z.boolean().optional(),
      date: dateInput.optional().describe('Internal date (default now)'),
    }),
    rawBody: ['message/rfc822', 'text/plain', 'application/octet-stream'],
    // JSON carries base64 (4/3 of the message); a raw body is cut at limits.maxMessageSize by the ingest
    maxBody: (config) => Math.ceil((config.limits.maxMessageSize * 4) / 3) + 65536,
    response: z.object({ message: z.object({ id: z.number(), mailbox: z.string(), size: z.number() }) }),
    async handler({ app, ctx, user, params, query, body, raw }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      const opts = raw ? query : body;
      const flags = [...(opts.unseen ? [] : ['\\Seen']), ...(opts.flagged ? ['\\Flagged'] : []), ...(opts.draft ? ['\\Draft'] : [])];
      let readError: unknown = null;
      let source: AsyncIterable<Uint8Array> | Uint8Array;
      let declaredSize: number | undefined;
      if (raw) {
        const stream = raw.stream;
        source = (async function* () {
          try {
            yield* stream;
          } catch (err) {
            readError = err; // remembered: a 413 while reading is the client's, not an ingest failure
            throw err;
          }
        })();
        declaredSize = raw.size ?? undefined;
      } else {
        if (!body.raw) throw new ApiError('InputValidationError', 'body.raw: a message is required (or send message/rfc822)', [{ path: 'body.raw', message: 'Required' }]);
        source = rawBytes(body.raw);
        declaredSize = source.length;
      }
      const stored = await storeMessage(app, ctx, { userId: user.id, mailboxId: box.id, flags, internalDate: opts.date ?? Date.now(), source, declaredSize });
      if (readError instanceof ApiError) throw readError;
      const value = unwrap(stored);
      const record = await app.storage.messages.get(box.id, value.uid);
      return { message: { id: value.uid, mailbox: box.id, size: record?.size ?? 0 } };
    },
  }),
];
