/**
 * The search evaluator: a criteria tree (criteria.ts) against one mailbox's index, with the storage search port for
 * text.
 *
 * Evaluation is three-step so that no message is loaded for anything an index answers:
 * 1. every key the mailbox index answers (flags, size, internal date, UID, sequence number, modseq, \Recent) is
 *    evaluated with three-valued logic; most queries end here (`SEARCH UNSEEN`);
 * 2. for messages still undecided, the text keys (SUBJECT, FROM, TO, CC, BCC, BODY, TEXT) and the sent dates
 *    (SENTBEFORE / SENTON / SENTSINCE) are asked of the search port once per query, for the whole mailbox; a HEADER
 *    of another field is narrowed by the TEXT index (the header half of TEXT holds every field as `name: value`);
 * 3. only what no index answers (HEADER of another field) loads messages, cheapest
 *    data first, and only as far as AND / OR short-circuiting needs. Without a search port (tests, a backend under
 *    construction) every text key is answered here from the loaded headers and body text.
 *
 * Conventions (documented choices):
 * - BEFORE / ON / SINCE compare the internal date's calendar day in UTC.
 * - SENTBEFORE / SENTON / SENTSINCE compare the calendar date written in the Date header, ignoring time and zone
 *   (RFC 3501); a message without a parseable Date header uses its internal date.
 * - String matching is a case-insensitive substring test on decoded text (NFC, lowercased).
 * - SUBJECT matches the decoded Subject; FROM / TO / CC / BCC the parsed addresses (ports.ts SearchField); HEADER
 *   the decoded header values; BODY the body text (text parts and attachment names); TEXT headers or body.
 */
import type { MessageIndexEntry, SearchField, SearchTerm, SentDateTerm } from '../ports.ts';
import { decodeWords, parseHeaderBlock } from '../mime/headers.ts';
import type { HeaderField } from '../mime/headers.ts';
import { TimeSlice } from '../time-slice.ts';
import type { SearchCriteria, SearchKey, SearchResult } from './criteria.ts';
import { fold } from './fold.ts';
import { compareDay, sentDay } from './sent-date.ts';

export { sentDay };
import { rangePredicate } from './ranges.ts';
import type { SequenceSet } from './ranges.ts';

export interface SearchContext {
  /** The mailbox index in UID order; position i is message sequence number i + 1. */
  entries: readonly MessageIndexEntry[];
  /** UIDs seen as \Recent (an IMAP session's); empty elsewhere. */
  recent: { has(uid: number): boolean };
  /**
   * When `entries` is a part of the mailbox (a CONTEXT=SEARCH update re-evaluating changed messages only): the
   * sequence number of each entry, the mailbox's message count and its highest UID (what `*` stands for).
   */
  part?: { positions: readonly number[]; count: number; maxUid: number };
  /** Current time in ms (OLDER / YOUNGER); defaults to Date.now(). */
  now?: number;
  /** The search port for this mailbox (StoragePorts.search.match bound to it); without it text keys load messages. */
  matchText?(terms: readonly SearchTerm[]): Promise<number[][]>;
  /** The search port's sent dates for this mailbox (StoragePorts.search.matchSent bound to it); else headers are loaded. */
  matchSent?(terms: readonly SentDateTerm[]): Promise<number[][]>;
  /** Decoded body search text of a message (MessagesPort.searchText); used only without `matchText`. */
  loadSearchText(uid: number): Promise<string | null>;
  /** The raw header block of a message: its bytes (each field's charset is detected on its own), or text. */
  loadHeaders(uid: number): Promise<Uint8Array | string | null>;
}

const DAY = 86_400_000;

/** Header keys the search port answers, by field name. */
const INDEXED_HEADERS = new Set<string>(['subject', 'from', 'to', 'cc', 'bcc']);

interface Candidate {
  index: number;
  entry: MessageIndexEntry;
}

interface Env {
  maxUid: number;
  count: number;
  /** Sequence number of each candidate index when the entries are a part of the mailbox. */
  positions: readonly number[] | null;
  now: number;
  recent: { has(uid: number): boolean };
  predicates: Map<SearchKey, (value: number) => boolean>;
  /** Text keys answered by the search port: the UIDs that match. */
  matches: Map<SearchKey, Set<number>>;
  /** HEADER keys of other fields: only these UIDs can match (the TEXT index holds every field). */
  narrowed: Map<SearchKey, Set<number>>;
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
    test = rangePredicate(key.set, max);
    env.predicates.set(key, test);
  }
  return test;
}

