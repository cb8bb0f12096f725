/**
 * Search results on the wire (ESEARCH, RFC 4731; SEARCHRES, RFC 5182; CONTEXT=SEARCH / CONTEXT=SORT and PARTIAL,
 * RFC 5267 and RFC 9394): the `RETURN (...)` options SEARCH and SORT accept, and the `* ESEARCH` line they answer
 * with. Pure codec, in hooks/ so that plugins answering with ESEARCH (ESORT) use it as the built-in SEARCH
 * (protocols/imap/cmd-search.ts) does: parse with `parseReturnOptions`, render with `esearchLine`. Exported to
 * plugins through hooks/imap.ts.
 *
 *   RETURN ()                  ALL (RFC 4731 §3.1)
 *   RETURN (MIN MAX ALL COUNT) any of them; MIN / MAX / ALL are left out when nothing matched, COUNT never
 *   RETURN (SAVE)              SEARCHRES: keep the result for `$`; alone it answers no ESEARCH line
 *   RETURN (PARTIAL 1:10)      positions in the result (1-based); `-1:-10` counts from the end (RFC 9394)
 *   RETURN (UPDATE)            CONTEXT=SEARCH: the session keeps the search and reports ADDTO / REMOVEFROM
 */
import { ImapSyntaxError } from './imap-wire.ts';
import type { ImapToken } from './imap-wire.ts';

/** A PARTIAL range: 1-based positions, `from` ≤ `to`; negative ones count from the end (-1 is the last). */
export interface PartialRange {
  from: number;
  to: number;
}

export interface ReturnOptions {
  min: boolean;
  max: boolean;
  all: boolean;
  count: boolean;
  save: boolean;
  update: boolean;
  partial: PartialRange | null;
}

const MAX_NUMBER = 4294967295;

/** `RETURN ()`: the options as RFC 4731 reads an empty list (ALL). */
function emptyOptions(): ReturnOptions {
  return { min: false, max: false, all: false, count: false, save: false, update: false, partial: null };
}

function partialRange(token: ImapToken | undefined): PartialRange {
  const text = token?.type === 'atom' && !token.section && !token.partial ? token.value : '';
  const match = /^(-?)([1-9][0-9]*):(-?)([1-9][0-9]*)$/.exec(text);
  if (!match || match[1] !== match[3]) throw new ImapSyntaxError('PARTIAL expects a range like 1:100 or -1:-100');
  const a = Number(match[2]);
  const b = Number(match[4]);
  if (a > MAX_NUMBER || b > MAX_NUMBER) throw new ImapSyntaxError('PARTIAL range out of bounds');
  const sign = match[1] === '-' ? -1 : 1;
  // written in either order; kept as the lower and the higher absolute position
  return { from: sign * Math.min(a, b), to: sign * Math.max(a, b) };
}

/**
 * The list after RETURN. `allowed` names the options the command offers (SORT has no UPDATE before CONTEXT=SORT).
 * Unknown or repeated options are BAD.
 */
export function parseReturnOptions(token: ImapToken | undefined, allowed: ReadonlySet<string> = RETURN_OPTIONS): ReturnOptions {
  if (!token || token.type !== 'list') throw new ImapSyntaxError('RETURN expects a list of options');
  const options = emptyOptions();
  const items = token.items;
  const seen = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const name = item.type === 'atom' && !item.section && !item.partial ? item.value.toUpperCase() : '';
    if (!allowed.has(name)) throw new ImapSyntaxError(`Unknown RETURN option${name ? ` ${name}` : ''}`);
    if (seen.has(name)) throw new ImapSyntaxError(`RETURN option ${name} given twice`);
    seen.add(name);
    switch (name) {
      case 'MIN':
        options.min = true;
        break;
      case 'MAX':
        options.max = true;
        break;
      case 'ALL':
        options.all = true;
        break;
      case 'COUNT':
        options.count = true;
        break;
      case 'SAVE':
        options.save = true;
        break;
      case 'UPDATE':
        options.update = true;
        break;
      case 'PARTIAL':
        options.partial = partialRange(items[++i]);
        break;
    }
  }
  if (options.partial && options.all) throw new ImapSyntaxError('PARTIAL and ALL cannot be combined');
  // RETURN () and RETURN (SAVE) or (UPDATE) alone mean ALL (RFC 4731 §3.1, RFC 5267 §4.2); SAVE alone sends nothing
  if (!options.min && !options.max && !options.count && !options.partial && !(options.save && !options.update)) options.all = true;
  return options;
}

