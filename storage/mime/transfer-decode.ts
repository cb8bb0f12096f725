/**
 * Content-Transfer-Encoding decoding as bytes stream by (RFC 2045 §6): base64 and quoted-printable decoders that
 * take chunks of any size and keep only a few bytes (or one unfinished line) between them, so a part is decoded
 * as it is read and never held whole. IMAP BINARY (RFC 3516) serves decoded parts with them, and ingest records
 * each encoded leaf's decoded size with them (`DecodedSizeSink`, MimeNode.decodedSize) so BINARY.SIZE reads nothing.
 *
 * Identity encodings (7bit, 8bit, binary, and none) pass through; any other encoding is unknown (`canDecode` false:
 * IMAP answers [UNKNOWN-CTE]).
 *
 * The sizes ingest stored are announced as BINARY literal sizes before the decoded bytes stream out: a change to what
 * these decoders produce must leave them exact for stored messages (or stop using MimeNode.decodedSize).
 */
import { Buffer } from 'node:buffer';
import type { MimeNode } from '../ports.ts';
import type { SplitterSink } from './splitter.ts';

export interface TransferDecoder {
  /** Decoded bytes for the next chunk (may be empty: kept until more arrives). */
  push(chunk: Uint8Array): Uint8Array;
  /** Whatever was kept back, decoded. */
  end(): Uint8Array;
}

const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);
const EMPTY = new Uint8Array(0);

/** True when the encoding is decoded by this module (or needs no decoding). */
export function canDecode(encoding: string): boolean {
  const name = encoding.toLowerCase();
  return IDENTITY.has(name) || name === 'base64' || name === 'quoted-printable';
}

/** True when the part's bytes are its decoded bytes. */
export function isIdentity(encoding: string): boolean {
  return IDENTITY.has(encoding.toLowerCase());
}

/** A decoder for `encoding`, or null for an identity (or unknown) encoding. */
export function transferDecoder(encoding: string): TransferDecoder | null {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return new Base64Decoder();
    case 'quoted-printable':
      return new QuotedPrintableDecoder();
    default:
      return null;
  }
}

/** `source` decoded per `encoding` (identity encodings pass through unchanged). */
export async function* decodeStream(source: AsyncIterable<Uint8Array>, encoding: string): AsyncIterable<Uint8Array> {
  const decoder = transferDecoder(encoding);
  if (!decoder) {
    yield* source;
    return;
  }
  for await (const chunk of source) {
    const out = decoder.push(chunk);
    if (out.length > 0) yield out;
  }
  const last = decoder.end();
  if (last.length > 0) yield last;
}

// --- base64 ------------------------------------------------------------------------------------------------

/** Anything but the base64 alphabet and `=` (line ends, spaces, stray characters): skipped. */
const NOT_BASE64 = /[^A-Za-z0-9+/=]+/g;

export class Base64Decoder implements TransferDecoder {
  /** Up to 3 characters of an unfinished quantum. */
  #carry = '';

  push(chunk: Uint8Array): Uint8Array {
    const text = this.#carry + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('latin1').replace(NOT_BASE64, '');
    const whole = text.length - (text.length % 4);
    this.#carry = text.slice(whole);
    return whole === 0 ? EMPTY : decodeBase64(whole === text.length ? text : text.slice(0, whole));
  }

  end(): Uint8Array {
    const rest = this.#carry;
    this.#carry = '';
    return rest.length === 0 ? EMPTY : decodeBase64(rest);
  }
}

function decodeBase64(text: string): Uint8Array {
  // padding inside (concatenated encodings) ends a quantum: decode each padded run alone
  const pad = text.indexOf('=');
  if (pad < 0 || pad >= text.length - 2) return new Uint8Array(Buffer.from(text, 'base64'));
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < text.length; offset += 4) pieces.push(Buffer.from(text.slice(offset, offset + 4), 'base64'));
  return new Uint8Array(Buffer.concat(pieces));
}

// --- quoted-printable --------------------------------------------------------------------------------------

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
/** An unfinished line longer than this is decoded up to a safe point instead of kept. */
const MAX_PENDING = 64 * 1024;

