/**
 * Content-Transfer-Encoding decoding as bytes stream by (RFC 2045 §6): base64 and quoted-printable decoders that
 * take chunks of any size and keep only a few bytes (or one unfinished line) between them, so a part is decoded
 * as it is read and never held whole. IMAP BINARY (RFC 3516) serves decoded parts with them, and ingest records
 * each encoded leaf's decoded size with them (`DecodedSizeSink`, MimeNode.decodedSize) so BINARY.SIZE reads nothing.
 *
 * Identity encodings (7bit, 8bit, binary, and none) pass through; any other encoding is unknown (`canDecode` false:
 * IMAP answers [UNKNOWN-CTE]).
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

/** Base64 alphabet and `=`: every other byte (line ends, spaces, stray characters) is skipped. */
const BASE64_CHAR = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=') BASE64_CHAR[c.charCodeAt(0)] = 1;

export class Base64Decoder implements TransferDecoder {
  /** Up to 3 characters of an unfinished quantum. */
  #carry = '';

  push(chunk: Uint8Array): Uint8Array {
    let text = this.#carry;
    let start = 0;
    // runs of alphabet characters appended whole (the common case: lines of 76)
    for (let i = 0; i <= chunk.length; i++) {
      if (i === chunk.length || BASE64_CHAR[chunk[i]!] === 0) {
        if (i > start) text += latin1(chunk, start, i);
        start = i + 1;
      }
    }
    const whole = text.length - (text.length % 4);
    this.#carry = text.slice(whole);
    return whole === 0 ? EMPTY : decodeBase64(text.slice(0, whole));
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

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

// --- quoted-printable --------------------------------------------------------------------------------------

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
/** An unfinished line longer than this is decoded up to a safe point instead of kept. */
const MAX_PENDING = 64 * 1024;

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Quoted-printable, line by line: `=XX` is the byte XX, `=` at the end of a line (trailing blanks allowed) joins it
 * to the next, blanks at the end of a line are dropped (RFC 2045 §6.7 rule 3), a hard line end is kept as it came
 * (CRLF or LF). A malformed `=` is kept as it is.
 */
export class QuotedPrintableDecoder implements TransferDecoder {
  #pending: Uint8Array = EMPTY;

  push(chunk: Uint8Array): Uint8Array {
    const data = this.#pending.length === 0 ? chunk : concat(this.#pending, chunk);
    const out: number[] = [];
    let lineStart = 0;
    for (let lf = data.indexOf(LF); lf >= 0; lf = data.indexOf(LF, lineStart)) {
      decodeLine(data, lineStart, lf, true, out);
      lineStart = lf + 1;
    }
    let rest = data.subarray(lineStart);
    if (rest.length > MAX_PENDING) {
      // a very long line: decode all but its last bytes (an escape or trailing blanks may be cut there)
      let cut = rest.length - 3;
      while (cut > 0 && (rest[cut - 1] === SP || rest[cut - 1] === TAB || rest[cut - 1] === CR)) cut--;
      const stop = decodeSpan(rest, 0, cut, out, true);
      rest = rest.subarray(stop);
    }
    this.#pending = rest.length === 0 ? EMPTY : rest.slice();
    return Uint8Array.from(out);
  }

  end(): Uint8Array {
    const out: number[] = [];
    if (this.#pending.length > 0) decodeLine(this.#pending, 0, this.#pending.length, false, out);
    this.#pending = EMPTY;
    return Uint8Array.from(out);
  }
}

/** Decodes the line [start, end) (end at its LF when `hasLf`). */
function decodeLine(data: Uint8Array, start: number, end: number, hasLf: boolean, out: number[]): void {
  let stop = end;
  const crlf = hasLf && stop > start && data[stop - 1] === CR;
  if (crlf) stop--;
  while (stop > start && (data[stop - 1] === SP || data[stop - 1] === TAB)) stop--;
  const soft = stop > start && data[stop - 1] === EQUALS;
  if (soft) stop--;
  decodeSpan(data, start, stop, out);
  if (!soft && hasLf) {
    if (crlf) out.push(CR);
    out.push(LF);
  }
}

/**
 * Decodes [start, end) and returns where it stopped: with `more` (the line goes on past `end`), before an `=` that has
 * fewer than two bytes after it in the span; else at `end` (such an `=` is kept as it is).
 */
function decodeSpan(data: Uint8Array, start: number, end: number, out: number[], more = false): number {
  let i = start;
  while (i < end) {
    const c = data[i]!;
    if (c !== EQUALS) {
      out.push(c);
      i++;
      continue;
    }
    if (more && i + 2 >= end) return i;
    const high = i + 1 < end ? hex(data[i + 1]!) : -1;
    const low = i + 2 < end ? hex(data[i + 2]!) : -1;
    if (high >= 0 && low >= 0) {
      out.push((high << 4) | low);
      i += 3;
    } else {
      out.push(c);
      i++;
    }
  }
  return i;
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
