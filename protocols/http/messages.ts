/**
 * Messages, reading: list a mailbox (cursor pages), one message as parsed JSON (text, sanitized HTML,
 * attachment list), the raw source (`message.eml`) and one attachment, decoded, both streamed from the stored
 * segments. Message ids in paths are UIDs within the mailbox, as in WildDuck.
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import { updateFlags } from '../../hooks/pipeline/index.ts';
import { readBody, readMessage } from '../../storage/mime/reassemble.ts';
import { messageIds } from '../../storage/mime/envelope.ts';
import type { App } from '../app.ts';
import type { MailboxRecord, MessagePageOptions, MessageRecord } from '../../storage/ports.ts';
import { ApiError } from './errors.ts';
import { iso, queryBool, unwrap } from './common.ts';
import { findMailbox, mailboxParams } from './mailboxes.ts';
import { addresses, decodeTransfer, flagFields, intro, listItem, readBodies, walkParts } from './message-view.ts';
import { sanitizeMessageHtml } from './html.ts';
import { StreamReply, route } from './route.ts';
import type { Route } from './route.ts';

export const messageParams = mailboxParams.extend({
  message: z.coerce.number().int().positive().max(4294967295).describe('Message id: its UID in the mailbox'),
});

/** The message `uid` of the user's mailbox, with the mailbox; 404 NoSuchMailbox / MessageNotFound. */
export async function findMessage(app: App, userId: string, mailbox: string, uid: number): Promise<{ box: MailboxRecord; record: MessageRecord }> {
  const box = await findMailbox(app, userId, mailbox);
  const record = await app.storage.messages.get(box.id, uid);
  if (!record) throw new ApiError('MessageNotFound');
  return { box, record };
}

// --- cursors ------------------------------------------------------------------------------------------------

