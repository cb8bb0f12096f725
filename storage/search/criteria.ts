/**
 * The protocol-neutral search criteria tree. IMAP SEARCH (protocols/imap/search.ts) and the HTTP search
 * (protocols/http/search-query.ts) parse their syntax into it; evaluate.ts answers it against a mailbox index and
 * the storage search port.
 */
import type { SequenceSet } from './ranges.ts';

export type DateOp = 'before' | 'on' | 'since';

export type SearchKey =
  | { type: 'all' }
  /** A system flag (`\Seen`) or keyword; `present: false` for UNSEEN, UNKEYWORD, … */
  | { type: 'flag'; flag: string; present: boolean }
  /** The session's \Recent (IMAP); always false for callers without sessions. */
  | { type: 'recent'; present: boolean }
  | { type: 'larger'; size: number }
  | { type: 'smaller'; size: number }
  /** Internal date: `day` is 00:00 UTC of the date. */
  | { type: 'date'; op: DateOp; day: number }
  /** The calendar date written in the Date header. */
  | { type: 'sentdate'; op: DateOp; day: number }
  /** The day the message was saved into its mailbox (RFC 8514 SAVEDBEFORE / SAVEDON / SAVEDSINCE), UTC. */
  | { type: 'savedate'; op: DateOp; day: number }
  /** The email id / thread id (RFC 8474 EMAILID / THREADID) is this stored id; null: an id naming nothing. */
  | { type: 'emailid' | 'threadid'; id: string | null }
  /** OLDER / YOUNGER (RFC 5032), in seconds. */
  | { type: 'older' | 'younger'; seconds: number }
  | { type: 'uid'; set: SequenceSet }
  /** Message sequence numbers: position in the mailbox index, from 1. */
  | { type: 'seq'; set: SequenceSet }
  | { type: 'modseq'; modseq: number }
  /** A header field (name lowercased) containing `value`; from/to/cc/bcc/subject are answered by the index. */
  | { type: 'header'; field: string; value: string }
  /** Body text only. */
  | { type: 'body'; value: string }
  /** Header fields or body text. */
  | { type: 'text'; value: string }
  | { type: 'not'; key: SearchKey }
  | { type: 'or'; left: SearchKey; right: SearchKey }
  | { type: 'and'; keys: SearchKey[] };

export interface SearchCriteria {
  key: SearchKey;
  /** Report the highest modseq of the matches (a CONDSTORE MODSEQ search). */
  usesModseq: boolean;
}

export interface SearchResult {
  /** Matching UIDs, ascending. */
  uids: number[];
  /** Highest modseq among the matches when the criteria used MODSEQ and something matched (RFC 7162), else null. */
  highestModseq: number | null;
}
