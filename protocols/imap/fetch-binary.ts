/**
 * FETCH BINARY[part]<partial>, BINARY.PEEK[part]<partial> and BINARY.SIZE[part] (RFC 3516): a part's body decoded
 * from its Content-Transfer-Encoding. The stored (encoded) bytes stream through a decoder (storage/mime
 * transfer-decode.ts) as the literal goes out: the part is never held whole, and nothing of the message outside
 * the part is read. BINARY.SIZE reads only the MIME tree: sizes come from MimeNode.decodedSize, counted once at
 * ingest (identity encodings: the stored size); a message stored before that was recorded has its segments loaded
 * and the part decoded once to count (nothing kept). `BINARY[]` is the message as stored (its size RFC822.SIZE).
 *
 * A response that may hold a NUL goes out as a literal8 (`~{n}`): a part of up to INSPECT_LIMIT decoded bytes is
 * read first and sent as a plain literal when it has none; a larger one is always a literal8. An encoding the
 * server cannot decode is answered `NO [UNKNOWN-CTE]` (FetchRefusal, mapped by the FETCH command).
 */
import { decodeStream, findPart, isIdentity, readAll, readMessage, canDecode } from '../../storage/mime/index.ts';
import type { MessageContent, MimeNode } from '../../storage/ports.ts';
import type { FetchMessage } from './fetch.ts';
import { once, partialRange } from './fetch-range.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken, ResponsePiece } from './types.ts';

export interface BinaryItem {
  type: 'binary';
  /** BINARY.PEEK / BINARY.SIZE: does not set \Seen. */
  peek: boolean;
  /** BINARY.SIZE: only the decoded size. */
  size: boolean;
  /** Part number, "" for the whole message. */
  part: string;
  partial: { start: number; length: number | null } | null;
}

/** A FETCH the server refuses for one message's content: tagged NO with this response code. */
export class FetchRefusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Decoded parts up to this size are read before they are announced, to pick literal or literal8. */
const INSPECT_LIMIT = 64 * 1024;
const MAX_NUMBER = 4294967295;
const BINARY_NAMES = new Set(['BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);

/** True for the data item names this module parses (with a section). */
export function isBinaryName(name: string): boolean {
  return BINARY_NAMES.has(name);
}

/** `BINARY[1.2]<0.100>` token (name upper-cased) → item. Section-binary is part numbers only (RFC 3516 §4.3). */
export function parseBinaryItem(name: string, token: Extract<ImapToken, { type: 'atom' }>): BinaryItem {
  const section = token.section ?? [];
  let part = '';
  if (section.length > 0) {
    const first = section[0]!;
    if (section.length !== 1 || first.type !== 'atom' || first.section || first.partial) throw new ImapSyntaxError('Invalid BINARY section');
    for (const word of first.value.split('.')) {
      if (!/^[1-9][0-9]*$/.test(word) || Number(word) > MAX_NUMBER) throw new ImapSyntaxError('Invalid BINARY section part number');
    }
    part = first.value;
  }
  let partial: BinaryItem['partial'] = null;
  if (token.partial) {
    if (name === 'BINARY.SIZE') throw new ImapSyntaxError('BINARY.SIZE takes no partial range');
    const { start, length } = token.partial;
    if (start > MAX_NUMBER || (length !== null && (length < 1 || length > MAX_NUMBER))) throw new ImapSyntaxError('Invalid partial range');
    partial = { start, length };
  }
  return { type: 'binary', peek: name !== 'BINARY', size: name === 'BINARY.SIZE', part, partial };
}

/** `BINARY[1]<0>` / `BINARY.SIZE[1]` as the response names it. */
export function binaryLabel(item: BinaryItem): string {
  if (item.size) return `BINARY.SIZE[${item.part}]`;
  return `BINARY[${item.part}]${item.partial ? `<${item.partial.start}>` : ''}`;
}

/** What the item addresses: a byte range of the stored message and its encoding; null for a part that is not there. */
function target(item: BinaryItem, message: FetchMessage): { from: number; to: number; encoding: string; node: MimeNode | null } | null {
  if (item.part === '') return { from: 0, to: message.entry.size, encoding: '7bit', node: null };
  const root = message.record?.mime;
  if (!root) throw new Error('renderFetch: the plan needs the message MIME tree');
  const node = findPart(root, item.part);
  if (!node) return null;
  if (!canDecode(node.encoding)) throw new FetchRefusal('UNKNOWN-CTE', `Cannot decode part ${item.part}: unknown Content-Transfer-Encoding ${node.encoding}`);
  return { from: node.bodyStart, to: node.bodyEnd, encoding: node.encoding, node };
}

/** The message's segments: loaded with the plan, or (BINARY.SIZE of a message stored before sizes were recorded) now. */
async function content(message: FetchMessage): Promise<MessageContent> {
  const found = message.content ?? (await message.loadContent?.());
  if (!found) throw new Error('renderFetch: the plan needs the message content');
  return found;
}

async function* decoded(message: FetchMessage, from: number, to: number, encoding: string): AsyncIterable<Uint8Array> {
  yield* decodeStream(readMessage(await content(message), message.blobs, from, to), encoding);
}

/** The decoded size: stored at ingest, the stored size for an identity encoding, or counted by decoding once. */
async function decodedSize(message: FetchMessage, range: NonNullable<ReturnType<typeof target>>): Promise<number> {
  if (isIdentity(range.encoding)) return range.to - range.from;
  if (range.node?.decodedSize !== undefined) return range.node.decodedSize;
  let size = 0;
  for await (const chunk of decoded(message, range.from, range.to, range.encoding)) size += chunk.length;
  return size;
}

/** Bytes [start, end) of a stream. */
async function* slice(source: AsyncIterable<Uint8Array>, start: number, end: number): AsyncIterable<Uint8Array> {
  let offset = 0;
  for await (const chunk of source) {
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, chunk.length);
    offset += chunk.length;
    if (to > from) yield chunk.subarray(from, to);
    if (offset >= end) return;
  }
}

/** The value of one BINARY item: a number (BINARY.SIZE), `""`, or a literal / literal8 piece. */
export async function binaryPiece(item: BinaryItem, message: FetchMessage): Promise<ResponsePiece> {
  const range = target(item, message);
  if (!range) return item.size ? '0' : 'NIL';
  const total = await decodedSize(message, range);
  if (item.size) return String(total);
  const { start, end } = partialRange(item.partial, total);
  const size = end - start;
  if (size <= 0) return '""';
  const bytes = isIdentity(range.encoding)
    ? async function* () {
        yield* readMessage(await content(message), message.blobs, range.from + start, range.from + end);
      }
    : () => slice(decoded(message, range.from, range.to, range.encoding), start, end);
  if (size <= INSPECT_LIMIT) {
    const held = await readAll(bytes());
    return { literal: once(held), size, binary: held.includes(0) };
  }
  return { literal: bytes(), size, binary: true };
}
