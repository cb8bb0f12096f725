/**
 * Composing for `POST /users/:user/submit`: the request body's schema (WildDuck's names), the reply / forward
 * `reference` (In-Reply-To, References, default recipients and subject, the original attached for a forward),
 * and the MIME build with nodemailer's MailComposer. Attachments come only from the request (base64) or the
 * referenced message: MailComposer is never given a `path` or `href`, so nothing is read from disk or network.
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Options as ComposerOptions } from 'nodemailer/lib/mail-composer';
import type { App } from '../app.ts';
import type { MailboxRecord, MessageRecord, UserRecord } from '../../storage/ports.ts';
import { collectBytes } from '../../storage/bytes.ts';
import { getHeader, parseHeaderBlock } from '../../storage/mime/headers.ts';
import { messageIds } from '../../storage/mime/envelope.ts';
import { readHeader, readMessage } from '../../storage/mime/reassemble.ts';
import { normalizeAddress, ownsAddress } from '../../storage/addresses.ts';
import { ApiError } from './errors.ts';
import { id, mainAddress } from './common.ts';
import { findMessage } from './messages.ts';
import { addresses } from './message-view.ts';
import type { ApiAddress } from './message-view.ts';

function isAddress(value: string): boolean {
  try {
    normalizeAddress(value);
    return true;
  } catch {
    return false;
  }
}

const NO_LINE_BREAKS = /^[^\r\n]*$/;

export const addressInput = z.object({
  name: z.string().max(256).regex(NO_LINE_BREAKS, 'no line breaks').optional(),
  address: z.string().trim().max(320).refine(isAddress, 'expected an email address'),
});
export type AddressInput = z.output<typeof addressInput>;

const addressList = (what: string) => z.array(addressInput).max(100).optional().describe(`Addresses for the ${what} header`);

/** Header fields the composer sets itself; a custom header may not name them. */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'reply-to', 'subject', 'date', 'message-id', 'in-reply-to', 'references', 'mime-version',
  'content-type', 'content-transfer-encoding', 'content-disposition', 'sender', 'return-path',
]);

const headerInput = z.object({
  key: z
    .string()
    .regex(/^[\x21-\x39\x3b-\x7e]{1,76}$/, 'expected a header field name')
    .refine((k) => !RESERVED_HEADERS.has(k.toLowerCase()), 'this header is set from the other fields'),
  value: z.string().max(16384).regex(NO_LINE_BREAKS, 'no line breaks'),
});

const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

const attachmentInput = z
  .object({
    filename: z.string().max(256).regex(NO_LINE_BREAKS, 'no line breaks').optional(),
    contentType: z.string().max(256).regex(/^[\w.+-]+\/[\w.+-]+$/, 'expected a type/subtype').optional(),
    encoding: z.enum(['base64', 'utf8', 'utf-8']).default('base64').describe('How `content` is encoded'),
    contentTransferEncoding: z.enum(['base64', 'quoted-printable', '7bit', '8bit']).optional(),
    contentDisposition: z.enum(['inline', 'attachment']).optional(),
    content: z.string().describe('The attachment, base64-encoded'),
    cid: z.string().max(256).regex(/^[^\s<>]+$/, 'expected a Content-ID without <>').optional(),
  })
  .refine((a) => a.encoding !== 'base64' || BASE64.test(a.content), { message: 'expected base64', path: ['content'] });

export const referenceInput = z.object({
  mailbox: id('mailbox of the referenced message'),
  id: z.number().int().positive().describe('Message id (UID) of the referenced message'),
  action: z.enum(['reply', 'replyAll', 'forward']),
});

