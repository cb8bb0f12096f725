/**
 * Header blocks: raw bytes → unfolded fields, and the MIME fields (Content-Type, Content-Disposition, …)
 * read into the shape `MimeNode` keeps. Parameter parsing and RFC 2231 joining are libmime's.
 */
import libmime from 'libmime';
import type { MimeNode } from '../ports.ts';

/** One header field: lowercased name and the raw value, unfolded (line breaks removed), trimmed. */
export interface HeaderField {
  key: string;
  value: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Byte per char (ISO-8859-1 in Node, windows-1252 in Deno: use it only where the text is ASCII). */
const latin1 = new TextDecoder('latin1');

/**
 * windows-1252 0x80–0x9F as the WHATWG Encoding Standard maps them (the five unassigned bytes to the C1
 * control of the same value). Written out because `TextDecoder('latin1')` is ISO-8859-1 in Node and
 * windows-1252 in Deno, and iconv-lite turns the unassigned bytes into U+FFFD (losing them).
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

/** windows-1252 bytes → text, one character per byte (nothing is lost). */
export function decodeWindows1252(bytes: Uint8Array): string {
  let out = '';
  for (let start = 0; start < bytes.length; start += 8192) {
    const codes: number[] = [];
    const end = Math.min(bytes.length, start + 8192);
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      codes.push(byte >= 0x80 && byte <= 0x9f ? CP1252_HIGH[byte - 0x80]! : byte);
    }
    out += String.fromCharCode(...codes);
  }
  return out;
}

/**
 * Header bytes as text: UTF-8 when valid (RFC 6532, the common 8-bit case), otherwise windows-1252 (the usual
 * legacy charset of raw 8-bit headers, a superset of ISO-8859-1's printable range), one character per byte
 * so nothing is lost. Decided per header field, never per block: a Latin-1 Subject must not turn a UTF-8
 * From into mojibake (parseHeaderBlock calls this once per field).
 */
export function headerText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return decodeWindows1252(bytes);
  }
}

/** A line that can start a header field: printable field name, optional whitespace, colon. */
const FIELD_START = /^[!-9;-~]+[ \t]*:/;

/** True when `line` (one raw line, any terminator) can open a header block. */
export function looksLikeHeaderLine(line: Uint8Array): boolean {
  const head = latin1.decode(line.subarray(0, Math.min(line.length, 256)));
  return FIELD_START.test(head);
}

/** Line bytes without the LF or CRLF that ends them. */
function withoutEol(line: Uint8Array): Uint8Array {
  let end = line.length;
  if (end > 0 && line[end - 1] === 10) end--;
  if (end > 0 && line[end - 1] === 13) end--;
  return line.subarray(0, end);
}

/**
 * Splits a header block into fields. Continuation lines are joined; lines that are not fields are skipped.
 * Each field's bytes are decoded on their own (headerText): UTF-8 if they are valid UTF-8, else windows-1252.
 */
export function parseHeaderBlock(bytes: Uint8Array): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: Uint8Array[] | null = null;
  const flush = (): void => {
    if (current === null) return;
    let size = 0;
    for (const line of current) size += line.length;
    const joined = new Uint8Array(size);
    let position = 0;
    for (const line of current) {
      joined.set(line, position);
      position += line.length;
    }
    const text = headerText(joined);
    const colon = text.indexOf(':');
    const key = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (key) fields.push({ key, value });
    current = null;
  };
  let offset = 0;
  while (offset < bytes.length) {
    let end = bytes.indexOf(10, offset);
    end = end < 0 ? bytes.length : end + 1;
    const line = withoutEol(bytes.subarray(offset, end));
    offset = end;
    if (line.length === 0) continue;
    if ((line[0] === 32 || line[0] === 9) && current !== null) {
      current.push(line); // unfold: drop the line break, keep the whitespace
    } else if (FIELD_START.test(latin1.decode(line))) {
      flush();
      current = [line];
    } else {
      flush(); // garbage line: ends the current field, is otherwise ignored
    }
  }
  flush();
  return fields;
}

/** First value of a field, or null. */
export function getHeader(fields: HeaderField[], key: string): string | null {
  for (const field of fields) if (field.key === key) return field.value;
  return null;
}

/** All values of a field, in order. */
export function getHeaders(fields: HeaderField[], key: string): string[] {
  return fields.filter((field) => field.key === key).map((field) => field.value);
}

export interface ParsedValue {
  value: string;
  params: Record<string, string>;
}

/**
 * `value; a=b; c*0*=…` → lowercased value and params (names lowercased, RFC 2231 continuations joined).
 * Values given with RFC 2231 charset encoding come back from libmime decoded; non-ASCII ones are re-encoded
 * here as one RFC 2047 word so that every stored value is 7-bit and `libmime.decodeWords` reads any of them.
 */
export function parseParams(raw: string): ParsedValue {
  let parsed: ReturnType<typeof libmime.parseHeaderValue>;
  try {
    parsed = libmime.parseHeaderValue(raw);
  } catch {
    return { value: raw.split(';')[0]!.trim().toLowerCase(), params: {} };
  }
  const decoded: string[] = (parsed as unknown as { decodedParams?: string[] }).decodedParams ?? [];
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed.params ?? {})) {
    let text = String(value);
    if (decoded.includes(name) && /[^\x20-\x7e]/.test(text)) text = libmime.encodeWord(text, 'Q');
    params[name.toLowerCase()] = text;
  }
  return { value: String(parsed.value ?? '').trim().toLowerCase(), params };
}

/** Decodes RFC 2047 words; never throws. */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value; // no encoded word: libmime's five passes would give it back as it is
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** The MIME fields of a node, with IMAP defaults. `defaultType` is text/plain, or message/rfc822 in a digest. */
export function applyMimeHeaders(node: MimeNode, fields: HeaderField[], defaultType: [string, string]): void {
  const contentType = getHeader(fields, 'content-type');
  let type = defaultType[0];
  let subtype = defaultType[1];
  let params: Record<string, string> = {};
  if (contentType !== null) {
    const parsed = parseParams(contentType);
    const match = /^([^\s/]+)\/([^\s/]+)$/.exec(parsed.value);
    if (match) {
      type = match[1]!;
      subtype = match[2]!;
      params = parsed.params;
    } else {
      // RFC 2045 5.2: an unparseable Content-Type means text/plain; charset=us-ascii
      type = 'text';
      subtype = 'plain';
      params = { charset: 'us-ascii' };
    }
  }
  node.type = type;
  node.subtype = subtype;
  node.params = params;

  const disposition = getHeader(fields, 'content-disposition');
  if (disposition !== null) {
    const parsed = parseParams(disposition);
    node.disposition = parsed.value ? { type: parsed.value, params: parsed.params } : null;
  } else {
    node.disposition = null;
  }

  const encoding = getHeader(fields, 'content-transfer-encoding');
  node.encoding = encoding ? (encoding.split(/[\s;(]/)[0] || '7bit').toLowerCase() : '7bit';
  node.id = getHeader(fields, 'content-id');
  node.description = getHeader(fields, 'content-description');
  node.md5 = getHeader(fields, 'content-md5');
  const language = getHeader(fields, 'content-language');
  const languages = language ? language.split(/[\s,]+/).filter(Boolean) : [];
  node.language = languages.length > 0 ? languages : null;
  node.location = getHeader(fields, 'content-location');
}

/** A part's file name, RFC 2047 / RFC 2231 decoded, from Content-Disposition filename or Content-Type name. */
export function fileName(node: MimeNode): string | null {
  const raw = node.disposition?.params.filename ?? node.params.name ?? null;
  return raw === null ? null : decodeWords(raw);
}
