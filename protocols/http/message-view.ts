/**
 * Messages as the HTTP API shows them: WildDuck's list item and message shapes built from the stored record
 * (envelope, MIME tree, flags), the attachment list (ids `ATT00001`, … in tree order, the same walk the
 * download route uses), text bodies read part by part, and streaming transfer decoders.
 *
 * Bodies are read from the MIME tree the store kept, never through the whole message: a text part is read up
 * to `api.maxParsedBytes` in all, attachments are never read to show a message. (This is why no general MIME
 * parser such as mailparser is used here: it would read every byte of every attachment to show the text.)
 */
import { Buffer } from 'node:buffer';
import { convert as htmlToText } from 'html-to-text';
import libmime from 'libmime';
import { DEFAULT_MAX_HTML_DEPTH, htmlNestedDeeperThan, stripTags } from '../../storage/mime/html-depth.ts';
import { decode as decodeQuotedPrintable } from 'libqp';
import { readAll, readBody } from '../../storage/mime/reassemble.ts';
import { decodeWords, fileName } from '../../storage/mime/headers.ts';
import { decodeText } from '../../storage/mime/search-text.ts';
import { messageIds } from '../../storage/mime/envelope.ts';
import type { BlobsPort, EnvelopeAddress, MessageContent, MessageRecord, MimeNode } from '../../storage/ports.ts';
import { iso } from './common.ts';

export interface ApiAddress {
  name: string;
  address: string;
}

/** Envelope addresses → `{ name, address }` (names RFC 2047-decoded); group markers are left out. */
export function addresses(list: EnvelopeAddress[] | null): ApiAddress[] {
  const out: ApiAddress[] = [];
  for (const a of list ?? []) {
    if (a.host === null) continue; // group start / end
    const address = a.host ? `${a.mailbox ?? ''}@${a.host}` : (a.mailbox ?? '');
    out.push({ name: a.name ? decodeWords(a.name) : '', address });
  }
  return out;
}

function has(flags: readonly string[], flag: string): boolean {
  const wanted = flag.toLowerCase();
  return flags.some((f) => f.toLowerCase() === wanted);
}

/** WildDuck's boolean flag fields. */
export function flagFields(flags: readonly string[]) {
  return {
    seen: has(flags, '\\Seen'),
    deleted: has(flags, '\\Deleted'),
    flagged: has(flags, '\\Flagged'),
    draft: has(flags, '\\Draft'),
    answered: has(flags, '\\Answered'),
    forwarded: has(flags, '$Forwarded'),
  };
}

export interface AttachmentInfo {
  id: string;
  filename: string;
  contentType: string;
  disposition: string;
  transferEncoding: string;
  /** Content-ID without angle brackets, or undefined. */
  cid?: string;
  /** Shown within the HTML (disposition inline, or referenced by Content-ID without a disposition). */
  inline: boolean;
  related: boolean;
  /** Decoded size in bytes (estimated from the encoded size for base64). */
  size: number;
  sizeKb: number;
  /** IMAP part number of the attachment (an addition: the same part over IMAP FETCH BODY[part]). */
  part: string;
}

/** True for a leaf that is shown as message text (text/plain or text/html, not an attachment). */
function isTextBody(node: MimeNode): boolean {
  if (node.type !== 'text' || (node.subtype !== 'plain' && node.subtype !== 'html')) return false;
  if (node.disposition?.type === 'attachment') return false;
  return !(node.disposition?.type !== 'inline' && fileName(node) !== null);
}

function decodedSize(node: MimeNode): number {
  // base64: 3 bytes per 4 characters, line breaks (CRLF, one per line) not counted
  return node.encoding === 'base64' ? Math.max(0, Math.floor(((node.size - 2 * node.lines) * 3) / 4)) : node.size;
}

const EXTENSIONS: Record<string, string> = { 'message/rfc822': 'eml', 'text/plain': 'txt', 'text/html': 'html', 'text/calendar': 'ics', 'image/jpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif', 'application/pdf': 'pdf' };

/** Walks the tree in part order: text leaves go to `texts`, everything else (incl. attached messages) is an attachment. */
export function walkParts(root: MimeNode): { texts: MimeNode[]; attachments: Array<{ node: MimeNode; info: AttachmentInfo }> } {
  const texts: MimeNode[] = [];
  const attachments: Array<{ node: MimeNode; info: AttachmentInfo }> = [];
  const visit = (node: MimeNode): void => {
    if (node.children) {
      for (const child of node.children) visit(child);
      return;
    }
    if (isTextBody(node)) {
      texts.push(node);
      return;
    }
    if (node.type === 'multipart') return; // an empty multipart
    const contentType = `${node.type}/${node.subtype}`;
    const n = attachments.length + 1;
    const cid = node.id ? node.id.trim().replace(/^<|>$/g, '') : undefined;
    const disposition = node.disposition?.type ?? (cid ? 'inline' : 'attachment');
    const size = decodedSize(node);
    attachments.push({
      node,
      info: {
        id: `ATT${String(n).padStart(5, '0')}`,
        filename: fileName(node) ?? `attachment-${n}.${EXTENSIONS[contentType] ?? 'bin'}`,
        contentType,
        disposition,
        transferEncoding: node.encoding,
        ...(cid ? { cid } : {}),
        inline: disposition === 'inline',
        related: disposition === 'inline' && cid !== undefined,
        size,
        sizeKb: Math.ceil(size / 1024),
        part: node.part === '' ? '1' : node.part,
      },
    });
  };
  visit(root);
  return { texts, attachments };
}

