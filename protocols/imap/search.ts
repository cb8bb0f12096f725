/**
 * SEARCH (RFC 3501 §6.4.4, RFC 5032 WITHIN, RFC 7162 MODSEQ, RFC 6855 UTF-8): the criteria parsed into a tree,
 * then evaluated against a mailbox index.
 *
 * Evaluation is two-pass so that the hot path (`SEARCH UNSEEN`, `UID SEARCH 1:* NOT DELETED`) never loads a
 * message: every key that the index answers (flags, size, internal date, UID, sequence number, modseq) is
 * evaluated first with three-valued logic; only messages whose result still depends on headers or text are
 * loaded, cheapest data first, and only as far as AND / OR short-circuiting needs.
 *
 * Conventions (documented choices):
 * - BEFORE / ON / SINCE compare the internal date's calendar day in UTC.
 * - SENTBEFORE / SENTON / SENTSINCE compare the calendar date written in the Date header, ignoring time and zone
 *   (RFC 3501); a message without a parseable Date header uses its internal date.
 * - String matching is a case-insensitive substring test on decoded text (NFC, lowercased).
 * - FROM, TO, CC, BCC, SUBJECT and HEADER match the RFC 2047-decoded header values; BODY matches the stored
 *   search text (decoded text parts; it also holds From/To/Cc/Subject and file names); TEXT matches the decoded
 *   header fields or the search text.
 */
import { Buffer } from 'node:buffer';
import iconv from 'iconv-lite';
import { decodeWords, parseHeaderBlock } from '../../storage/mime/index.ts';
import type { HeaderField } from '../../storage/mime/index.ts';
import type { Id, MessageIndexEntry, MessageRecord, StoragePorts } from '../../storage/ports.ts';
import { readAll, readHeader } from '../../storage/mime/reassemble.ts';
import { parseSearchDate } from './render.ts';
import { isSequenceSet, parseSequenceSet, sequencePredicate } from './sequence.ts';
import type { SequenceSet } from './sequence.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';
import { TimeSlice } from '../time-slice.ts';

export type DateOp = 'before' | 'on' | 'since';

export type SearchKey =
  | { type: 'all' }
  /** A system flag (`\Seen`) or keyword; `present: false` for UNSEEN, UNKEYWORD, … */
  | { type: 'flag'; flag: string; present: boolean }
  | { type: 'recent'; present: boolean }
  | { type: 'larger'; size: number }
  | { type: 'smaller'; size: number }
  /** BEFORE / ON / SINCE: `day` is 00:00 UTC of the date. */
  | { type: 'date'; op: DateOp; day: number }
  /** SENTBEFORE / SENTON / SENTSINCE. */
  | { type: 'sentdate'; op: DateOp; day: number }
  /** OLDER / YOUNGER (RFC 5032), in seconds. */
  | { type: 'older' | 'younger'; seconds: number }
  | { type: 'uid'; set: SequenceSet }
  | { type: 'seq'; set: SequenceSet }
  | { type: 'modseq'; modseq: number }
  /** FROM/TO/CC/BCC/SUBJECT (field lowercased) and HEADER. */
  | { type: 'header'; field: string; value: string }
  | { type: 'body'; value: string }
  | { type: 'text'; value: string }
  | { type: 'not'; key: SearchKey }
  | { type: 'or'; left: SearchKey; right: SearchKey }
  | { type: 'and'; keys: SearchKey[] };

export interface SearchQuery {
  key: SearchKey;
  /** CHARSET given by the client (as given), or null. */
  charset: string | null;
  /** MODSEQ was used: the response carries `(MODSEQ n)` and the command enables CONDSTORE (RFC 7162 §3.1.5). */
  usesModseq: boolean;
}

export interface ParseSearchOptions {
  /** UTF8=ACCEPT enabled: strings without CHARSET are UTF-8 (they are read as UTF-8 either way). */
  utf8: boolean;
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
  usesModseq = false;