export const submitBody = z.object({
  mailbox: id('mailbox').optional().describe('With uploadOnly / isDraft: where to store it (default Drafts for a draft, else Sent)'),
  from: addressInput.optional().describe('One of the user\'s addresses; default the main address'),
  replyTo: addressInput.optional(),
  to: addressList('To'),
  cc: addressList('Cc'),
  bcc: addressList('Bcc'),
  headers: z.array(headerInput).max(50).optional().describe('Custom header fields'),
  subject: z.string().max(998).regex(NO_LINE_BREAKS, 'no line breaks').optional(),
  text: z.string().optional(),
  html: z.string().optional(),
  attachments: z.array(attachmentInput).max(100).optional(),
  meta: z.unknown().optional().describe('Accepted for compatibility; not stored'),
  sess: z.string().max(256).optional().describe('Session identifier for the logs'),
  ip: z.string().max(64).optional().describe('IP address for the logs'),
  reference: referenceInput.optional().describe('The message this one replies to or forwards'),
  isDraft: z.boolean().default(false).describe('Store as a draft (\\Draft, in Drafts) instead of sending'),
  draft: z.object({ mailbox: id('mailbox'), id: z.number().int().positive() }).optional().describe('The draft this message replaces: deleted once it is sent or stored'),
  sendTime: z.string().optional().describe('Scheduled sending is not supported: a time more than a minute ahead is refused'),
  uploadOnly: z.boolean().default(false).describe('Only store the message (Sent, or `mailbox`), do not send it'),
  envelope: z
    .object({ from: addressInput.optional(), to: z.array(addressInput).max(100).optional() })
    .optional()
    .describe('SMTP envelope instead of the one from the headers'),
});
export type SubmitBody = z.output<typeof submitBody>;

/** What a reference resolves to. */
export interface Reference {
  readonly action: 'reply' | 'replyAll' | 'forward';
  readonly box: MailboxRecord;
  readonly record: MessageRecord;
}

async function headerFields(app: App, record: MessageRecord) {
  const content = await app.storage.messages.content(record.id);
  if (!content) throw new ApiError('MessageNotFound');
  return parseHeaderBlock(await collectBytes(readHeader(content, app.storage.blobs, record.mime)));
}

/** The whole stored message. */
export async function storedSource(app: App, record: MessageRecord): Promise<Uint8Array> {
  const content = await app.storage.messages.content(record.id);
  if (!content) throw new ApiError('MessageNotFound');
  return collectBytes(readMessage(content, app.storage.blobs));
}

