/**
 * The Gmail-like search language of `GET /users/:user/search?q=…`, parsed into the IMAP SEARCH key tree
 * (storage/search/evaluate.ts evaluates it) plus the parts IMAP SEARCH has no key for (mailbox, attachments).
 *
 *   from:x  to:x  cc:x  subject:x          header substring (to: also matches Cc)
 *   in:path | in:inbox/sent/drafts/trash/junk/spam   one mailbox (by path, or special use)
 *   has:attachment                          only messages with attachments
 *   is:unread/read/starred/unstarred/flagged/answered/draft
 *   before:2024-01-31  after:2024-01-01     internal date (day, UTC); also YYYY/MM/DD
 *   larger:10M  smaller:200K                size in bytes, K/M/G suffixes
 *   word  "a phrase"                        text (headers or body), every term must match
 *   -term                                   negates any of the above (except in:)
 */
import type { SearchKey } from '../../storage/search/criteria.ts';

export interface ParsedQuery {
  keys: SearchKey[];
  /** `in:` value (path or special-use word), or null. */
  mailbox: string | null;
  /** `has:attachment` → true, `-has:attachment` → false. */
  attachments: boolean | null;
}

export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

const DAY = 86_400_000;

/** `YYYY-MM-DD` or `YYYY/MM/DD` → 00:00 UTC of that day. */
export function parseDay(value: string): number {
  const match = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(value);
  const time = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : NaN;
  if (!Number.isFinite(time)) throw new QueryError(`expected a date like 2024-01-31, got "${value}"`);
  return Math.floor(time / DAY) * DAY;
}

/** `10M`, `200k`, `1024` → bytes. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(value);
  if (!match) throw new QueryError(`expected a size like 10M, got "${value}"`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.floor(Number(match[1]) * unit);
}

const IS: Record<string, [string, boolean]> = {
  unread: ['\\Seen', false],
  read: ['\\Seen', true],
  starred: ['\\Flagged', true],
  flagged: ['\\Flagged', true],
  unstarred: ['\\Flagged', false],
  answered: ['\\Answered', true],
  draft: ['\\Draft', true],
};

/** Splits into terms: `op:value`, `op:"quoted value"`, `"phrase"`, `word`, each optionally prefixed by '-'. */
function tokenize(q: string): Array<{ negate: boolean; op: string | null; value: string }> {
  const out: Array<{ negate: boolean; op: string | null; value: string }> = [];
  const re = /(-?)(?:([a-z]+):)?(?:"([^"]*)"?|(\S+))/giy;
  let position = 0;
  while (position < q.length) {
    while (position < q.length && /\s/.test(q[position]!)) position++;
    if (position >= q.length) break;
    re.lastIndex = position;
    const match = re.exec(q);
    if (!match || match[0].length === 0) throw new QueryError('could not read the query');
    position = re.lastIndex;
    const value = match[3] ?? match[4] ?? '';
    out.push({ negate: match[1] === '-', op: match[2]?.toLowerCase() ?? null, value });
  }
  return out;
}

export function parseQuery(q: string): ParsedQuery {
  const parsed: ParsedQuery = { keys: [], mailbox: null, attachments: null };
  for (const term of tokenize(q)) {
    let key: SearchKey;
    const value = term.value;
    switch (term.op) {
      case 'from':
      case 'cc':
      case 'subject':
        key = { type: 'header', field: term.op, value };
        break;
      case 'to':
        key = { type: 'or', left: { type: 'header', field: 'to', value }, right: { type: 'header', field: 'cc', value } };
        break;
      case 'in':
        if (term.negate) throw new QueryError('-in: is not supported');
        parsed.mailbox = value;
        continue;
      case 'has':
        if (value.toLowerCase() !== 'attachment') throw new QueryError(`unknown has:${value} (has:attachment is supported)`);
        parsed.attachments = !term.negate;
        continue;
      case 'is': {
        const flag = IS[value.toLowerCase()];
        if (!flag) throw new QueryError(`unknown is:${value}`);
        key = { type: 'flag', flag: flag[0], present: flag[1] };
        break;
      }
      case 'before':
        key = { type: 'date', op: 'before', day: parseDay(value) };
        break;
      case 'after':
        key = { type: 'date', op: 'since', day: parseDay(value) };
        break;
      case 'larger':
        key = { type: 'larger', size: parseSize(value) };
        break;
      case 'smaller':
        key = { type: 'smaller', size: parseSize(value) };
        break;
      case null:
        if (!value) continue;
        key = { type: 'text', value };
        break;
      default:
        // an unknown "op:" is a plain word with a colon (e.g. a time "10:30")
        key = { type: 'text', value: `${term.op}:${value}` };
    }
    parsed.keys.push(term.negate ? { type: 'not', key } : key);
  }
  return parsed;
}
