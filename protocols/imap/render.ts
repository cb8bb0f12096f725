/// <reference path="./vendor.d.ts" />
/**
 * IMAP wire encoding of server data (RFC 3501 §4, §7.4.2, §9; RFC 6855 for UTF8=ACCEPT):
 * strings (quoted, literal, astring, nstring), ENVELOPE, BODY / BODYSTRUCTURE, flag lists, mailbox names
 * (modified UTF-7), and the date formats (INTERNALDATE, APPEND date-time, SEARCH date).
 *
 * Everything returns text ready for the wire. A literal inside text is written as `{n}\r\n` followed by the
 * characters, where n counts UTF-8 bytes: the session encodes response text as UTF-8.
 */
import { domainToASCII } from 'node:url';
import libmime from 'libmime';
import utf7 from 'utf7';
import type { Envelope, EnvelopeAddress, MimeNode } from '../../storage/ports.ts';
import { ImapSyntaxError } from './types.ts';

export interface RenderOptions {
  /** The client enabled UTF8=ACCEPT (RFC 6855): UTF-8 may appear in quoted strings and mailbox names. */
  utf8?: boolean;
}

/** The NIL atom. */
export const NIL = 'NIL';

/** Strings longer than this many characters are sent as literals even when they could be quoted. */
export const MAX_QUOTED_LENGTH = 1024;

const encoder = new TextEncoder();

/** Size in bytes of `text` as UTF-8 (what `{n}` must announce). */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

const NON_ASCII = /[^\x00-\x7f]/;
const CR_LF_NUL = /[\r\n\0]/;

/** True when `text` can be a quoted string: no CR, LF or NUL, 7-bit unless UTF-8 is allowed, not too long. */
export function canQuote(text: string, options: RenderOptions = {}): boolean {
  if (text.length > MAX_QUOTED_LENGTH || CR_LF_NUL.test(text)) return false;
  return options.utf8 === true || !NON_ASCII.test(text);
}