function dedupe(list: ApiAddress[], skip: ReadonlySet<string> = new Set()): ApiAddress[] {
  const seen = new Set(skip);
  const out: ApiAddress[] = [];
  for (const a of list) {
    const key = a.address.toLowerCase();
    if (!a.address || seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

function prefixed(prefix: string, subject: string): string {
  return new RegExp(`^${prefix}:`, 'i').test(subject.trim()) ? subject : `${prefix}: ${subject}`;
}

/** Recipients the user wants, with reply defaults filled in when the request names none. */
async function replyDefaults(app: App, user: UserRecord, ref: Reference) {
  const env = ref.record.envelope;
  const replyTo = addresses(env.replyTo ?? env.from);
  if (ref.action === 'reply') return { to: replyTo, cc: [] as ApiAddress[] };
  const others: ApiAddress[] = [];
  for (const a of addresses(env.to).concat(addresses(env.cc))) if (!(await ownsAddress(app.storage.users, user.id, a.address))) others.push(a);
  const to = dedupe(replyTo);
  return { to, cc: dedupe(others, new Set(to.map((a) => a.address.toLowerCase()))) };
}

const asComposer = (a: { name?: string; address: string }) => ({ name: a.name ?? '', address: a.address });

/**
 * Builds the message: MailComposer options from the request, reference and user, then the bytes (Bcc kept, so
 * the stored copy shows it; plugins/submission.ts removes it from what is sent). Answers the envelope too.
 */
export async function composeMessage(app: App, user: UserRecord, body: SubmitBody, ref: Reference | null) {
  const fromAddress = body.from?.address ?? (await mainAddress(app.storage, user.id));
  if (!fromAddress) throw new ApiError('InputValidationError', 'body.from: the user has no address to send from', [{ path: 'body.from', message: 'no address' }]);
  if (!(await ownsAddress(app.storage.users, user.id, fromAddress))) {
    throw new ApiError('InputValidationError', `body.from: ${fromAddress} is not one of the user's addresses`, [{ path: 'body.from.address', message: 'not one of the user\'s addresses' }]);
  }
  const from = { name: body.from?.name ?? user.name, address: fromAddress };

  let to: Array<{ name?: string; address: string }> = body.to ?? [];
  let cc: Array<{ name?: string; address: string }> = body.cc ?? [];
  const bcc = body.bcc ?? [];
  let subject = body.subject;
  const options: ComposerOptions = {};
  const attachments: NonNullable<ComposerOptions['attachments']> = [];

  if (ref) {
    const fields = await headerFields(app, ref.record);
    const original = ref.record.messageId?.trim() || null;
    const references = [...messageIds(getHeader(fields, 'references')), ...(original ? [original] : [])].slice(-30);
    if (original) options.inReplyTo = original;
    if (references.length) options.references = references;
    if (ref.action === 'forward') {
      subject ??= prefixed('Fwd', ref.record.subject);
      const raw = await storedSource(app, ref.record);
      const name = (ref.record.subject || 'message').replace(/[\\/:*?"<>|\r\n]+/g, '_').slice(0, 100);
      attachments.push({ filename: `${name}.eml`, contentType: 'message/rfc822', contentDisposition: 'attachment', content: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) });
    } else {
      subject ??= prefixed('Re', ref.record.subject);
      if (!body.to && !body.cc && !body.bcc) ({ to, cc } = await replyDefaults(app, user, ref));
    }
  }

  for (const a of body.attachments ?? []) {
    attachments.push({
      filename: a.filename,
      contentType: a.contentType,
      contentTransferEncoding: a.contentTransferEncoding,
      contentDisposition: a.contentDisposition ?? (a.cid ? 'inline' : 'attachment'),
      cid: a.cid,
      content: a.encoding === 'base64' ? Buffer.from(a.content.replace(/\s+/g, ''), 'base64') : Buffer.from(a.content, 'utf8'),
    });
  }

  Object.assign(options, {
    from: asComposer(from),
    replyTo: body.replyTo ? asComposer(body.replyTo) : undefined,
    to: to.map(asComposer),
    cc: cc.map(asComposer),
    bcc: bcc.map(asComposer),
    subject: subject ?? '',
    text: body.text,
    html: body.html,
    attachments,
    headers: (body.headers ?? []).map((h) => ({ key: h.key, value: h.value })),
  } satisfies ComposerOptions);

  const node = new MailComposer(options).compile();
  node.keepBcc = true;
  const bytes = new Uint8Array(await node.build());

  const envelopeFrom = body.envelope?.from?.address ?? from.address;
  const envelopeTo = body.envelope?.to ? body.envelope.to.map((a) => a.address) : [...to, ...cc, ...bcc].map((a) => a.address);
  const seen = new Set<string>();
  const recipients = envelopeTo.filter((a) => !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));
  return { bytes, envelope: { from: envelopeFrom, to: recipients } };
}

/** The referenced message, or null; 404 NoSuchMailbox / MessageNotFound for unknown ids. */
export async function findReference(app: App, userId: string, reference: SubmitBody['reference']): Promise<Reference | null> {
  if (!reference) return null;
  const { box, record } = await findMessage(app, userId, reference.mailbox, reference.id);
  return { action: reference.action, box, record };
}

/** Envelope of a stored draft from its headers: From (the sender) and every To, Cc and Bcc address. */
export function draftEnvelope(record: MessageRecord): { from: string | null; to: string[] } {
  const env = record.envelope;
  const from = addresses(env.from)[0]?.address ?? null;
  const seen = new Set<string>();
  const to = [...addresses(env.to), ...addresses(env.cc), ...addresses(env.bcc)]
    .map((a) => a.address)
    .filter((a) => a && !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));
  return { from, to };
}
