/**
 * The one MIME ingest every backend uses: stream a message once, and get back everything a commit needs —
 * content segments (large bodies staged as blobs), MIME tree, envelope, threading ids, decoded subject and
 * searchable text, an identity hash. Memory stays bounded whatever the message size.
 */
import { createHash } from 'node:crypto';
import type { BlobsPort, IngestedMessage, MessageContent, MimeNode } from '../ports.ts';
import { buildEnvelope, messageIds } from './envelope.ts';
import { decodeWords, fileName, getHeader } from './headers.ts';
import { DEFAULT_SEARCH_TEXT_LIMIT, SearchTextCollector } from './search-text.ts';
import { searchHeaders } from './search-headers.ts';
import { DEFAULT_BLOB_THRESHOLD, SegmentBuilder } from './segments.ts';
import { MimeSplitter } from './splitter.ts';
import { DecodedSizeSink } from './transfer-decode.ts';
import type { SplitterOptions, SplitterSink } from './splitter.ts';

export interface IngestOptions extends SplitterOptions {
  /** Leaf bodies larger than this many bytes go to a blob (default 16 KiB). */
  blobThreshold?: number;
  /** Refuse messages larger than this many bytes with `MessageTooLargeError` (default: no limit). */
  maxSize?: number;
  /** Longest `searchText`, in characters (default 256 Ki). */
  searchTextLimit?: number;
  /** HTML nested deeper than this is tag-stripped for the search text instead of parsed (html-depth.ts). */
  maxHtmlDepth?: number;
}

/** The message passed `maxSize`; thrown as soon as the byte count does, staged blobs already discarded. */
export class MessageTooLargeError extends Error {
  readonly code = 'TOOBIG';
  readonly maxSize: number;
  constructor(maxSize: number) {
    super(`Message exceeds the maximum size of ${maxSize} bytes`);
    this.name = 'MessageTooLargeError';
    this.maxSize = maxSize;
  }
}

/** Pieces fed to the parser when the source is one array, so blob writes start early. */
const SLICE = 64 * 1024;

async function* chunksOf(source: AsyncIterable<Uint8Array> | Uint8Array): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let offset = 0; offset < source.length; offset += SLICE) yield source.subarray(offset, offset + SLICE);
    return;
  }
  for await (const chunk of source) {
    if (typeof chunk === 'string') throw new TypeError('ingestMessage: source must yield Uint8Array chunks');
    yield chunk;
  }
}

function tee(...sinks: SplitterSink[]): SplitterSink {
  return {
    inline: (bytes) => sinks.forEach((sink) => sink.inline(bytes)),
    runStart: (node, leaf) => sinks.forEach((sink) => sink.runStart(node, leaf)),
    runData: (bytes) => sinks.forEach((sink) => sink.runData(bytes)),
    runEnd: () => sinks.forEach((sink) => sink.runEnd()),
  };
}

/** A part with Content-Disposition attachment, or a non-text leaf with a file name. */
export function hasAttachments(node: MimeNode, isRoot = true): boolean {
  if (!isRoot) {
    if (node.disposition?.type === 'attachment') return true;
    if (node.type !== 'text' && node.type !== 'multipart' && fileName(node) !== null) return true;
  }
  for (const child of node.children ?? []) if (hasAttachments(child, false)) return true;
  return node.message ? hasAttachments(node.message.root, false) : false;
}

/**
 * The message's identity hash (IngestedMessage.sha256): SHA-256 of its inline bytes and then its segment layout
 * (each segment's length and blob hash). The blobs' bytes were hashed once already, as they were staged: hashing the
 * whole message again would read every attachment byte twice.
 */
export function contentHash(content: MessageContent): string {
  return createHash('sha256').update(content.inline).update(JSON.stringify(content.segments)).digest('hex');
}

function parseDate(value: string | null): number | null {
  if (!value) return null;
  const time = Date.parse(value.replace(/\s+/g, ' ').trim());
  return Number.isFinite(time) ? time : null;
}

/**
 * Parses `source` once, staging large bodies in `blobs`. On any failure the staged blobs are discarded. The result and
 * the staged blobs may share memory with the chunks `source` yields (no copy of every byte): a source never changes a
 * chunk after yielding it (sockets, spools and file reads hand out fresh memory for each chunk).
 */
export async function ingestMessage(
  source: AsyncIterable<Uint8Array> | Uint8Array,
  blobs: BlobsPort,
  options: IngestOptions = {},
): Promise<IngestedMessage> {
  const segments = new SegmentBuilder(blobs, options.blobThreshold ?? DEFAULT_BLOB_THRESHOLD);
  const search = new SearchTextCollector(options.searchTextLimit ?? DEFAULT_SEARCH_TEXT_LIMIT, options.maxHtmlDepth);
  const splitter = new MimeSplitter(tee(segments, search, new DecodedSizeSink()), options);
  search.leaveOutAlternatives(splitter.root);
  const maxSize = options.maxSize;
  let size = 0;
  let content;
  let root: MimeNode;
  try {
    for await (const chunk of chunksOf(source)) {
      size += chunk.length;
      if (maxSize !== undefined && size > maxSize) throw new MessageTooLargeError(maxSize);
      splitter.write(chunk);
      await segments.flush();
    }
    root = splitter.end();
    content = await segments.finish();
  } catch (error) {
    await segments.abort();
    throw error;
  }

  const fields = splitter.rootFields;
  const envelope = buildEnvelope(fields);
  const references: string[] = [];
  for (const id of [...messageIds(getHeader(fields, 'references')), ...messageIds(envelope.inReplyTo)]) {
    if (!references.includes(id)) references.push(id);
  }
  return {
    size,
    content,
    mime: root,
    envelope,
    messageId: envelope.messageId?.trim() || null,
    references,
    subject: decodeWords(envelope.subject ?? '').trim(),
    headerDate: parseDate(envelope.date),
    hasAttachments: hasAttachments(root),
    searchText: search.result(root),
    searchHeaders: searchHeaders(fields, envelope),
    blobs: segments.staged,
    sha256: contentHash(content),
  };
}
