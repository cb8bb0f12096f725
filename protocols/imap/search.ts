/**
 * SEARCH (RFC 3501 §6.4.4, RFC 5032 WITHIN, RFC 7162 MODSEQ, RFC 6855 UTF-8): the IMAP syntax parsed into the
 * protocol-neutral criteria tree (storage/search/criteria.ts). That is all IMAP holds: the evaluator is
 * storage/search/evaluate.ts (the mailbox index for flags, sizes, dates, UIDs and modseqs, the storage search port
 * for header and text keys), which the SEARCH command calls with the parsed query. `$` (SEARCHRES, RFC 5182) is
 * the saved result, turned into a UID key while parsing (the command parses just before it runs).
 */
import { Buffer } from 'node:buffer';
import iconv from 'iconv-lite';
import type { DateOp, SearchCriteria, SearchKey } from '../../storage/search/criteria.ts';
import { parseSearchDate } from './render.ts';
import { isSequenceSet, parseSequenceSet } from './sequence.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';

export interface SearchQuery extends SearchCriteria {
  /** CHARSET given by the client (as given), or null. */
  charset: string | null;
  /** MODSEQ was used: the response carries `(MODSEQ n)` and the command enables CONDSTORE (RFC 7162 §3.1.5). */
  usesModseq: boolean;
}

export interface ParseSearchOptions {
  /** UTF8=ACCEPT enabled: strings without CHARSET are UTF-8 (they are read as UTF-8 either way). */
  utf8: boolean;
  /**
   * SEARCHRES (RFC 5182): the UIDs `$` stands for (as a key, or after UID), read only when `$` is used; without it
   * `$` is a syntax error.
   */
  saved?: () => readonly number[];
}

/** Nesting limit for parentheses, NOT and OR chains: deeper input is refused, never a stack overflow. */
export const MAX_SEARCH_DEPTH = 64;
const MAX_NUMBER = 4294967295;

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const DATE_KEYS: Record<string, ['date' | 'sentdate', DateOp]> = {
  BEFORE: ['date', 'before'],
  ON: ['date', 'on'],
  SINCE: ['date', 'since'],
  SENTBEFORE: ['sentdate', 'before'],
  SENTON: ['sentdate', 'on'],
  SENTSINCE: ['sentdate', 'since'],
};

const HEADER_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);

class Parser {
  private readonly charset: string | null;
  private readonly saved: (() => readonly number[]) | undefined;
  usesModseq = false;

  constructor(charset: string | null, saved?: () => readonly number[]) {
    this.charset = charset;
    this.saved = saved;
  }

  /** `$`: the saved result's messages by UID (none when it is empty). */
  savedKey(): SearchKey {
    if (!this.saved) throw new ImapSyntaxError('$ needs SEARCHRES');
    const saved = this.saved();
    if (saved.length === 0) return { type: 'not', key: { type: 'all' } };
    return { type: 'uid', set: saved.map((uid) => ({ start: uid, end: uid })) };
  }

  /** A string argument (astring; `NIL` is the string "NIL"): decoded from the CHARSET when one was given. */
  string(token: ImapToken | undefined, what: string): string {
    if (!token) throw new ImapSyntaxError(`${what} expects a string`);
    if (token.type === 'nil') return 'NIL';
    if (token.type === 'string') {
      if (!this.charset) return token.value;
      return iconv.decode(Buffer.from(token.bytes.buffer, token.bytes.byteOffset, token.bytes.byteLength), this.charset);
    }
    if (token.type === 'atom' && !token.section && !token.partial) return token.value;
    throw new ImapSyntaxError(`${what} expects a string`);
  }

  atom(token: ImapToken | undefined, what: string): string {
    if (!token || token.type !== 'atom' || token.section || token.partial) throw new ImapSyntaxError(`${what} expects an atom`);
    return token.value;
  }

  number(token: ImapToken | undefined, what: string, max = MAX_NUMBER, allowZero = true): number {
    const text = this.atom(token, what);
    if (!/^[0-9]+$/.test(text)) throw new ImapSyntaxError(`${what} expects a number`);
    const value = Number(text);
    if (value > max || (!allowZero && value === 0)) throw new ImapSyntaxError(`${what}: number out of range`);
    return value;
  }

  /** Parses keys until the end of `tokens`; more than one key means AND. */
  keys(tokens: readonly ImapToken[], depth: number): SearchKey {
    if (tokens.length === 0) throw new ImapSyntaxError('Missing search criteria');
    const keys: SearchKey[] = [];
    let position = 0;
    while (position < tokens.length) {
      const [key, next] = this.key(tokens, position, depth);
      keys.push(key);
      position = next;
    }
    return keys.length === 1 ? keys[0]! : { type: 'and', keys };
  }

