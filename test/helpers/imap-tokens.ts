/** Builders for IMAP reader tokens and a flattener for response pieces, for the IMAP data-module tests. */
import type { ImapToken, ResponsePiece } from '../../protocols/imap/types.ts';

export function atom(value: string, section?: ImapToken[], partial?: { start: number; length: number | null }): ImapToken {
  const token: ImapToken = { type: 'atom', value };
  if (section) token.section = section;
  if (partial) token.partial = partial;
  return token;
}

export function list(...items: ImapToken[]): ImapToken {
  return { type: 'list', items };
}

/** A quoted string (or an in-memory literal with `literal: true`) with the given bytes. */
export function str(value: string | Uint8Array, literal = false): ImapToken {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  const text = typeof value === 'string' ? value : new TextDecoder().decode(value);
  return { type: 'string', value: text, bytes, literal };
}

/** Space-separated atoms, e.g. `atoms('FLAGS UID')`. */
export function atoms(text: string): ImapToken[] {
  return text.split(' ').map((value) => atom(value));
}

/**
 * Writes pieces the way a session would (literal → `{size}\r\n` + bytes), checking every literal yields exactly
 * `size` bytes. Returns the bytes decoded as latin1 so that any byte survives the comparison.
 */
export async function flatten(pieces: ResponsePiece[]): Promise<string> {
  let out = '';
  const latin1 = new TextDecoder('latin1');
  const encoder = new TextEncoder();
  for (const piece of pieces) {
    if (typeof piece === 'string') {
      out += latin1.decode(encoder.encode(piece));
      continue;
    }
    let size = 0;
    let body = '';
    for await (const chunk of piece.literal) {
      size += chunk.length;
      body += latin1.decode(chunk);
    }
    if (size !== piece.size) throw new Error(`literal announced ${piece.size} bytes, yielded ${size}`);
    out += `{${piece.size}}\r\n${body}`;
  }
  return out;
}