/** Transfer-decodes a whole (bounded) body. */
function transferDecode(raw: Uint8Array, encoding: string): Buffer {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (encoding === 'base64') return Buffer.from(bytes.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(bytes);
  return bytes;
}

/**
 * Decoded text of one text leaf, at most `limit` raw bytes of it. `format=flowed` plain text (RFC 3676) has its soft
 * line breaks joined (and with `delsp=yes` the space before them dropped), as WildDuck's message view does.
 */
export async function readText(content: MessageContent, blobs: BlobsPort, node: MimeNode, limit: number): Promise<string> {
  const raw = await readAll(readBody(content, blobs, node, 0, limit));
  const text = decodeText(transferDecode(raw, node.encoding), node.params.charset);
  if (node.subtype !== 'plain' || node.params.format?.trim().toLowerCase() !== 'flowed') return text;
  return libmime.decodeFlowed(text, node.params.delsp?.trim().toLowerCase() === 'yes');
}

export function htmlAsText(html: string, maxDepth: number = DEFAULT_MAX_HTML_DEPTH): string {
  if (htmlNestedDeeperThan(html, maxDepth)) return stripTags(html); // see storage/mime/html-depth.ts
  try {
    return htmlToText(html, { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }] });
  } catch {
    return stripTags(html);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Plain text shown as HTML (for messages without an HTML part), paragraphs and line breaks kept. */
export function textAsHtml(text: string): string {
  return text
    .split(/\r?\n\s*\r?\n/)
    .map((p) => `<p>${escapeHtml(p).replace(/\r?\n/g, '<br />')}</p>`)
    .join('\n');
}

/**
 * The message's text and (unsanitized) HTML parts, reading at most `limit` raw bytes of text parts in all.
 * `truncated` tells when the limit cut something off.
 */
export async function readBodies(
  content: MessageContent,
  blobs: BlobsPort,
  texts: MimeNode[],
  limit: number,
  maxHtmlDepth: number = DEFAULT_MAX_HTML_DEPTH,
): Promise<{ text: string; html: string[]; truncated: boolean }> {
  const plain: string[] = [];
  const html: string[] = [];
  let budget = limit;
  let truncated = false;
  for (const node of texts) {
    if (budget <= 0) {
      truncated = true;
      break;
    }
    if (node.size > budget) truncated = true;
    const value = await readText(content, blobs, node, budget);
    budget -= Math.min(node.size, budget);
    (node.subtype === 'html' ? html : plain).push(value);
  }
  const text = plain.length > 0 ? plain.join('\n') : html.map((h) => htmlAsText(h, maxHtmlDepth)).join('\n');
  return { text, html: html.length > 0 ? html : plain.length > 0 ? [textAsHtml(text)] : [], truncated };
}

/** First 128 characters of the message text, whitespace collapsed (WildDuck's `intro`). */
export async function intro(content: MessageContent | null, blobs: BlobsPort, root: MimeNode): Promise<string> {
  if (!content) return '';
  const first = walkParts(root).texts[0];
  if (!first) return '';
  let text = await readText(content, blobs, first, 4096);
  if (first.subtype === 'html') text = htmlAsText(text);
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > 128 ? `${text.slice(0, 128)}…` : text;
}

/** WildDuck's list item for one message. */
export function listItem(record: MessageRecord, introText: string) {
  const env = record.envelope;
  return {
    id: record.uid,
    mailbox: record.mailboxId,
    thread: record.threadId,
    from: addresses(env.from)[0],
    to: addresses(env.to),
    cc: addresses(env.cc),
    bcc: addresses(env.bcc),
    messageId: record.messageId ?? '',
    subject: record.subject,
    date: iso(record.headerDate),
    idate: iso(record.internalDate),
    intro: introText,
    attachments: record.hasAttachments,
    size: record.size,
    ...flagFields(record.flags),
    references: messageIds(env.inReplyTo),
    contentType: { value: `${record.mime.type}/${record.mime.subtype}`, params: record.mime.params },
    /** Addition: the message's keywords and system flags as IMAP shows them. */
    flags: [...record.flags],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Streaming transfer decoders (attachment downloads)
// ---------------------------------------------------------------------------------------------------------

const BASE64_NOISE = /[^A-Za-z0-9+/]/g;

async function* base64Decode(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let carry = '';
  for await (const chunk of source) {
    const text = carry + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1').replace(BASE64_NOISE, '');
    const usable = text.length - (text.length % 4);
    carry = text.slice(usable);
    if (usable > 0) yield Buffer.from(text.slice(0, usable), 'base64');
  }
  if (carry.length > 1) yield Buffer.from(carry, 'base64');
}

async function* quotedPrintableDecode(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    const bytes = carry.length ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // never cut inside "=XX" or a soft line break "=\r\n": keep back an '=' in the last two bytes
    let cut = bytes.length;
    const eq = bytes.lastIndexOf(0x3d, bytes.length - 1);
    if (eq >= 0 && eq >= bytes.length - 2) cut = eq;
    carry = Buffer.from(bytes.subarray(cut));
    if (cut > 0) yield decodeQuotedPrintable(bytes.subarray(0, cut));
  }
  if (carry.length) yield decodeQuotedPrintable(carry);
}

/** A part's body stream → its decoded bytes (base64, quoted-printable; other encodings pass through). */
export function decodeTransfer(source: AsyncIterable<Uint8Array>, encoding: string): AsyncIterable<Uint8Array> {
  if (encoding === 'base64') return base64Decode(source);
  if (encoding === 'quoted-printable') return quotedPrintableDecode(source);
  return source;
}