  /** One key starting at tokens[position]; returns it and the position after it. */
  key(tokens: readonly ImapToken[], position: number, depth: number): [SearchKey, number] {
    if (depth > MAX_SEARCH_DEPTH) throw new ImapSyntaxError('Search criteria nested too deeply');
    const token = tokens[position];
    if (!token) throw new ImapSyntaxError('Missing search key');
    if (token.type === 'list') return [this.keys(token.items, depth + 1), position + 1];
    const raw = this.atom(token, 'Search key');
    const name = raw.toUpperCase();
    const arg = tokens[position + 1];
    if (FLAG_KEYS[name]) {
      const [flag, present] = FLAG_KEYS[name]!;
      return [{ type: 'flag', flag, present }, position + 1];
    }
    if (DATE_KEYS[name]) {
      const [type, op] = DATE_KEYS[name]!;
      return [{ type, op, day: parseSearchDate(this.string(arg, name)) }, position + 2];
    }
    if (HEADER_KEYS.has(name)) return [{ type: 'header', field: name.toLowerCase(), value: this.string(arg, name) }, position + 2];
    switch (name) {
      case 'ALL':
        return [{ type: 'all' }, position + 1];
      case 'RECENT':
        return [{ type: 'recent', present: true }, position + 1];
      case 'OLD':
        return [{ type: 'recent', present: false }, position + 1];
      case 'NEW':
        return [{ type: 'and', keys: [{ type: 'recent', present: true }, { type: 'flag', flag: '\\Seen', present: false }] }, position + 1];
      case 'KEYWORD':
      case 'UNKEYWORD': {
        const flag = this.string(arg, name);
        if (!flag || /[\x00-\x20\x7f(){%*"\\\]]/.test(flag)) throw new ImapSyntaxError(`${name} expects a keyword`);
        return [{ type: 'flag', flag, present: name === 'KEYWORD' }, position + 2];
      }
      case 'LARGER':
        return [{ type: 'larger', size: this.number(arg, name, Number.MAX_SAFE_INTEGER) }, position + 2];
      case 'SMALLER':
        return [{ type: 'smaller', size: this.number(arg, name, Number.MAX_SAFE_INTEGER) }, position + 2];
      case 'OLDER':
      case 'YOUNGER':
        return [{ type: name === 'OLDER' ? 'older' : 'younger', seconds: this.number(arg, name, MAX_NUMBER, false) }, position + 2];
      case 'BODY':
        return [{ type: 'body', value: this.string(arg, name) }, position + 2];
      case 'TEXT':
        return [{ type: 'text', value: this.string(arg, name) }, position + 2];
      case 'HEADER': {
        const field = this.string(arg, name);
        if (!field || /[\x00-\x20:\x7f]/.test(field)) throw new ImapSyntaxError('HEADER expects a field name');
        return [{ type: 'header', field: field.toLowerCase(), value: this.string(tokens[position + 2], name) }, position + 3];
      }
      case 'UID': {
        const set = this.atom(arg, name);
        return [set === '$' ? this.savedKey() : { type: 'uid', set: parseSequenceSet(set) }, position + 2];
      }
      case '$':
        return [this.savedKey(), position + 1];
      case 'NOT': {
        const [key, next] = this.key(tokens, position + 1, depth + 1);
        return [{ type: 'not', key }, next];
      }
      case 'OR': {
        const [left, middle] = this.key(tokens, position + 1, depth + 1);
        const [right, next] = this.key(tokens, middle, depth + 1);
        return [{ type: 'or', left, right }, next];
      }
      case 'MODSEQ': {
        // MODSEQ [entry-name entry-type-req] mod-sequence-valzer; the entry is accepted and ignored
        let next = position + 1;
        if (tokens[next]?.type === 'string') {
          const type = this.atom(tokens[next + 1], 'MODSEQ entry type').toLowerCase();
          if (type !== 'priv' && type !== 'shared' && type !== 'all') throw new ImapSyntaxError('MODSEQ entry type must be priv, shared or all');
          next += 2;
        }
        this.usesModseq = true;
        return [{ type: 'modseq', modseq: this.number(tokens[next], name, Number.MAX_SAFE_INTEGER) }, next + 1];
      }
    }
    if (isSequenceSet(raw)) return [{ type: 'seq', set: parseSequenceSet(raw) }, position + 1];
    throw new ImapSyntaxError(`Unknown search key ${raw}`);
  }
}

/**
 * SEARCH arguments (after the command name) → query. `CHARSET x` may come first; an unknown charset throws
 * ImapSyntaxError with code 'BADCHARSET' (answer `NO [BADCHARSET (UTF-8 US-ASCII ...)]`). Other errors are
 * syntax errors (BAD). `RETURN (...)` (ESEARCH) is read by the SEARCH command (cmd-search.ts, hooks/imap-esearch.ts) before this.
 */
export function parseSearch(args: readonly ImapToken[], options: ParseSearchOptions): SearchQuery {
  void options.utf8; // strings are read as UTF-8 without CHARSET in both modes (US-ASCII is a subset)
  let tokens = args;
  let charset: string | null = null;
  const first = tokens[0];
  if (first && first.type === 'atom' && first.value.toUpperCase() === 'CHARSET') {
    const token = tokens[1];
    if (!token || (token.type !== 'atom' && token.type !== 'string') || (token.type === 'atom' && (token.section || token.partial))) {
      throw new ImapSyntaxError('CHARSET expects a charset name');
    }
    charset = token.value;
    if (!iconv.encodingExists(charset)) throw new ImapSyntaxError(`Unsupported charset ${charset}`, 'BADCHARSET');
    tokens = tokens.slice(2);
  }
  const parser = new Parser(charset, options.saved);
  const key = parser.keys(tokens, 0);
  return { key, charset, usesModseq: parser.usesModseq };
}
