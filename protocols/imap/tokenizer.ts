/**
 * The IMAP command grammar's lexical layer: turns one command, line segment by line segment, into ImapTokens.
 * A line that ends in a literal marker (`{n}`, `{n+}`, `~{n}`) pauses the tokenizer; the reader fetches the
 * literal, hands it back with `pushLiteral`, and feeds the next line segment. Pure: no I/O.
 */
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';

export interface LiteralRequest {
  size: number;
  /** `{n}`: the client waits for a continuation request. `{n+}` (LITERAL+): it doesn't. */
  sync: boolean;
  /** `~{n}`: literal8 (RFC 3516 / RFC 6855 APPEND UTF8). */
  binary: boolean;
}

type Frame =
  | { kind: 'root'; items: ImapToken[] }
  | { kind: 'list'; items: ImapToken[] }
  | { kind: 'section'; items: ImapToken[]; atom: Extract<ImapToken, { type: 'atom' }> };

const SP = 0x20;
const LPAREN = 0x28;
const RPAREN = 0x29;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LT = 0x3c;

/** Atoms after which `[` opens a section: BODY[...], BODY.PEEK[...], BINARY[...] (RFC 3501, RFC 3516). */
const SECTION_ATOMS = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)$/i;
const LITERAL_MARKER = /^(~?)\{(\d{1,12})(\+?)\}$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ImapSyntaxError('Invalid UTF-8 in command');
  }
}

function isCtl(c: number): boolean {
  return c < 0x20 || c === 0x7f;
}

/** Characters that end an atom (the section closer `]` only inside a section). */
function endsAtom(c: number, inSection: boolean): boolean {
  return c === SP || c === LPAREN || c === RPAREN || c === DQUOTE || c === LBRACE || isCtl(c) || (inSection && c === RBRACKET);
}

export class CommandTokenizer {
  readonly #stack: Frame[] = [{ kind: 'root', items: [] }];
  /** Most tokens (atoms, strings, literals, lists; nested ones included) one command may have. */
  readonly #maxTokens: number;
  #tokens = 0;

  constructor(options: { maxTokens?: number } = {}) {
    this.#maxTokens = options.maxTokens ?? Infinity;
  }

  /**
   * Counts one more token. Every per-command loop over arguments (search keys, fetch items, flags, list nesting)
   * is bounded by this count (imap.maxArguments), checked while tokenizing.
   */
  #count(): void {
    if (++this.#tokens > this.#maxTokens) throw new ImapSyntaxError(`Too many arguments (at most ${this.#maxTokens})`, 'LIMIT');
  }
  /** After the verb, a token or a literal, the next byte must be a space, `)` or `]`, or the line must end. */
  #needSeparator = true;

  /** Top-level arguments so far. */
  get root(): ImapToken[] {
    return this.#stack[0]!.items;
  }

  /** Nesting depth: 0 at top level, 1 inside one list, ... */
  get depth(): number {
    return this.#stack.length - 1;
  }

  /** The token list currently being filled (the innermost open list). */
  get current(): ImapToken[] {
    return this.#stack[this.#stack.length - 1]!.items;
  }

  /** Arguments when the command is complete; throws when a list or section is still open. */
  finish(): ImapToken[] {
    if (this.#stack.length > 1) throw new ImapSyntaxError(this.#top().kind === 'section' ? 'Unterminated section' : 'Unterminated list');
    return this.root;
  }

  #top(): Frame {
    return this.#stack[this.#stack.length - 1]!;
  }

  /** Adds a literal the reader fetched after `feed` asked for it. */
  pushLiteral(token: ImapToken): void {
    this.#count();
    this.#top().items.push(token);
    this.#needSeparator = true;
  }