/** A page cursor: which side of which UID the next page starts, and its page number. Opaque to clients. */
interface Cursor {
  dir: 'next' | 'previous';
  uid: number;
  page: number;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.dir === 'next' ? 'n' : 'p'}:${cursor.uid}:${cursor.page}`).toString('base64url');
}

export function decodeCursor(value: string, dir: Cursor['dir']): Cursor {
  const match = /^([np]):(\d+):(\d+)$/.exec(Buffer.from(value, 'base64url').toString('latin1'));
  if (!match || (match[1] === 'n') !== (dir === 'next')) throw new ApiError('InputValidationError', `query.${dir}: invalid cursor`);
  return { dir, uid: Number(match[2]), page: Number(match[3]) };
}

/** The storage page options and page number a listing request asks for (its cursors decoded). */
function pageRequest(query: { order: 'asc' | 'desc'; limit: number; next?: string; previous?: string }): { options: MessagePageOptions; page: number } {
  const options: MessagePageOptions = { order: query.order, limit: query.limit };
  if (query.next) {
    const c = decodeCursor(query.next, 'next');
    return { options: { ...options, after: c.uid }, page: c.page + 1 };
  }
  if (query.previous) {
    const c = decodeCursor(query.previous, 'previous');
    return { options: { ...options, before: c.uid }, page: Math.max(1, c.page - 1) };
  }
  return { options, page: 1 };
}

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(250).default(20).describe('Messages per page'),
  order: z.enum(['asc', 'desc']).default('desc').describe('By UID: oldest (asc) or newest (desc) first'),
  next: z.string().max(200).optional().describe('Cursor from nextCursor'),
  previous: z.string().max(200).optional().describe('Cursor from previousCursor'),
  page: z.coerce.number().int().min(1).optional().describe('Accepted for compatibility; the cursor decides'),
});

/** List items for records, with intros read from their first text part. */
export async function listItems(app: App, records: MessageRecord[]) {
  return Promise.all(
    records.map(async (r) => listItem(r, await intro(await app.storage.messages.content(r.id), app.storage.blobs, r.mime).catch(() => ''))),
  );
}

const SAFE_INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

export const messageReadRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/mailboxes/:mailbox/messages',
    summary: 'List messages in a mailbox, newest first by default, in cursor pages',
    tag: 'Messages',
    access: 'owner',
    params: mailboxParams,
    query: pageQuery.extend({
      unseen: queryBool('Only messages without \\Seen'),
      flagged: queryBool('Only messages with \\Flagged (an addition)'),
      threadCounters: queryBool('Adds threadMessageCount to each result: the user\'s messages in its thread, in any mailbox'),
      metaData: queryBool('Accepted for compatibility'),
      includeHeaders: z.string().optional().describe('Accepted for compatibility'),
    }),
    async handler({ app, user, params, query }) {
      const box = await findMailbox(app, user.id, params.mailbox);
      const request = pageRequest(query);
      const { page } = request;
      const found = await app.storage.messages.page(box.id, { ...request.options, unseen: query.unseen, flagged: query.flagged });
      const slice = found.entries;
      const first = slice[0];
      const last = slice[slice.length - 1];
      const nextCursor = last && found.later ? encodeCursor({ dir: 'next', uid: last.uid, page }) : false;
      const previousCursor = first && found.earlier ? encodeCursor({ dir: 'previous', uid: first.uid, page }) : false;
      const records = (await Promise.all(slice.map((e) => app.storage.messages.get(box.id, e.uid)))).filter((r): r is MessageRecord => r !== null);
      const items = await listItems(app, records);
      let results: Array<(typeof items)[number] & { threadMessageCount?: number }> = items;
      if (query.threadCounters) {
        const counts = await app.storage.messages.threadCounts(user.id, records.map((r) => r.threadId));
        results = items.map((item, i) => ({ ...item, threadMessageCount: counts.get(records[i]!.threadId) ?? 0 }));
      }
      return { total: found.total, page, previousCursor, nextCursor, specialUse: box.specialUse, results };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/mailboxes/:mailbox/messages/:message',
    summary: 'Read one message as JSON: decoded headers, text, sanitized HTML and its attachment list',
    tag: 'Messages',
    access: 'owner',
    params: messageParams,
    query: z.object({
      markAsSeen: queryBool('Set \\Seen (through the flags pipeline, as an IMAP STORE would)'),
      replaceCidLinks: queryBool('Rewrite cid: references in the HTML to attachment:ATT00001'),
      allowRemote: queryBool('Addition: keep remote images and backgrounds in the HTML (blocked by default)'),
    }),
    async handler({ app, ctx, user, params, query }) {
      const { box, record } = await findMessage(app, user.id, params.mailbox, params.message);
      const content = await app.storage.messages.content(record.id);
      if (!content) throw new ApiError('MessageNotFound');
      const { texts, attachments } = walkParts(record.mime);
      const bodies = await readBodies(content, app.storage.blobs, texts, app.config.api.maxParsedBytes, app.config.limits.maxHtmlDepth);
      const cidLinks = query.replaceCidLinks ? new Map(attachments.filter((a) => a.info.cid).map((a) => [a.info.cid!, a.info.id])) : undefined;
      let remoteBlocked = false;
      const html = bodies.html.map((h) => {
        const clean = sanitizeMessageHtml(h, { allowRemote: query.allowRemote ?? false, cidLinks, maxDepth: app.config.limits.maxHtmlDepth });
        remoteBlocked ||= clean.remoteBlocked;
        return clean.html;
      });
      let flags = record.flags;
      if (query.markAsSeen && !flagFields(flags).seen) {
        const changed = unwrap(await updateFlags(app, ctx, { userId: user.id, mailboxId: box.id, uids: [record.uid], update: { action: 'add', flags: ['\\Seen'] } }));
        flags = changed.changed[0]?.flags ?? [...flags, '\\Seen'];
      }
      const env = record.envelope;
      return {
        id: record.uid,
        mailbox: box.id,
        user: user.id,
        thread: record.threadId,
        from: addresses(env.from)[0],
        replyTo: addresses(env.replyTo),
        to: addresses(env.to),
        cc: addresses(env.cc),
        bcc: addresses(env.bcc),
        subject: record.subject,
        messageId: record.messageId ?? '',
        date: iso(record.headerDate),
        idate: iso(record.internalDate),
        size: record.size,
        ...flagFields(flags),
        flags,
        references: messageIds(env.inReplyTo),
        contentType: { value: `${record.mime.type}/${record.mime.subtype}`, params: record.mime.params },
        text: bodies.text,
        html,
        attachments: attachments.map((a) => a.info),
        remoteContentBlocked: remoteBlocked,
        textTruncated: bodies.truncated,
      };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/mailboxes/:mailbox/messages/:message/message.eml',
    summary: 'Download the message source exactly as stored (streamed)',
    tag: 'Messages',
    access: 'owner',
    params: messageParams,
    rawResponse: 'message/rfc822',
    async handler({ app, user, params }) {
      const { record } = await findMessage(app, user.id, params.mailbox, params.message);
      const content = await app.storage.messages.content(record.id);
      if (!content) throw new ApiError('MessageNotFound');
      const blobs = app.storage.blobs;
      return new StreamReply('message/rfc822', () => readMessage(content, blobs), { length: record.size });
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/mailboxes/:mailbox/messages/:message/attachments/:attachment',
    summary: 'Download one attachment, decoded from its transfer encoding (streamed)',
    tag: 'Messages',
    access: 'owner',
    params: messageParams.extend({ attachment: z.string().regex(/^ATT\d{5,}$/, 'expected an attachment id like ATT00001').describe('Attachment id from the message') }),
    rawResponse: 'application/octet-stream',
    async handler({ app, user, params }) {
      const { record } = await findMessage(app, user.id, params.mailbox, params.message);
      const found = walkParts(record.mime).attachments.find((a) => a.info.id === params.attachment);
      if (!found) throw new ApiError('AttachmentNotFound');
      const content = await app.storage.messages.content(record.id);
      if (!content) throw new ApiError('MessageNotFound');
      const blobs = app.storage.blobs;
      const { node, info } = found;
      // only plain images may show inline; anything else (HTML, SVG) is a download, sandboxed either way
      const inline = info.inline && SAFE_INLINE.has(info.contentType);
      const disposition = `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(info.filename)}`;
      return new StreamReply(info.contentType, () => decodeTransfer(readBody(content, blobs, node), node.encoding), {
        headers: { 'content-disposition': disposition, 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; sandbox" },
      });
    },
  }),
];
