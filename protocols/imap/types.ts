/**
 * Shared IMAP wire types: what the command reader produces and what the data modules (fetch, search,
 * render) consume. Pure types, no behaviour. The token shape and the syntax error live in hooks/imap-wire.ts
 * (plugins that extend IMAP see them too) and are re-exported here.
 */
import type { ImapToken } from '../../hooks/imap-wire.ts';

export type { ImapToken, LiteralBody } from '../../hooks/imap-wire.ts';
export { ImapSyntaxError } from '../../hooks/imap-wire.ts';

export interface ImapCommand {
  tag: string;
  /** Upper-cased command name; "UID FETCH", "UID STORE", ... for UID commands. */
  verb: string;
  args: ImapToken[];
}

/**
 * A piece of a response: text (already IMAP-encoded, no trailing CRLF unless stated), or a literal whose
 * bytes are streamed to the socket (`{size}\r\n` + bytes) so a 20 MB BODY[] is never buffered whole; `binary`: a
 * literal8 (`~{size}`, RFC 3516), which may carry NULs.
 */
export type ResponsePiece = string | { literal: AsyncIterable<Uint8Array>; size: number; binary?: boolean };