/** Three-valued evaluation from the indexes alone: null when the answer needs message data. */
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
      return predicate(env, key, env.count)(env.positions ? env.positions[candidate.index]! : candidate.index + 1);
    case 'modseq':
      return entry.modseq >= key.modseq;
    case 'header':
    case 'body':
    case 'text':
    case 'sentdate': {
      const matched = env.matches.get(key);
      if (matched) return matched.has(entry.uid);
      const possible = env.narrowed.get(key);
      return possible && !possible.has(entry.uid) ? false : null;
    }
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

interface Asked<T> {
  key: SearchKey;
  term: T;
  /** The port's answer decides the key (else it only narrows it: HEADER of another field). */
  exact: boolean;
}

/** The keys of a tree the search port answers or narrows: text keys, and SENTBEFORE / SENTON / SENTSINCE. */
function portKeys(key: SearchKey, text: Asked<SearchTerm>[], sent: Asked<SentDateTerm>[]): void {
  switch (key.type) {
    case 'header':
      if (INDEXED_HEADERS.has(key.field)) text.push({ key, term: { field: key.field as SearchField, value: key.value }, exact: true });
      else if (key.value !== '') text.push({ key, term: { field: 'text', value: key.value }, exact: false });
      return;
    case 'body':
    case 'text':
      text.push({ key, term: { field: key.type, value: key.value }, exact: true });
      return;
    case 'sentdate':
      sent.push({ key, term: { op: key.op, day: key.day }, exact: true });
      return;
    case 'not':
      return portKeys(key.key, text, sent);
    case 'or':
      portKeys(key.left, text, sent);
      return portKeys(key.right, text, sent);
    case 'and':
      for (const child of key.keys) portKeys(child, text, sent);
      return;
    default:
      return;
  }
}

/** Asks one port method once for all its keys (equal terms once). */
async function ask<T>(keys: Asked<T>[], env: Env, port: (terms: T[]) => Promise<number[][]>): Promise<void> {
  if (keys.length === 0) return;
  const terms: T[] = [];
  const slot = new Map<string, number>();
  const slots = keys.map(({ term }) => {
    const id = JSON.stringify(term);
    let at = slot.get(id);
    if (at === undefined) {
      slot.set(id, (at = terms.length));
      terms.push(term);
    }
    return at;
  });
  const answers = (await port(terms)).map((uids) => new Set(uids));
  keys.forEach(({ key, exact }, i) => (exact ? env.matches : env.narrowed).set(key, answers[slots[i]!]!));
}

/** Asks the search port once per query for every key it answers. */
async function askIndex(key: SearchKey, env: Env, context: SearchContext): Promise<void> {
  const text: Asked<SearchTerm>[] = [];
  const sent: Asked<SentDateTerm>[] = [];
  portKeys(key, text, sent);
  if (context.matchText) await ask(text, env, context.matchText);
  if (context.matchSent) await ask(sent, env, context.matchSent);
}

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

/** How many messages are loaded and evaluated at once in the last step. */
const PARALLEL = 8;

/** Decides from the indexes whatever they decide; returns the candidates still open. */
async function decide(key: SearchKey, candidates: Candidate[], env: Env, matched: boolean[], slice: TimeSlice): Promise<Candidate[]> {
  const pending: Candidate[] = [];
  for (let i = 0; i < candidates.length; i++) {
    if ((i & 63) === 0) await slice.pause();
    const candidate = candidates[i]!;
    const value = quick(key, candidate, env);
    if (value === null) pending.push(candidate);
    else matched[candidate.index] = value;
  }
  return pending;
}

/** Evaluates the criteria; matching UIDs ascending and the highest modseq among them (for MODSEQ searches). */
export async function search(criteria: SearchCriteria, context: SearchContext): Promise<SearchResult> {
  const entries = context.entries;
  const part = context.part;
  const env: Env = {
    maxUid: part ? part.maxUid : entries.length > 0 ? entries[entries.length - 1]!.uid : 0,
    count: part ? part.count : entries.length,
    positions: part ? part.positions : null,
    now: context.now ?? Date.now(),
    recent: context.recent,
    predicates: new Map(),
    matches: new Map(),
    narrowed: new Map(),
  };
  const matched = new Array<boolean>(entries.length).fill(false);
  // every step yields to the event loop between slices: a mailbox times many keys is a lot of synchronous work
  const slice = new TimeSlice();
  let pending = await decide(
    criteria.key,
    entries.map((entry, index) => ({ index, entry })),
    env,
    matched,
    slice,
  );
  if (pending.length > 0 && (context.matchText || context.matchSent)) {
    await askIndex(criteria.key, env, context);
    pending = await decide(criteria.key, pending, env, matched, slice);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pending.length) {
      const candidate = pending[next++]!;
      matched[candidate.index] = await full(criteria.key, candidate, env, new Lazy(candidate.entry.uid, context));
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
  return { uids, highestModseq: criteria.usesModseq && uids.length > 0 ? highest : null };
}
