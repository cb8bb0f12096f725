/**
 * The blob codec's chunk form for base64 text in lines (storage/blob-codec.ts, version 3): nearly every attachment
 * arrives base64-encoded in lines of 76 characters, and its bytes are mostly already compressed, so a general
 * compressor (brotli at quality 1) only wins back base64's 6 bits per character, at ~12 ms of CPU per MB. Decoding
 * the base64 wins back the same (0.73 of the raw size, against brotli's 0.76) natively, in a fraction of that.
 *
 * A chunk is taken as: a head (the bytes up to and including the first line end, kept as they are: the chunk may
 * start mid-line), a region of whole lines of `L` base64 characters each followed by the same line end (CRLF or LF),
 * and a tail (the rest, kept as it is: a partial line, padding, whatever follows). Only the region is decoded. The
 * encoder rebuilds the region from what it decoded and compares it with the input byte for byte: anything that
 * would not come back identical (a stray character, padding inside, an irregular line) is not this form, and the
 * chunk is compressed the general way instead. So decoding can never change a byte of a message.
 *
 * Stored chunk: header (u32 LE head length, u32 LE tail length, u16 LE line length, u8 line-end length, u8 0),
 * head bytes, tail bytes, decoded region bytes.
 */
import { Buffer } from 'node:buffer';

const HEADER = 12;
const LF = 0x0a;
const CR = 0x0d;
const PAD = 0x3d; // '='
/** Longest head, and longest line taken for base64 lines. */
const MAX_LINE = 1000;
/** Fewer region bytes than this are not worth a form of their own. */
const MIN_REGION = 1024;

/** Base64 text is ASCII: TextEncoder writes it natively on every runtime (Deno's Buffer.write is not native). */
const ascii = new TextEncoder();

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes the base64 of `decoded` into `out` from `offset` as lines of `line` characters, each followed by the line end. */
function writeLines(decoded: Buffer, out: Uint8Array, offset: number, line: number, eol: number): number {
  const text = decoded.toString('base64');
  const lines = text.length / line;
  // the text written in one piece, then each line moved to its place, last first (moves only go forward)
  ascii.encodeInto(text, out.subarray(offset, offset + text.length));
  const step = line + eol;
  for (let i = lines - 1; i >= 0; i--) {
    const to = offset + i * step;
    if (i > 0) out.copyWithin(to, offset + i * line, offset + (i + 1) * line);
    if (eol === 2) out[to + line] = CR;
    out[to + line + eol - 1] = LF;
  }
  return offset + lines * step;
}

/** The stored form of `raw`, or null when it is not base64 in regular lines (or too little of it is). */
export function encodeBase64Lines(raw: Uint8Array): Uint8Array | null {
  const bytes = view(raw);
  const first = bytes.indexOf(LF);
  if (first < 0 || first >= MAX_LINE) return null;
  const head = first + 1;
  const next = bytes.indexOf(LF, head);
  if (next < 0) return null;
  const eol = next > head && bytes[next - 1] === CR ? 2 : 1;
  const line = next - head - (eol - 1);
  if (line < 4 || line % 4 !== 0 || line > MAX_LINE) return null;
  const step = line + eol;
  let lines = 0;
  for (let s = head; s + step <= bytes.length; s += step) {
    if (bytes[s + step - 1] !== LF || (eol === 2 && bytes[s + line] !== CR)) break;
    lines++;
  }
  // padding ends the base64: a last line ending in '=' goes to the tail (it would not decode to whole lines)
  if (lines > 0 && bytes[head + (lines - 1) * step + line - 1] === PAD) lines--;
  if (lines * line < MIN_REGION) return null;
  const regionEnd = head + lines * step;
  const decoded = Buffer.from(bytes.toString('latin1', head, regionEnd), 'base64');
  if (decoded.length !== (lines * line * 3) / 4) return null;
  const tail = bytes.length - regionEnd;
  const stored = new Uint8Array(HEADER + head + tail + decoded.length);
  // the check: the region rebuilt from the decoded bytes (where the header and copies go next) equals the input
  const check = new Uint8Array(regionEnd - head);
  writeLines(decoded, check, 0, line, eol);
  if (!view(check).equals(bytes.subarray(head, regionEnd))) return null;
  const dv = new DataView(stored.buffer);
  dv.setUint32(0, head, true);
  dv.setUint32(4, tail, true);
  dv.setUint16(8, line, true);
  stored[10] = eol;
  stored.set(raw.subarray(0, head), HEADER);
  stored.set(raw.subarray(regionEnd), HEADER + head);
  stored.set(decoded, HEADER + head + tail);
  return stored;
}

/** The raw chunk back from its stored form. Throws RangeError on a malformed one. */
export function decodeBase64Lines(stored: Uint8Array): Uint8Array {
  if (stored.byteLength < HEADER) throw new RangeError('base64 chunk too short');
  const dv = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  const head = dv.getUint32(0, true);
  const tail = dv.getUint32(4, true);
  const line = dv.getUint16(8, true);
  const eol = stored[10]!;
  const decodedStart = HEADER + head + tail;
  const decodedLength = stored.byteLength - decodedStart;
  if (line === 0 || line % 4 !== 0 || (eol !== 1 && eol !== 2) || decodedLength < 0 || decodedLength % ((line / 4) * 3) !== 0) {
    throw new RangeError('malformed base64 chunk');
  }
  const lines = decodedLength / ((line / 4) * 3);
  const out = new Uint8Array(head + lines * (line + eol) + tail);
  out.set(stored.subarray(HEADER, HEADER + head), 0);
  const end = writeLines(view(stored.subarray(decodedStart)), out, head, line, eol);
  out.set(stored.subarray(HEADER + head, decodedStart), end);
  return out;
}
