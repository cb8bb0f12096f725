/**
 * Reading command arguments out of tokens: astrings, mailbox names, flag lists, numbers. Every helper throws
 * ImapSyntaxError (the session answers BAD) on anything the grammar does not allow.
 */
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';
import { decodeMailboxName } from './render.ts';

/** Arguments consumed left to right. */
export class Args {
  readonly #tokens: ImapToken[];
  #index = 0;

  constructor(tokens: ImapToken[]) {
    this.#tokens = tokens;
  }

  get remaining(): number {
    return this.#tokens.length - this.#index;
  }

  peek(): ImapToken | undefined {
    return this.#tokens[this.#index];
  }

  next(what: string): ImapToken {
    const token = this.#tokens[this.#index++];
    if (!token) throw new ImapSyntaxError(`Missing ${what}`);
    return token;
  }

  rest(): ImapToken[] {
    const out = this.#tokens.slice(this.#index);
    this.#index = this.#tokens.length;
    return out;
  }

  end(): void {
    if (this.#index < this.#tokens.length) throw new ImapSyntaxError('Too many arguments');
  }

  astring(what: string): string {
    return astring(this.next(what), what);
  }

  atom(what: string): string {
    const token = this.next(what);
    if (token.type !== 'atom' || token.section) throw new ImapSyntaxError(`Invalid ${what}`);
    return token.value;
  }

  /** A mailbox name, decoded to the stored path (INBOX normalized). */
  mailbox(utf8: boolean): string {
    return mailboxName(this.next('mailbox name'), utf8);
  }
}

/** atom / quoted / literal as text. NIL as an astring is the mailbox named "NIL". */
export function astring(token: ImapToken, what: string): string {
  if (token.type === 'string') return token.value;
  if (token.type === 'atom' && !token.section) return token.value;
  if (token.type === 'nil') return 'NIL';
  throw new ImapSyntaxError(`Invalid ${what}`);
}

/** Mailbox name → stored path (modified UTF-7 decoded unless UTF8=ACCEPT). */
export function mailboxName(token: ImapToken, utf8: boolean): string {
  const raw = astring(token, 'mailbox name');
  if (token.type === 'string' && token.literal && !utf8 && /[^\x00-\x7f]/.test(raw)) throw new ImapSyntaxError('Mailbox name must be modified UTF-7');
  return decodeMailboxName(raw, utf8);
}

/**
 * The name as the client wrote it when it is not in Unicode normalization form C (IMAP4rev2, RFC 9051 §5.1: such
 * a name is taken as its NFC form, and SELECT / CREATE tell the client through LIST's OLDNAME), else null.
 */
export function denormalizedName(token: ImapToken | undefined, utf8: boolean): string | null {
  if (!utf8 || !token || (token.type !== 'string' && token.type !== 'atom')) return null;
  const raw = token.value;
  return raw !== raw.normalize('NFC') ? raw : null;
}

export function number(token: ImapToken | undefined, what: string, max = 4294967295): number {
  if (!token || token.type !== 'atom' || !/^\d{1,20}$/.test(token.value)) throw new ImapSyntaxError(`Invalid ${what}`);
  const value = Number(token.value);
  if (!Number.isSafeInteger(value) || value > max) throw new ImapSyntaxError(`Invalid ${what}`);
  return value;
}

export function list(token: ImapToken | undefined, what: string): ImapToken[] {
  if (!token || token.type !== 'list') throw new ImapSyntaxError(`Invalid ${what}`);
  return token.items;
}

const SYSTEM_FLAGS = new Map(['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', '\\Recent'].map((f) => [f.toLowerCase(), f]));
const KEYWORD = /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/;

/**
 * A flag: system flags in canonical case (`\seen` → `\Seen`), keywords as given (`NIL` too). Unknown `\Xxx` flags are
 * refused (RFC 3501 flag-extension; none are supported here).
 */
export function flag(token: ImapToken): string {
  if (token.type === 'nil') return 'NIL'; // NIL is an atom: the keyword "NIL" (the tokenizer reads it as nil)
  if (token.type !== 'atom' || token.section) throw new ImapSyntaxError('Invalid flag');
  const value = token.value;
  if (value.startsWith('\\')) {
    const known = SYSTEM_FLAGS.get(value.toLowerCase());
    if (!known) throw new ImapSyntaxError(`Unknown system flag ${value.slice(0, 40)}`);
    return known;
  }
  if (!KEYWORD.test(value) || value.length > 128) throw new ImapSyntaxError('Invalid keyword');
  return value;
}

/** `(\Seen $Label)` or, where the grammar allows it (STORE), a single flag or a space-separated run. */
export function flagList(tokens: ImapToken[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const token of tokens) {
    const value = flag(token);
    const key = value.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(value);
  }
  return out;
}
