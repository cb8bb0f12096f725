/**
 * Argument syntax of MAIL FROM and RCPT TO (RFC 5321 §4.1.2 with the ESMTP parameters LMTP announces: SIZE,
 * BODY=7BIT|8BITMIME, SMTPUTF8). Addresses are checked only for shape here; RCPT resolves them to users.
 */

export interface PathArgument {
  /** The address inside the angle brackets; '' for the null path `<>`. */
  readonly address: string;
  /** ESMTP parameters, names upper-cased; a parameter without a value maps to ''. */
  readonly params: ReadonlyMap<string, string>;
}

export type ParseResult = { readonly ok: true; readonly value: PathArgument } | { readonly ok: false; readonly reply: string };

const FORBIDDEN = /[\u0000-\u001f\u007f<>\s]/;

/** Parses `FROM:<addr> PARAM=value ...` (keyword 'FROM') or `TO:<addr> ...` (keyword 'TO'). */
export function parsePath(keyword: 'FROM' | 'TO', rest: string): ParseResult {
  const match = new RegExp(`^${keyword}:\\s*<([^>]*)>(.*)$`, 'i').exec(rest.trim());
  if (!match) return { ok: false, reply: `501 5.5.4 Syntax: ${keyword === 'FROM' ? 'MAIL FROM:<address>' : 'RCPT TO:<address>'}` };
  let address = match[1]!;
  // source routes (RFC 5321 §4.1.2, "@a,@b:user@c") are accepted and ignored
  const route = /^@[^:]+:(.*)$/.exec(address);
  if (route) address = route[1]!;
  if (FORBIDDEN.test(address)) return { ok: false, reply: '553 5.1.3 Invalid address' };
  if (address && !/^[^@]+@[^@]+$/.test(address) && !(keyword === 'TO' && /^postmaster$/i.test(address))) {
    return { ok: false, reply: '553 5.1.3 Invalid address' };
  }
  if (keyword === 'TO' && address === '') return { ok: false, reply: '553 5.1.3 Invalid address' };
  const params = new Map<string, string>();
  for (const token of match[2]!.trim().split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    const name = (eq < 0 ? token : token.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(name)) return { ok: false, reply: `501 5.5.4 Invalid parameter ${name}` };
    params.set(name, eq < 0 ? '' : token.slice(eq + 1));
  }
  return { ok: true, value: { address, params } };
}

/** Splits a command line into its upper-case verb and the rest. */
export function splitCommand(line: string): { verb: string; rest: string } {
  const space = line.indexOf(' ');
  if (space < 0) return { verb: line.trim().toUpperCase(), rest: '' };
  return { verb: line.slice(0, space).toUpperCase(), rest: line.slice(space + 1) };
}
