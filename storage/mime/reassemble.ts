/**
 * Reading stored messages back: any byte range of the original, walking only the segments it overlaps and
 * reading only the needed range of each blob. Part lookup by IMAP part number, and header / body readers
 * that FETCH BODY[…] sections map onto.
 */
import type { BlobsPort, MessageContent, MimeNode } from '../ports.ts';
import { collectBytes } from '../bytes.ts';

/** Total size of the stored message. */
export function contentSize(content: MessageContent): number {
  let size = 0;
  for (const segment of content.segments) size += segment.length;
  return size;
}

/** Yields exactly bytes [start, end) of the original message (end is clamped to its size). */
export async function* readMessage(
  content: MessageContent,
  blobs: BlobsPort,
  start = 0,
  end = Number.POSITIVE_INFINITY,
): AsyncIterable<Uint8Array> {
  start = Math.max(0, start);
  let offset = 0;
  let inlineOffset = 0;
  for (const segment of content.segments) {
    if (offset >= end) break;
    const segmentEnd = offset + segment.length;
    if (segmentEnd > start) {
      const from = Math.max(start, offset) - offset;
      const to = Math.min(end, segmentEnd) - offset;
      if (to > from) {
        if (segment.blob) {
          let expected = to - from;
          for await (const chunk of blobs.read(segment.blob, from, to)) {
            const piece = chunk.length > expected ? chunk.subarray(0, expected) : chunk;
            expected -= piece.length;
            if (piece.length > 0) yield piece;
            if (expected === 0) break;
          }
          if (expected !== 0) throw new Error(`blob ${segment.blob} is shorter than its segment`);
        } else {
          yield content.inline.subarray(inlineOffset + from, inlineOffset + to);
        }
      }
    }
    if (!segment.blob) inlineOffset += segment.length;
    offset = segmentEnd;
  }
}

/** Collects an async byte stream into one array (for small messages and tests). */
export const readAll = collectBytes;

/**
 * The node IMAP part number `part` names ("" = the message, "1", "2.1", …), or null.
 *
 * RFC 3501 numbering: in a multipart, "n" is the n-th child; a non-multipart message's body is "1" (returned as
 * the message's own node); for a message/rfc822 part "p", "p.n" numbers the parts of the encapsulated message
 * the same way. Use `readBody(node)` for BODY[part], `readHeader(node)` for BODY[part.MIME] and, with the
 * encapsulated root (`messageRoot(node)`), BODY[part.HEADER] and BODY[part.TEXT].
 */
export function findPart(root: MimeNode, part: string): MimeNode | null {
  if (part === '') return root;
  let node = root;
  let isMessage = true;
  for (const token of part.split('.')) {
    if (!/^[1-9][0-9]*$/.test(token)) return null;
    const index = Number(token);
    if (!isMessage && node.message) {
      node = node.message.root;
      isMessage = true;
    }
    if (node.children) {
      const child = node.children[index - 1];
      if (!child) return null;
      node = child;
      isMessage = false;
    } else if (isMessage && index === 1) {
      isMessage = false; // the body of a single-part message
    } else {
      return null;
    }
  }
  return node;
}

/** The encapsulated message of a message/rfc822 part, or `node` itself when it is a message root. */
export function messageRoot(node: MimeNode): MimeNode | null {
  if (node.message) return node.message.root;
  return node.part === '' ? node : null;
}

/** Header block of a node: BODY[HEADER] for a message root, BODY[part.MIME] for a part. */
export function readHeader(content: MessageContent, blobs: BlobsPort, node: MimeNode): AsyncIterable<Uint8Array> {
  return readMessage(content, blobs, node.headerStart, node.bodyStart);
}

/** Body of a node, optionally only bytes [start, end) of it (relative to the body): BODY[part]<start.len>. */
export function readBody(
  content: MessageContent,
  blobs: BlobsPort,
  node: MimeNode,
  start = 0,
  end = Number.POSITIVE_INFINITY,
): AsyncIterable<Uint8Array> {
  const from = node.bodyStart + Math.max(0, start);
  const to = Math.min(node.bodyEnd, node.bodyStart + end);
  return readMessage(content, blobs, from, Math.max(from, to));
}

/** Header and body of a node together (an encapsulated message as a whole, BODY[part] of a message/rfc822). */
export function readNode(content: MessageContent, blobs: BlobsPort, node: MimeNode): AsyncIterable<Uint8Array> {
  return readMessage(content, blobs, node.headerStart, node.bodyEnd);
}
