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
const latin1 = new TextDecoder('latin1');

/** Header bytes as text: UTF-8 when valid (the common 8-bit case), otherwise byte-per-char so nothing is lost. */
export function headerText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}

/** A line that can start a header field: printable field name, optional whitespace, colon. */
const FIELD_START = /^[!-9;-~]+[ \t]*:/;

/** True when `line` (one raw line, any terminator) can open a header block. */
export function looksLikeHeaderLine(line: Uint8Array): boolean {
  const head = latin1.decode(line.subarray(0, Math.min(line.length, 256)));
  return FIELD_START.test(head);
}

/** Splits a header block into fields. Continuation lines are joined; lines that are not fields are skipped. */
export function parseHeaderBlock(bytes: Uint8Array): HeaderField[] {
  const text = headerText(bytes);
  const fields: HeaderField[] = [];
  let current: string | null = null;
  const flush = (): void => {
    if (current === null) return;
    const colon = current.indexOf(':');
    const key = current.slice(0, colon).trim().toLowerCase();
    const value = current.slice(colon + 1).trim();
    if (key) fields.push({ key, value });
    current = null;
  };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.length === 0) continue;
    if ((line[0] === ' ' || line[0] === '\t') && current !== null) {
      current += line; // unfold: drop the line break, keep the whitespace
    } else if (FIELD_START.test(line)) {
      flush();
      current = line;
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