/** Every RETURN option SEARCH understands. */
export const RETURN_OPTIONS: ReadonlySet<string> = new Set(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE', 'UPDATE', 'PARTIAL']);

/** Does the command answer with an ESEARCH line? Not for `RETURN (SAVE)` alone (RFC 5182 §2.1). */
export function answersEsearch(options: ReturnOptions): boolean {
  return options.min || options.max || options.all || options.count || options.partial !== null;
}

/** The part of the result a PARTIAL range selects (positions 1-based, negative from the end). */
export function partialSlice<T>(items: readonly T[], range: PartialRange): T[] {
  if (range.from > 0) return items.slice(range.from - 1, range.to);
  // -1:-10: the last ten, in result order
  const start = Math.max(0, items.length + range.to);
  const end = items.length + range.from + 1;
  return end <= 0 ? [] : items.slice(start, end);
}

/**
 * Which of the matches SAVE keeps (RFC 5182 §2.1): with MIN and / or MAX but neither ALL nor COUNT, those
 * messages only; otherwise all of them. `matches` in result order; the saved set is by message, unordered.
 */
export function savedMatches<T>(matches: readonly T[], options: ReturnOptions): T[] {
  if (options.all || options.count || options.partial || (!options.min && !options.max)) return [...matches];
  if (matches.length === 0) return [];
  const out: T[] = [];
  if (options.min) out.push(matches[0]!);
  if (options.max && (!options.min || matches.length > 1)) out.push(matches[matches.length - 1]!);
  return out;
}

export interface EsearchAnswer {
  /** The command's tag (the `TAG` correlator). */
  tag: string;
  /** UID SEARCH / UID SORT: numbers are UIDs and the line says UID. */
  uid: boolean;
  /** The result as numbers the client reads (UIDs or sequence numbers), in result order (ascending for SEARCH). */
  numbers: readonly number[];
  /** Modseq of each number, for a MODSEQ search (RFC 7162 §3.1.5); absent otherwise. */
  modseqs?: readonly number[];
  /** Ordered results (SORT): ALL and PARTIAL keep the order instead of sorting the set; MIN / MAX are first / last. */
  ordered?: boolean;
}

/** `* ESEARCH (TAG "x") [UID] [MIN n] [MAX n] [ALL set] [COUNT n] [PARTIAL (range set|NIL)] [MODSEQ n]`. */
export function esearchLine(options: ReturnOptions, answer: EsearchAnswer): string {
  const { numbers, modseqs } = answer;
  const parts = [`* ESEARCH (TAG ${quote(answer.tag)})`];
  if (answer.uid) parts.push('UID');
  const sortSet = answer.ordered !== true;
  const reported: number[] = []; // positions in `numbers` whose modseq MODSEQ reports
  // MIN / MAX: the first and last in result order (ascending for SEARCH; sort order for SORT, RFC 5267 §3.2)
  const minAt = 0;
  const maxAt = numbers.length - 1;
  if (numbers.length > 0) {
    if (options.min) (parts.push(`MIN ${numbers[minAt]}`), reported.push(minAt));
    if (options.max) (parts.push(`MAX ${numbers[maxAt]}`), reported.push(maxAt));
    if (options.all) parts.push(`ALL ${formatNumberSet(numbers, { sort: sortSet })}`);
  }
  if (options.count) parts.push(`COUNT ${numbers.length}`);
  if (options.partial) {
    const range = options.partial;
    const slice = partialSlice(numbers, range);
    parts.push(`PARTIAL (${range.from}:${range.to} ${slice.length > 0 ? formatNumberSet(slice, { sort: sortSet }) : 'NIL'})`);
  }
  if (modseqs && numbers.length > 0) {
    // MIN / MAX alone report their messages' modseq; anything that returns the whole result, the highest of all
    const every = options.all || options.count || options.partial !== null;
    const positions = every ? numbers.map((_n, i) => i) : reported;
    let highest = 0;
    for (const i of positions) highest = Math.max(highest, modseqs[i]!);
    if (highest > 0) parts.push(`MODSEQ ${highest}`);
  }
  return parts.join(' ');
}

/** `* ESEARCH (TAG "x") [UID] ADDTO (0 set)` / `REMOVEFROM (0 set)`: a CONTEXT=SEARCH update. */
export function esearchUpdateLine(tag: string, uid: boolean, kind: 'ADDTO' | 'REMOVEFROM', numbers: readonly number[], position = 0): string {
  return `* ESEARCH (TAG ${quote(tag)})${uid ? ' UID' : ''} ${kind} (${position} ${formatNumberSet(numbers)})`;
}

/**
 * `[1, 2, 3, 7]` → `"1:3,7"`: ascending runs joined. `sort` (default) sorts and deduplicates first; without it the
 * order is kept (an ordered SORT result).
 */
export function formatNumberSet(numbers: readonly number[], options: { sort?: boolean } = {}): string {
  const list = options.sort === false ? numbers : [...new Set(numbers)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const start = list[i]!;
    let end = start;
    while (i + 1 < list.length && list[i + 1] === end + 1) end = list[++i]!;
    parts.push(start === end ? String(start) : `${start}:${end}`);
  }
  return parts.join(',');
}

function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
