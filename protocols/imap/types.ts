/**
 * Shared IMAP wire types: what the command reader produces and what the data modules (fetch, search,
 * render) consume. Pure types, no behaviour.
 */

/** A literal too large to keep as a string token (the APPEND message): read it as a stream, once. */
export interface LiteralBody {
  readonly size: number;
  /** The literal's bytes; may be called once. Memory-bounded (a large one read from the socket as it arrives). */
  stream(): AsyncIterable<Uint8Array>;
  /** A literal read while its command runs: why reading it failed (literal-stream.ts). */
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

export interface ImapCommand {
  tag: string;
  /** Upper-cased command name; "UID FETCH", "UID STORE", ... for UID commands. */
  verb: string;
  args: ImapToken[];
}

/**
 * A piece of a response: text (already IMAP-encoded, no trailing CRLF unless stated), or a literal whose
 * bytes are streamed to the socket (`{size}\r\n` + bytes) so a 20 MB BODY[] is never buffered whole.
 */
export type ResponsePiece = string | { literal: AsyncIterable<Uint8Array>; size: number };

/** Thrown by parsers for client syntax errors; the session answers `tag BAD <message>`. */
export class ImapSyntaxError extends Error {
  readonly code: string | null;
  constructor(message: string, code: string | null = null) {
    super(message);
    this.name = 'ImapSyntaxError';
    this.code = code;
  }
}