/** `"text"` with `\` and `"` escaped. Throws on text that cannot be quoted (use `literalOrQuoted`). */
export function quoted(text: string): string {
  if (CR_LF_NUL.test(text)) throw new Error('quoted(): CR, LF and NUL cannot be quoted');
  return `"${text.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

/**
 * What a NUL becomes in a literal: RFC 3501 §9 `literal = "{" number "}" CRLF *CHAR8` with CHAR8 = %x01-ff,
 * so a NUL may not go out raw (only a BINARY literal8 may carry one, and this server does not offer BINARY).
 * A space: one byte for one byte, so literal sizes, RFC822.SIZE, BODYSTRUCTURE sizes and partial offsets
 * stay what they are, and a header stays 7-bit (Dovecot uses 0x80, which makes a header 8-bit).
 */
export const NUL_REPLACEMENT = 0x20;

/** `{n}\r\n` + text, n in UTF-8 bytes. A NUL in `text` goes out as a space (see NUL_REPLACEMENT). */
export function literal(text: string): string {
  if (text.includes('\0')) text = text.replaceAll('\0', String.fromCharCode(NUL_REPLACEMENT));
  return `{${byteLength(text)}}\r\n${text}`;
}

/** Literal bytes with every NUL replaced by NUL_REPLACEMENT; chunks without one pass through uncopied. */
export async function* withoutNul(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    if (chunk.indexOf(0) < 0) {
      yield chunk;
      continue;
    }
    const copy = chunk.slice(); // stored bytes may be shared (blob caches): never change them in place
    for (let i = copy.indexOf(0); i >= 0; i = copy.indexOf(0, i + 1)) copy[i] = NUL_REPLACEMENT;
    yield copy;
  }
}

/** A quoted string when allowed (see `canQuote`), otherwise a literal. */
export function literalOrQuoted(text: string, options: RenderOptions = {}): string {
  return canQuote(text, options) ? quoted(text) : literal(text);
}

/** ASTRING-CHAR: any CHAR except CTL, SP, `(`, `)`, `{`, `%`, `*`, `"`, `\`. (`]` is allowed in an astring.) */
const ASTRING_ATOM = /^[^\x00-\x20\x7f-\uffff(){%*"\\]+$/;
/** ATOM-CHAR: as above, also without `]`. */
const ATOM = /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/;

/** True when `text` is a valid atom (non-empty, only ATOM-CHAR). */
export function isAtom(text: string): boolean {
  return ATOM.test(text);
}

/** An astring: the bare atom when possible (never the word NIL), else quoted or literal. */
export function astring(text: string, options: RenderOptions = {}): string {
  if (ASTRING_ATOM.test(text) && text.toUpperCase() !== 'NIL') return text;
  return literalOrQuoted(text, options);
}

/** An nstring: NIL for null, else quoted or literal. */
export function nstring(text: string | null | undefined, options: RenderOptions = {}): string {
  return text === null || text === undefined ? NIL : literalOrQuoted(text, options);
}

/**
 * A header-derived nstring (ENVELOPE fields, MIME parameters). Without UTF8=ACCEPT a value with 8-bit
 * characters (raw UTF-8 headers, RFC 6532) is downgraded to RFC 2047 encoded words, which every client decodes;
 * with UTF8=ACCEPT it goes out as UTF-8 (RFC 6855 §3).
 */
export function headerString(text: string | null | undefined, options: RenderOptions = {}): string {
  if (text === null || text === undefined) return NIL;
  if (!options.utf8 && NON_ASCII.test(text)) {
    try {
      text = libmime.encodeWords(text, 'B', 52, 'utf-8');
    } catch {
      // keep the text; it goes out as a literal
    }
  }
  return literalOrQuoted(text, options);
}

/** `(\Seen $Label)`; flags are atoms already validated on the way in. */
export function renderFlags(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}

// ---------------------------------------------------------------------------------------------------------
// ENVELOPE and BODYSTRUCTURE (RFC 3501 §7.4.2)
// ---------------------------------------------------------------------------------------------------------

function hostString(host: string | null, options: RenderOptions): string {
  if (host === null) return NIL;
  if (!options.utf8 && NON_ASCII.test(host)) {
    const ascii = domainToASCII(host);
    if (ascii) return literalOrQuoted(ascii, options);
  }
  return headerString(host, options);
}

function renderAddresses(list: EnvelopeAddress[] | null, options: RenderOptions): string {
  if (!list || list.length === 0) return NIL;
  const items = list.map(
    (address) =>
      `(${headerString(address.name, options)} ${headerString(address.adl, options)} ` +
      `${headerString(address.mailbox, options)} ${hostString(address.host, options)})`,
  );
  return `(${items.join('')})`;
}

/**
 * `(date subject from sender reply-to to cc bcc in-reply-to message-id)`. Values are the raw header values the
 * envelope holds (RFC 2047 words are left for the client to decode, as RFC 3501 intends).
 */
export function renderEnvelope(envelope: Envelope, options: RenderOptions = {}): string {
  return (
    '(' +
    [
      headerString(envelope.date, options),
      headerString(envelope.subject, options),
      renderAddresses(envelope.from, options),
      renderAddresses(envelope.sender, options),
      renderAddresses(envelope.replyTo, options),
      renderAddresses(envelope.to, options),
      renderAddresses(envelope.cc, options),
      renderAddresses(envelope.bcc, options),
      headerString(envelope.inReplyTo, options),
      headerString(envelope.messageId, options),
    ].join(' ') +
    ')'
  );
}

/** `("name" "value" ...)` or NIL when there are no parameters. */
function renderParams(params: Record<string, string> | null | undefined, options: RenderOptions): string {
  const entries = params ? Object.entries(params) : [];
  if (entries.length === 0) return NIL;
  return `(${entries.map(([name, value]) => `${headerString(name, options)} ${headerString(value, options)}`).join(' ')})`;
}

function renderDisposition(node: MimeNode, options: RenderOptions): string {
  if (!node.disposition) return NIL;
  return `(${headerString(node.disposition.type, options)} ${renderParams(node.disposition.params, options)})`;
}

function renderLanguage(node: MimeNode, options: RenderOptions): string {
  if (!node.language || node.language.length === 0) return NIL;
  return `(${node.language.map((language) => headerString(language, options)).join(' ')})`;
}

/** body-fields: params, id, description, encoding, size. */
function bodyFields(node: MimeNode, options: RenderOptions): string {
  return [
    renderParams(node.params, options),
    headerString(node.id, options),
    headerString(node.description, options),
    headerString(node.encoding || '7bit', options),
    String(node.size),
  ].join(' ');
}

function isEncapsulated(node: MimeNode, options: RenderOptions): boolean {
  if (!node.message || node.type !== 'message') return false;
  return node.subtype === 'rfc822' || (node.subtype === 'global' && options.utf8 === true);
}

/**
 * BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a node, per RFC 3501 §7.4.2 and the `body`
 * grammar of §9:
 * - multipart: `(child child ... "subtype")`, extended adds params, disposition, language, location;
 * - text/*: basic fields and the line count; message/rfc822 (and message/global after UTF8=ACCEPT): basic fields,
 *   the encapsulated ENVELOPE, its BODY[STRUCTURE] and the line count;
 * - anything else (and a multipart without children, a message/rfc822 without a parsed message): basic fields;
 *   extended adds md5, disposition, language, location.
 * Types, subtypes and parameter names are sent as stored (lowercased); sizes and lines are the node's.
 */
export function renderBodyStructure(node: MimeNode, extended: boolean, options: RenderOptions = {}): string {
  if (node.type === 'multipart' && node.children && node.children.length > 0) {
    const children = node.children.map((child) => renderBodyStructure(child, extended, options)).join('');
    let out = `(${children} ${headerString(node.subtype, options)}`;
    if (extended) {
      out += ` ${renderParams(node.params, options)} ${renderDisposition(node, options)} ${renderLanguage(node, options)} ${headerString(node.location, options)}`;
    }
    return `${out})`;
  }

  let out = `(${headerString(node.type, options)} ${headerString(node.subtype, options)} ${bodyFields(node, options)}`;
  if (isEncapsulated(node, options)) {
    const message = node.message!;
    out += ` ${renderEnvelope(message.envelope, options)} ${renderBodyStructure(message.root, extended, options)} ${node.lines}`;
  } else if (node.type === 'text') {
    out += ` ${node.lines}`;
  }
  if (extended) {
    out += ` ${headerString(node.md5, options)} ${renderDisposition(node, options)} ${renderLanguage(node, options)} ${headerString(node.location, options)}`;
  }
  return `${out})`;
}

// ---------------------------------------------------------------------------------------------------------
// Mailbox names
// ---------------------------------------------------------------------------------------------------------

const MUTF7_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

/** Decodes one `&...-` section's base64 (without the delimiters) into UTF-16 text, strictly. */
function decodeShifted(base64: string, name: string): string {
  let bits = 0;
  let bitCount = 0;
  const bytes: number[] = [];
  for (const char of base64) {
    const value = MUTF7_ALPHABET.indexOf(char);
    if (value < 0) throw new ImapSyntaxError(`Invalid modified UTF-7 in mailbox name: ${name}`);
    bits = (bits << 6) | value;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      bytes.push((bits >> bitCount) & 0xff);
      bits &= (1 << bitCount) - 1;
    }
  }
  // leftover bits must be padding: fewer than 6 and all zero; the bytes must form whole UTF-16 units
  if (bitCount >= 6 || bits !== 0 || bytes.length === 0 || bytes.length % 2 !== 0) {
    throw new ImapSyntaxError(`Invalid modified UTF-7 in mailbox name: ${name}`);
  }
  let text = '';
  for (let index = 0; index < bytes.length; index += 2) {
    const unit = (bytes[index]! << 8) | bytes[index + 1]!;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = index + 3 < bytes.length ? (bytes[index + 2]! << 8) | bytes[index + 3]! : -1;
      if (next < 0xdc00 || next > 0xdfff) throw new ImapSyntaxError(`Invalid UTF-16 in mailbox name: ${name}`);
      text += String.fromCharCode(unit, next);
      index += 2;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      throw new ImapSyntaxError(`Invalid UTF-16 in mailbox name: ${name}`);
    } else if (unit >= 0x20 && unit <= 0x7e) {
      // RFC 3501 §5.1.3: printable US-ASCII must represent itself
      throw new ImapSyntaxError(`Invalid modified UTF-7 in mailbox name (encoded ASCII): ${name}`);
    } else {
      text += String.fromCharCode(unit);
    }
  }
  return text;
}

/** Strict modified UTF-7 (RFC 3501 §5.1.3) → Unicode. Throws ImapSyntaxError on anything malformed. */
export function decodeModifiedUtf7(name: string): string {
  let out = '';
  let index = 0;
  while (index < name.length) {
    const code = name.charCodeAt(index);
    if (code < 0x20 || code > 0x7e) throw new ImapSyntaxError(`Invalid character in mailbox name: ${JSON.stringify(name)}`);
    if (code !== 0x26 /* & */) {
      out += name[index];
      index++;
      continue;
    }
    const end = name.indexOf('-', index + 1);
    if (end < 0) throw new ImapSyntaxError(`Unterminated modified UTF-7 in mailbox name: ${name}`);
    out += end === index + 1 ? '&' : decodeShifted(name.slice(index + 1, end), name);
    index = end + 1;
  }
  return out;
}

/** Unicode → modified UTF-7 (RFC 3501 §5.1.3). */
export function encodeModifiedUtf7(text: string): string {
  return utf7.imap.encode(text);
}

/**
 * A stored mailbox path as the client sees it: modified UTF-7, or UTF-8 as is after ENABLE UTF8=ACCEPT.
 * The caller renders the result with `astring`/`literalOrQuoted`.
 */
export function encodeMailboxName(path: string, utf8: boolean): string {
  return utf8 ? path : encodeModifiedUtf7(path);
}

/**
 * A mailbox name from the client → the stored (Unicode) path, INBOX normalized. Without UTF8=ACCEPT the name
 * must be valid modified UTF-7 (8-bit and malformed `&...-` are rejected); with it, names are UTF-8 taken
 * literally (RFC 6855 §3), NFC-normalized. Throws ImapSyntaxError.
 */
export function decodeMailboxName(name: string, utf8: boolean): string {
  let path: string;
  if (utf8) {
    if (/[\x00-\x1f\x7f]/.test(name) || name.includes('\ufffd')) throw new ImapSyntaxError(`Invalid mailbox name: ${JSON.stringify(name)}`);
    path = name.normalize('NFC');
  } else {
    path = decodeModifiedUtf7(name);
  }
  return normalizeMailboxPath(path);
}

/** True when `path` names the inbox (case-insensitive, RFC 3501 §5.1). */
export function isInbox(path: string): boolean {
  return path.toUpperCase() === 'INBOX';
}

/** `inbox` → `INBOX`, and `Inbox/Sub` → `INBOX/Sub` (the INBOX prefix of a child is normalized too). */
export function normalizeMailboxPath(path: string, delimiter = '/'): string {
  const slash = path.indexOf(delimiter);
  const head = slash < 0 ? path : path.slice(0, slash);
  return isInbox(head) ? `INBOX${slash < 0 ? '' : path.slice(slash)}` : path;
}

// ---------------------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------------------

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/**
 * INTERNALDATE as the wire wants it, quotes included: `"29-Nov-2026 12:00:00 +0000"`. The zone is UTC unless
 * `offsetMinutes` (east of UTC) is given, e.g. the offset an APPEND date-time carried.
 */
export function formatInternalDate(time: number, offsetMinutes = 0): string {
  const date = new Date(time + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const offset = Math.abs(offsetMinutes);
  return (
    `"${pad(date.getUTCDate())}-${MONTHS[date.getUTCMonth()]}-${pad(date.getUTCFullYear(), 4)} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ` +
    `${sign}${pad(Math.floor(offset / 60))}${pad(offset % 60)}"`
  );
}

function monthIndex(name: string): number {
  const index = MONTHS.findIndex((month) => month.toLowerCase() === name.toLowerCase());
  return index;
}

/** Date.UTC without its two-digit-year quirk (years 0–99 are not 1900–1999 here). */
function utc(year: number, month: number, day: number, hours = 0, minutes = 0, seconds = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(hours, minutes, seconds, 0);
  return date.getTime();
}

function validDay(year: number, month: number, day: number): boolean {
  if (month < 0 || day < 1 || day > 31) return false;
  return new Date(utc(year, month, day)).getUTCDate() === day;
}

const DATE_TIME = /^( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})$/;

/**
 * APPEND `date-time` (the value inside the quotes): `dd-Mon-yyyy hh:mm:ss +zzzz`, day as ` 1`, `1` or `01`.
 * Returns ms since the epoch; throws ImapSyntaxError when malformed or out of range.
 */
export function parseDateTime(value: string): number {
  const match = DATE_TIME.exec(value);
  if (!match) throw new ImapSyntaxError(`Invalid date-time: ${value}`);
  const day = Number(match[1]!.trim());
  const month = monthIndex(match[2]!);
  const year = Number(match[3]);
  const [hours, minutes, seconds] = [Number(match[4]), Number(match[5]), Number(match[6])];
  const zone = (Number(match[8]) * 60 + Number(match[9])) * (match[7] === '-' ? -1 : 1);
  if (!validDay(year, month, day) || hours > 23 || minutes > 59 || seconds > 60 || Number(match[9]) > 59) {
    throw new ImapSyntaxError(`Invalid date-time: ${value}`);
  }
  return utc(year, month, day, hours, minutes, Math.min(seconds, 59)) - zone * 60_000;
}

const SEARCH_DATE = /^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$/;

/** SEARCH `date` (`1-Feb-1994`, `01-Feb-1994`) → ms of 00:00 UTC that day. Throws ImapSyntaxError. */
export function parseSearchDate(value: string): number {
  const match = SEARCH_DATE.exec(value);
  if (!match) throw new ImapSyntaxError(`Invalid date: ${value}`);
  const day = Number(match[1]);
  const month = monthIndex(match[2]!);
  const year = Number(match[3]);
  if (!validDay(year, month, day)) throw new ImapSyntaxError(`Invalid date: ${value}`);
  return utc(year, month, day);
}