  /**
   * Tokenizes one line segment (without CRLF), starting at `offset` (the first call: right after the verb).
   * Returns the literal the segment ends with,
   * or null when the segment ends the command (the caller then calls `finish`).
   */
  feed(line: Uint8Array, offset = 0): LiteralRequest | null {
    let i = offset;
    const n = line.length;
    let needSeparator = this.#needSeparator;
    this.#needSeparator = false;
    while (i < n) {
      const c = line[i]!;
      const frame = this.#top();
      if (c === SP) {
        needSeparator = false;
        i++;
        continue;
      }
      if (c === RPAREN) {
        if (frame.kind !== 'list') throw new ImapSyntaxError('Unexpected )');
        this.#stack.pop();
        this.#top().items.push({ type: 'list', items: frame.items });
        needSeparator = true;
        i++;
        continue;
      }
      if (c === RBRACKET && frame.kind === 'section') {
        this.#stack.pop();
        frame.atom.section = frame.items;
        i = this.#partial(line, i + 1, frame.atom);
        needSeparator = true;
        continue;
      }
      if (needSeparator) throw new ImapSyntaxError('Missing space between arguments');
      if (c === LPAREN) {
        this.#count();
        this.#stack.push({ kind: 'list', items: [] });
        i++;
        continue;
      }
      if (c === DQUOTE) {
        this.#count();
        i = this.#quoted(line, i + 1, frame.items);
        needSeparator = true;
        continue;
      }
      if (c === LBRACE || (c === 0x7e && line[i + 1] === LBRACE)) {
        const match = LITERAL_MARKER.exec(decodeAscii(line.subarray(i)));
        if (!match) throw new ImapSyntaxError('Invalid literal');
        return { size: Number(match[2]), sync: match[3] !== '+', binary: match[1] === '~' };
      }
      this.#count();
      i = this.#atom(line, i, frame);
      // right after `BODY[` the section's first token follows without a space
      needSeparator = this.#top() === frame;
    }
    return null;
  }

  #quoted(line: Uint8Array, start: number, into: ImapToken[]): number {
    const out: number[] = [];
    let i = start;
    for (;;) {
      if (i >= line.length) throw new ImapSyntaxError('Unterminated quoted string');
      const c = line[i]!;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const next = line[i + 1];
        if (next !== DQUOTE && next !== BACKSLASH) throw new ImapSyntaxError('Invalid escape in quoted string');
        out.push(next);
        i += 2;
        continue;
      }
      if (c === 0 || c === 0x0d || c === 0x0a) throw new ImapSyntaxError('Invalid character in quoted string');
      out.push(c);
      i++;
    }
    const bytes = Uint8Array.from(out);
    into.push({ type: 'string', value: decode(bytes), bytes, literal: false });
    return i + 1;
  }

  #atom(line: Uint8Array, start: number, frame: Frame): number {
    const inSection = frame.kind === 'section';
    let i = start;
    while (i < line.length && !endsAtom(line[i]!, inSection)) {
      if (line[i] === LBRACKET && !inSection && SECTION_ATOMS.test(decodeAscii(line.subarray(start, i)))) break;
      i++;
    }
    if (i === start) {
      const c = line[i]!;
      throw new ImapSyntaxError(isCtl(c) ? 'Invalid character in command' : `Unexpected ${String.fromCharCode(c)}`);
    }
    if (i < line.length && isCtl(line[i]!)) throw new ImapSyntaxError('Invalid character in command');
    const value = decode(line.subarray(start, i));
    if (i < line.length && line[i] === LBRACKET && !inSection) {
      const atom: Extract<ImapToken, { type: 'atom' }> = { type: 'atom', value };
      frame.items.push(atom);
      this.#stack.push({ kind: 'section', items: [], atom });
      return i + 1;
    }
    if (!inSection && value.toUpperCase() === 'NIL') frame.items.push({ type: 'nil' });
    else frame.items.push({ type: 'atom', value });
    return i;
  }

  /** `<start>` or `<start.length>` right after a section's `]`. */
  #partial(line: Uint8Array, start: number, atom: Extract<ImapToken, { type: 'atom' }>): number {
    if (line[start] !== LT) return start;
    const close = line.indexOf(0x3e, start);
    if (close < 0) throw new ImapSyntaxError('Unterminated partial range');
    const match = /^(\d{1,10})(?:\.(\d{1,10}))?$/.exec(decodeAscii(line.subarray(start + 1, close)));
    if (!match) throw new ImapSyntaxError('Invalid partial range');
    const length = match[2] === undefined ? null : Number(match[2]);
    if (length === 0) throw new ImapSyntaxError('Invalid partial range');
    atom.partial = { start: Number(match[1]), length };
    return close + 1;
  }
}

function decodeAscii(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length && i < 64; i++) s += String.fromCharCode(bytes[i]!);
  return bytes.length > 64 ? s + '\u0000' : s;
}
