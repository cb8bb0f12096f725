/// <reference path="./vendor.d.ts" />
/**
 * The IMAP wire codecs that are not tied to a connection, shared by the IMAP protocol module
 * (protocols/imap/render.ts and types.ts re-export them) and by plugins that extend IMAP (hooks/imap.ts): the
 * token shape a command's arguments arrive in, strings (quoted, literal, astring; RFC 3501 §4, §9; RFC 6855 for
 * UTF8=ACCEPT) and mailbox names (modified UTF-7, INBOX normalized). They live under hooks/ so that the
 * plugin-facing module never imports from protocols/ (floors point one way: protocols -> hooks -> storage).
 */
import utf7 from 'utf7';

/** A literal too large to keep as a string token (the APPEND message): read it as a stream, once. */
export interface LiteralBody {
  readonly size: number;
  /** The literal's bytes; may be called once. Memory-bounded (a large one read from the socket as it arrives). */
  stream(): AsyncIterable<Uint8Array>;
  /** A literal read while its command runs: why reading it failed (protocols/imap/literal-stream.ts). */
  failure?(): Error | null;
}

export type ImapToken =
  /** Atom, e.g. FLAGS, \Seen, 1:*, BODY.PEEK; `section` / `partial` for BODY[...]<a.b> forms. */
  | { type: 'atom'; value: string; section?: ImapToken[]; partial?: { start: number; length: number | null } }
  /** Quoted string or a literal kept in memory. `bytes` are exact; `value` is their UTF-8 decoding. */
  | { type: 'string'; value: string; bytes: Uint8Array; literal: boolean }
  | { type: 'nil' }
  | { type: 'list'; items: ImapToken[] }
  /** A large literal (only the APPEND message literal is delivered this way). */
  | { type: 'literal'; body: LiteralBody };

/**
 * Thrown by parsers for client syntax errors; the session answers `tag BAD <message>`. `status` 'NO' is for an
 * argument that is legal syntax the server still cannot take (a mailbox name that is not valid modified UTF-7):
 * the session answers `tag NO [code] <message>`.
 */
export class ImapSyntaxError extends Error {
  readonly code: string | null;
  readonly status: 'BAD' | 'NO';
  constructor(message: string, code: string | null = null, status: 'BAD' | 'NO' = 'BAD') {
    super(message);
    this.name = 'ImapSyntaxError';
    this.code = code;
    this.status = status;
  }
}

/** A mailbox name (an astring, so legal syntax) that is not valid modified UTF-7: NO [CANNOT], as Dovecot answers. */
function invalidName(message: string): ImapSyntaxError {
  return new ImapSyntaxError(message, 'CANNOT', 'NO');
}

// ---------------------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------------------

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
 * so a NUL may not go out raw in BODY[...] (only a literal8 may carry one: FETCH BINARY, protocols/imap/fetch-binary.ts).
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
    if (value < 0) throw invalidName(`Invalid modified UTF-7 in mailbox name: ${name}`);
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
    throw invalidName(`Invalid modified UTF-7 in mailbox name: ${name}`);
  }
  let text = '';
  for (let index = 0; index < bytes.length; index += 2) {
    const unit = (bytes[index]! << 8) | bytes[index + 1]!;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = index + 3 < bytes.length ? (bytes[index + 2]! << 8) | bytes[index + 3]! : -1;
      if (next < 0xdc00 || next > 0xdfff) throw invalidName(`Invalid UTF-16 in mailbox name: ${name}`);
      text += String.fromCharCode(unit, next);
      index += 2;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      throw invalidName(`Invalid UTF-16 in mailbox name: ${name}`);
    } else if (unit >= 0x20 && unit <= 0x7e) {
      // RFC 3501 §5.1.3: printable US-ASCII must represent itself
      throw invalidName(`Invalid modified UTF-7 in mailbox name (encoded ASCII): ${name}`);
    } else {
      text += String.fromCharCode(unit);
    }
  }
  return text;
}

/**
 * Strict modified UTF-7 (RFC 3501 §5.1.3) → Unicode. Throws ImapSyntaxError on anything malformed: status NO for a
 * malformed `&...-` section (legal astring, not a name), BAD for a character no mailbox name may hold.
 */
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
    if (end < 0) throw invalidName(`Unterminated modified UTF-7 in mailbox name: ${name}`);
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
