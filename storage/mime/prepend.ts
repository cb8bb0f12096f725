/**
 * An ingested message with header fields put in front of it, without parsing it again: what ingesting `head` followed
 * by the message's bytes gives, built from the message ingested once. Delivery uses it to store one parse of a
 * message for every recipient, each copy with its own Return-Path and Delivered-To (hooks/pipeline/deliver.ts).
 *
 * `head` must be whole header lines (`Name: value\r\n`...) that MIME and the envelope ignore: every byte offset moves
 * by its length, the top-level header grows by it, the search headers gain its fields, the identity hash is made
 * again over the new inline bytes. Blob segments and staged blobs are the original's (the caller owns the staged
 * blobs once for all copies).
 */
import type { IngestedMessage, MimeNode, Segment } from '../ports.ts';
import { concatBytes } from '../bytes.ts';
import { decodeWords, parseHeaderBlock } from './headers.ts';
import { contentHash } from './ingest.ts';

function shifted(node: MimeNode, by: number, isRoot: boolean): MimeNode {
  const out: MimeNode = {
    ...node,
    headerStart: isRoot ? node.headerStart : node.headerStart + by,
    bodyStart: node.bodyStart + by,
    bodyEnd: node.bodyEnd + by,
  };
  if (node.children) out.children = node.children.map((child) => shifted(child, by, false));
  if (node.message) out.message = { envelope: node.message.envelope, root: shifted(node.message.root, by, false) };
  return out;
}

/**
 * `message` as if `head` had arrived in front of its first header line; null when a fresh ingest would read the
 * prefixed message differently, so the caller must ingest it: a message without a header block (its first line is
 * not a header field, so it would become part of the prefixed header block), or one whose header block would grow
 * past `maxHeaderSize` (the splitter would cut it elsewhere).
 */
export function withHeaderPrefix(message: IngestedMessage, head: Uint8Array, maxHeaderSize: number): IngestedMessage | null {
  const by = head.length;
  if (by === 0) return message;
  if (message.mime.bodyStart === 0 || message.mime.bodyStart + by > maxHeaderSize) return null;
  const first = message.content.segments[0];
  const segments: Segment[] =
    first && first.blob === undefined
      ? [{ length: first.length + by }, ...message.content.segments.slice(1)]
      : [{ length: by }, ...message.content.segments];
  const content = { inline: concatBytes([head, message.content.inline]), segments };
  const headLines = parseHeaderBlock(head)
    .map((field) => `${field.key}: ${decodeWords(field.value)}`)
    .join('\n')
    .normalize('NFC');
  const headers = message.searchHeaders.headers ? `${headLines}\n${message.searchHeaders.headers}` : headLines;
  return {
    ...message,
    size: message.size + by,
    content,
    mime: shifted(message.mime, by, true),
    searchHeaders: { ...message.searchHeaders, headers },
    blobs: [...message.blobs],
    sha256: contentHash(content),
  };
}