  constructor(charset: string | null) {
    this.charset = charset;
  }

  /** A string argument (astring): decoded from the CHARSET when one was given. */
  string(token: ImapToken | undefined, what: string): string {
    if (!token) throw new ImapSyntaxError(`${what} expects a string`);
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
      case 'UID':
        return [{ type: 'uid', set: parseSequenceSet(this.atom(arg, name)) }, position + 2];
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
 * syntax errors (BAD). `RETURN (...)` (ESEARCH) is not supported and is a syntax error.
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
  const parser = new Parser(charset);
  const key = parser.keys(tokens, 0);
  return { key, charset, usesModseq: parser.usesModseq };
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------

export interface SearchContext {
  /** The mailbox index in UID order; position i is message sequence number i + 1. */
  entries: readonly MessageIndexEntry[];
  /** UIDs this session sees as \Recent. */
  recent: { has(uid: number): boolean };
  /** Current time in ms (OLDER / YOUNGER); defaults to Date.now(). */
  now?: number;
  /** Not needed by the current keys; accepted so callers can pass their whole loader set. */
  loadRecord?(uid: number): Promise<MessageRecord | null>;
  /** Decoded searchable text of a message (MessagesPort.searchText). */
  loadSearchText(uid: number): Promise<string | null>;
  /** The raw header block of a message: its bytes (each field's charset is detected on its own), or text. */
  loadHeaders(uid: number): Promise<Uint8Array | string | null>;
}

export type SearchLoaders = Required<Pick<SearchContext, 'loadRecord' | 'loadSearchText' | 'loadHeaders'>>;

/**
 * The loaders over the storage ports for one mailbox, each record read at most once: what IMAP SEARCH and the
 * HTTP search pass to `search()`.
 */
export function storageLoaders(storage: Pick<StoragePorts, 'messages' | 'blobs'>, mailboxId: Id): SearchLoaders {
  const records = new Map<number, Promise<MessageRecord | null>>();
  const loadRecord = (uid: number): Promise<MessageRecord | null> => {
    let found = records.get(uid);
    if (!found) records.set(uid, (found = storage.messages.get(mailboxId, uid)));
    return found;
  };
  return {
    loadRecord,
    async loadSearchText(uid) {
      const record = await loadRecord(uid);
      return record ? storage.messages.searchText(record.id) : null;
    },
    async loadHeaders(uid) {
      const record = await loadRecord(uid);
      const content = record ? await storage.messages.content(record.id) : null;
      if (!record || !content) return null;
      return readAll(readHeader(content, storage.blobs, record.mime));
    },
  };
}

export interface SearchResult {
  /** Matching UIDs, ascending. */
  uids: number[];
  /** Highest modseq among the matches when the query used MODSEQ and something matched (RFC 7162), else null. */
  highestModseq: number | null;
}

const DAY = 86_400_000;

interface Candidate {
  index: number;
  entry: MessageIndexEntry;
}

interface Env {
  maxUid: number;
  count: number;
  now: number;
  recent: { has(uid: number): boolean };
  predicates: Map<SearchKey, (value: number) => boolean>;
}

function compareDay(op: DateOp, day: number, target: number): boolean {
  if (op === 'before') return day < target;
  if (op === 'on') return day === target;
  return day >= target;
}

function hasFlag(flags: readonly string[], flag: string): boolean {
  const wanted = flag.toLowerCase();
  return flags.some((item) => item.toLowerCase() === wanted);
}

/** Cost class of a key: 0 = index only, 1 = headers, 2 = search text. */
function cost(key: SearchKey): number {
  switch (key.type) {
    case 'header':
    case 'sentdate':
      return 1;
    case 'body':
    case 'text':
      return 2;
    case 'not':
      return cost(key.key);
    case 'or':
      return Math.max(cost(key.left), cost(key.right));
    case 'and':
      return key.keys.reduce((most, child) => Math.max(most, cost(child)), 0);
    default:
      return 0;
  }
}

function predicate(env: Env, key: SearchKey & { set: SequenceSet }, max: number): (value: number) => boolean {
  let test = env.predicates.get(key);
  if (!test) {
    test = sequencePredicate(key.set, max);
    env.predicates.set(key, test);
  }
  return test;
}

/** Three-valued evaluation from the index alone: null when the answer needs message data. */
function quick(key: SearchKey, candidate: Candidate, env: Env): boolean | null {
  const { entry } = candidate;
  switch (key.type) {
    case 'all':
      return true;
    case 'flag':
      return hasFlag(entry.flags, key.flag) === key.present;
    case 'recent':
      return env.recent.has(entry.uid) === key.present;
    case 'larger':
      return entry.size > key.size;
    case 'smaller':
      return entry.size < key.size;
    case 'date':
      return compareDay(key.op, Math.floor(entry.internalDate / DAY) * DAY, key.day);
    case 'older':
      return entry.internalDate < env.now - key.seconds * 1000;
    case 'younger':
      return entry.internalDate >= env.now - key.seconds * 1000; // "within" the interval, boundary included
    case 'uid':
      return predicate(env, key, env.maxUid)(entry.uid);
    case 'seq':
      return predicate(env, key, env.count)(candidate.index + 1);
    case 'modseq':
      return entry.modseq >= key.modseq;
    case 'header':
    case 'sentdate':
    case 'body':
    case 'text':
      return null;
    case 'not': {
      const value = quick(key.key, candidate, env);
      return value === null ? null : !value;
    }
    case 'or': {
      const left = quick(key.left, candidate, env);
      if (left === true) return true;
      const right = quick(key.right, candidate, env);
      if (right === true) return true;
      return left === false && right === false ? false : null;
    }
    case 'and': {
      let unknown = false;
      for (const child of key.keys) {
        const value = quick(child, candidate, env);
        if (value === false) return false;
        if (value === null) unknown = true;
      }
      return unknown ? null : true;
    }
  }
}

const fold = (text: string): string => text.normalize('NFC').toLowerCase();

/** Message data loaded on demand, once per message. */
class Lazy {
  private readonly uid: number;
  private readonly context: SearchContext;
  private headerPromise: Promise<HeaderField[]> | null = null;
  private textPromise: Promise<string> | null = null;

  constructor(uid: number, context: SearchContext) {
    this.uid = uid;
    this.context = context;
  }

  /** Header fields with RFC 2047-decoded, folded values. */
  headers(): Promise<HeaderField[]> {
    this.headerPromise ??= this.context.loadHeaders(this.uid).then((raw) =>
      raw ? parseHeaderBlock(typeof raw === 'string' ? new TextEncoder().encode(raw) : raw).map((field) => ({ key: field.key, value: fold(decodeWords(field.value)) })) : [],
    );
    return this.headerPromise;
  }

  text(): Promise<string> {
    this.textPromise ??= this.context.loadSearchText(this.uid).then((text) => fold(text ?? ''));
    return this.textPromise;
  }
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** The calendar date written in a Date header (00:00 UTC of it), ignoring time and zone; null when unreadable. */
export function sentDay(value: string): number | null {
  const match = /(\d{1,2})\s+([a-z]{3})[a-z]*\s+(\d{2,4})/i.exec(value);
  if (match) {
    const month = MONTHS.indexOf(match[2]!.toLowerCase());
    let year = Number(match[3]);
    if (match[3]!.length === 2) year += year < 50 ? 2000 : 1900; // RFC 5322 obs-year
    else if (match[3]!.length === 3) year += 1900;
    if (month >= 0) {
      const time = Date.UTC(year, month, Number(match[1]));
      if (Number.isFinite(time)) return time;
    }
  }
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? Math.floor(parsed / DAY) * DAY : null;
}

async function full(key: SearchKey, candidate: Candidate, env: Env, lazy: Lazy): Promise<boolean> {
  const known = quick(key, candidate, env);
  if (known !== null) return known;
  switch (key.type) {
    case 'header': {
      const needle = fold(key.value);
      const headers = await lazy.headers();
      return headers.some((field) => field.key === key.field && field.value.includes(needle));
    }
    case 'sentdate': {
      const headers = await lazy.headers();
      const date = headers.find((field) => field.key === 'date');
      const day = (date && sentDay(date.value)) ?? Math.floor(candidate.entry.internalDate / DAY) * DAY;
      return compareDay(key.op, day, key.day);
    }
    case 'body':
      return (await lazy.text()).includes(fold(key.value));
    case 'text': {
      const needle = fold(key.value);
      const headers = await lazy.headers();
      if (headers.some((field) => field.value.includes(needle) || `${field.key}: ${field.value}`.includes(needle))) return true;
      return (await lazy.text()).includes(needle);
    }
    case 'not':
      return !(await full(key.key, candidate, env, lazy));
    case 'or': {
      const [first, second] = cost(key.left) <= cost(key.right) ? [key.left, key.right] : [key.right, key.left];
      return (await full(first, candidate, env, lazy)) || full(second, candidate, env, lazy);
    }
    case 'and': {
      for (const child of cheapestFirst(key)) if (!(await full(child, candidate, env, lazy))) return false;
      return true;
    }
    default:
      throw new Error(`search: unhandled key ${key.type}`);
  }
}

const ordered = new WeakMap<SearchKey, SearchKey[]>();

/** An AND's keys, cheapest first: sorted once per query, not once per message. */
function cheapestFirst(key: Extract<SearchKey, { type: 'and' }>): SearchKey[] {
  let keys = ordered.get(key);
  if (!keys) ordered.set(key, (keys = [...key.keys].sort((a, b) => cost(a) - cost(b))));
  return keys;
}

/** How many messages are loaded and evaluated at once in the second pass. */
const PARALLEL = 8;

/** Evaluates the query; matching UIDs ascending and the highest modseq among them (for MODSEQ searches). */
export async function search(query: SearchQuery, context: SearchContext): Promise<SearchResult> {
  const entries = context.entries;
  const env: Env = {
    maxUid: entries.length > 0 ? entries[entries.length - 1]!.uid : 0,
    count: entries.length,
    now: context.now ?? Date.now(),
    recent: context.recent,
    predicates: new Map(),
  };
  const matched = new Array<boolean>(entries.length).fill(false);
  const pending: Candidate[] = [];
  // both passes yield to the event loop between slices: a mailbox times many keys is a lot of synchronous work
  const slice = new TimeSlice();
  for (let index = 0; index < entries.length; index++) {
    if ((index & 63) === 0) await slice.pause();
    const candidate = { index, entry: entries[index]! };
    const value = quick(query.key, candidate, env);
    if (value === null) pending.push(candidate);
    else matched[index] = value;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pending.length) {
      const candidate = pending[next++]!;
      matched[candidate.index] = await full(query.key, candidate, env, new Lazy(candidate.entry.uid, context));
      await slice.pause();
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, pending.length) }, worker));

  const uids: number[] = [];
  let highest = 0;
  for (let index = 0; index < entries.length; index++) {
    if (!matched[index]) continue;
    const entry = entries[index]!;
    uids.push(entry.uid);
    highest = Math.max(highest, entry.modseq);
  }
  uids.sort((a, b) => a - b);
  return { uids, highestModseq: query.usesModseq && uids.length > 0 ? highest : null };
}

/** Matching UIDs, ascending. Use `search()` for the MODSEQ of a CONDSTORE search. */
export async function runSearch(query: SearchQuery, context: SearchContext): Promise<number[]> {
  return (await search(query, context)).uids;
}