/** Hex digit values, -1 for other bytes. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
}

/**
 * Quoted-printable (RFC 2045 §6.7): `=XX` is the byte XX, `=` at the end of a line (trailing blanks allowed) joins it
 * to the next, blanks at the end of a line are dropped, a hard line end is kept as it came (CRLF or LF). A malformed
 * `=` is kept as it is. Whole lines are decoded as they arrive; the unfinished last one waits for its end.
 */
export class QuotedPrintableDecoder implements TransferDecoder {
  #pending: Uint8Array = EMPTY;

  push(chunk: Uint8Array): Uint8Array {
    const data = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    let limit = data.lastIndexOf(LF) + 1;
    if (data.length - limit > MAX_PENDING) {
      // a very long line: decode all but its end (blanks that may end it, an escape that may be cut)
      limit = data.length - 3;
      while (limit > 0 && (data[limit - 1] === SP || data[limit - 1] === TAB || data[limit - 1] === CR || data[limit - 1] === EQUALS || data[limit - 2] === EQUALS)) limit--;
    }
    this.#pending = limit === data.length ? EMPTY : data.slice(limit);
    return decodeQuotedPrintable(data, limit, false);
  }

  end(): Uint8Array {
    const rest = this.#pending;
    this.#pending = EMPTY;
    return rest.length === 0 ? EMPTY : decodeQuotedPrintable(rest, rest.length, true);
  }
}

/** Decodes data[0, limit): whole lines, or (`last`) the final bytes of the part. */
function decodeQuotedPrintable(data: Uint8Array, limit: number, last: boolean): Uint8Array {
  const out = new Uint8Array(limit); // decoding never grows the bytes
  let o = 0;
  /** Where the current run of blanks starts in `out` (-1: none): dropped when a line end follows. */
  let blanks = -1;
  for (let i = 0; i < limit; i++) {
    const c = data[i]!;
    if (c === EQUALS) {
      const high = i + 2 < limit ? HEX[data[i + 1]!]! : -1;
      const low = high >= 0 ? HEX[data[i + 2]!]! : -1;
      if (low >= 0) {
        out[o++] = (high << 4) | low;
        i += 2;
        blanks = -1;
        continue;
      }
      let j = i + 1;
      while (j < limit && (data[j] === SP || data[j] === TAB)) j++;
      if (j < limit && data[j] === CR && data[j + 1] === LF) j++;
      if ((j < limit && data[j] === LF) || (j === limit && last)) {
        // soft line break: nothing of it is output (blanks before the `=` are not at a line end: kept)
        blanks = -1;
        i = j;
        continue;
      }
      out[o++] = c;
      blanks = -1;
    } else if (c === SP || c === TAB) {
      if (blanks < 0) blanks = o;
      out[o++] = c;
    } else if (c === LF || (c === CR && data[i + 1] === LF && i + 1 < limit)) {
      if (blanks >= 0) o = blanks;
      blanks = -1;
      if (c === CR) {
        out[o++] = CR;
        i++;
      }
      out[o++] = LF;
    } else {
      out[o++] = c;
      blanks = -1;
    }
  }
  if (last && blanks >= 0) o = blanks;
  return out.subarray(0, o);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// --- decoded sizes at ingest ----------------------------------------------------------------------------------

/**
 * Splitter sink that counts each base64 or quoted-printable leaf's decoded size while the message streams through
 * ingest, and records it on the node (`decodedSize`): BINARY.SIZE then reads nothing. Identity leaves need no count
 * (their size is `size`); a leaf in an unknown encoding gets none.
 */
export class DecodedSizeSink implements SplitterSink {
  #node: MimeNode | null = null;
  #decoder: TransferDecoder | null = null;
  #count = 0;

  inline(): void {}

  runStart(node: MimeNode, leaf: boolean): void {
    this.#decoder = leaf ? transferDecoder(node.encoding) : null;
    this.#node = this.#decoder ? node : null;
    this.#count = 0;
  }

  runData(bytes: Uint8Array): void {
    if (this.#decoder) this.#count += this.#decoder.push(bytes).length;
  }

  runEnd(): void {
    if (this.#decoder && this.#node) this.#node.decodedSize = this.#count + this.#decoder.end().length;
    this.#decoder = null;
    this.#node = null;
  }
}
