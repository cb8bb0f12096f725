/**
 * Builds `IngestedMessage` values for storage tests without the real MIME ingest: one text/plain node covering the
 * whole message, headers read with a naive unfolding parser, and optionally the body kept as one blob segment staged
 * through `blobs.stage()`. Also a tiny reassembly (`messageBytes`) so storage tests don't depend on storage/mime.
 */
import { createHash } from 'node:crypto';
import type { BlobsPort, Envelope, IngestedMessage, MessageContent, MimeNode, StagedBlob } from '../../storage/ports.ts';
import { collectBytes as collect } from '../../storage/bytes.ts';
import { mimeNode } from '../../storage/mime/splitter.ts';
import { parseHeaderBlock } from '../../storage/mime/headers.ts';
import { searchHeaders } from '../../storage/mime/search-headers.ts';
import { makePreview } from '../../storage/mime/preview.ts';
export { collect };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface FakeMessageOptions {
  /** Stage the body as one blob segment (default false: everything inline). */
  blobBody?: boolean;
  /** Bytes per write() call when staging (exercises the streaming writer). */
  writeSize?: number;
  /** Override what would be read from the headers. */
  messageId?: string | null;
  references?: string[];
  subject?: string;
  searchText?: string;
}

export interface SimpleMessage {
  subject?: string;
  from?: string;
  to?: string;
  messageId?: string | null;
  inReplyTo?: string;
  references?: string[];
  date?: string;
  body?: string;
}

let generated = 0;

/** An RFC 5322 message as a string (CRLF line ends); the default Message-ID has a fixed length. */
export function simpleMessage(m: SimpleMessage = {}): string {
  const lines = [
    `From: ${m.from ?? 'Alice <alice@example.com>'}`,
    `To: ${m.to ?? 'bob@example.com'}`,
    `Subject: ${m.subject ?? 'Hello'}`,
    `Date: ${m.date ?? 'Mon, 1 Jan 2024 10:00:00 +0000'}`,
  ];
  if (m.messageId !== null) lines.push(`Message-ID: ${m.messageId ?? `<${String(++generated).padStart(10, '0')}@example.com>`}`);
  if (m.inReplyTo) lines.push(`In-Reply-To: ${m.inReplyTo}`);
  if (m.references?.length) lines.push(`References: ${m.references.join(' ')}`);
  lines.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8');
  return lines.join('\r\n') + '\r\n\r\n' + (m.body ?? 'Hello there.\r\n');
}

function headerEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x0a) return i + 2;
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3;
  }
  return bytes.length;
}

function headers(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const unfolded = text.replace(/\r?\n[ \t]/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m && !out.has(m[1].toLowerCase())) out.set(m[1].toLowerCase(), m[2].trim());
  }
  return out;
}

function ids(value: string | undefined): string[] {
  return value ? (value.match(/<[^<>]+>/g) ?? []) : [];
}

async function stageBytes(blobs: BlobsPort, bytes: Uint8Array, writeSize: number): Promise<StagedBlob> {
  const writer = blobs.stage();
  try {
    for (let o = 0; o < bytes.length; o += writeSize) await writer.write(bytes.slice(o, o + writeSize));
    return await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Makes an IngestedMessage from raw bytes. */
export async function fakeMessage(blobs: BlobsPort, raw: string | Uint8Array, options: FakeMessageOptions = {}): Promise<IngestedMessage> {
  const bytes = typeof raw === 'string' ? encoder.encode(raw) : raw;
  const bodyStart = headerEnd(bytes);
  const head = headers(decoder.decode(bytes.subarray(0, bodyStart)));
  const body = bytes.subarray(bodyStart);
  const bodyText = decoder.decode(body);
  const mime: MimeNode = mimeNode({
    bodyStart,
    bodyEnd: bytes.length,
    params: { charset: 'utf-8' },
    size: body.length,
    lines: body.length === 0 ? 0 : bodyText.split('\n').length - (bodyText.endsWith('\n') ? 1 : 0),
  });
  const subject = options.subject ?? head.get('subject') ?? '';
  const messageId = options.messageId !== undefined ? options.messageId : (head.get('message-id') ?? null);
  const envelope: Envelope = {
    date: head.get('date') ?? null,
    subject: head.get('subject') ?? null,
    from: null,
    sender: null,
    replyTo: null,
    to: null,
    cc: null,
    bcc: null,
    inReplyTo: head.get('in-reply-to') ?? null,
    messageId,
  };
  const references = options.references ?? [...new Set([...ids(head.get('references')), ...ids(head.get('in-reply-to'))])];
  const date = head.get('date') ? Date.parse(head.get('date')!) : NaN;

  let content: MessageContent;
  const staged: StagedBlob[] = [];
  if (options.blobBody && body.length > 0) {
    const blob = await stageBytes(blobs, body, options.writeSize ?? 16 * 1024);
    staged.push(blob);
    content = {
      inline: bytes.slice(0, bodyStart),
      segments: [{ length: bodyStart }, { length: body.length, blob: blob.hash }],
    };
  } else {
    content = { inline: bytes.slice(), segments: [{ length: bytes.length }] };
  }

  return {
    size: bytes.length,
    content,
    mime,
    envelope,
    messageId,
    references,
    subject,
    headerDate: Number.isFinite(date) ? date : null,
    hasAttachments: false,
    searchText: options.searchText ?? bodyText,
    searchHeaders: searchHeaders(parseHeaderBlock(bytes.subarray(0, bodyStart))),
    preview: makePreview([options.searchText ?? bodyText]),
    blobs: staged,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}


/** Reassembles a stored message from its segments (whole message only). */
export async function messageBytes(content: MessageContent, blobs: BlobsPort): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let inlineOffset = 0;
  for (const seg of content.segments) {
    if (seg.blob) parts.push(await collect(blobs.read(seg.blob)));
    else {
      parts.push(content.inline.subarray(inlineOffset, inlineOffset + seg.length));
      inlineOffset += seg.length;
    }
  }
  return collect(
    (async function* () {
      yield* parts;
    })(),
  );
}

export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
