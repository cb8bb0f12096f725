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
import type { Envelope, EnvelopeAddress, MimeNode } from '../../storage/ports.ts';
import { ImapSyntaxError } from './types.ts';
import { isInbox, literalOrQuoted, NIL } from '../../hooks/imap-wire.ts';
import type { RenderOptions } from '../../hooks/imap-wire.ts';

// strings and mailbox names live in hooks/imap-wire.ts (plugins use them too); re-exported for the IMAP modules
export { NIL, MAX_QUOTED_LENGTH, byteLength, canQuote, quoted, NUL_REPLACEMENT, literal, withoutNul, literalOrQuoted, isAtom, astring, decodeModifiedUtf7, encodeModifiedUtf7, encodeMailboxName, decodeMailboxName, isInbox, normalizeMailboxPath } from '../../hooks/imap-wire.ts';
export type { RenderOptions } from '../../hooks/imap-wire.ts';

const NON_ASCII = /[^\x00-\x7f]/;

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
