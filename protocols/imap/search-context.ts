/**
 * A session's searches that outlive their command: the SEARCHRES saved result (RFC 5182, `$`) and the
 * CONTEXT=SEARCH live results (RFC 5267, `RETURN (UPDATE)`). Both belong to the selected mailbox and are dropped
 * when it is left (SELECT, EXAMINE, CLOSE, UNSELECT).
 *
 * - The saved result is a list of UIDs: an expunged message drops out by itself (it no longer resolves), and UIDs
 *   are never reused, so nothing has to be rewritten when messages go.
 * - A live result keeps its matching UIDs and a mark of the mailbox (flag-change stamp, EXPUNGEs told, highest UID
 *   known). `updates()` runs wherever the session may send untagged responses (after each command, in IDLE): it
 *   re-evaluates only the messages whose flags changed or that arrived since the mark, and answers `* ESEARCH (TAG "t") [UID] REMOVEFROM (0 set)` / `ADDTO (0 set)`.
 *   An expunged member gets its REMOVEFROM just before its EXPUNGE response (`expunged()`, called by the
 *   selected mailbox), with the sequence number the EXPUNGE is about. A session with no live result pays nothing.
 */
import { search } from '../../storage/search/evaluate.ts';
import { mailboxSearchSources } from '../../storage/search/loaders.ts';
import type { StoragePorts } from '../../storage/ports.ts';
import type { SearchQuery } from './search.ts';
import { esearchUpdateLine } from '../../hooks/imap-esearch.ts';
import type { SelectedMailbox } from './selected.ts';
import type { SequenceRangeSpec } from './sequence.ts';

/** Live results one session may keep (RFC 5267 lets a server decline more: `* NO [NOUPDATE "tag"]`). */
export const MAX_LIVE_SEARCHES = 8;

/** Puts matching UIDs in a SORT's order (CONTEXT=SORT); the keys SORT uses never change with flags. */
export type ResultOrder = (uids: number[]) => Promise<number[]>;

interface LiveSearch {
  readonly tag: string;
  readonly uid: boolean;
  readonly query: SearchQuery;
  /** Matching UIDs. */
  readonly matches: Set<number>;
  mark: SelectedMailbox['changeMark'];
  /** A sorted result (CONTEXT=SORT): the matches in order, and how to order them again when some are added. */
  sorted: { order: ResultOrder; uids: number[] } | null;
}

export class SearchState {
  /** SEARCHRES: UIDs of the last `RETURN (SAVE)`, ascending. */
  #saved: number[] = [];
  #live: Map<string, LiveSearch> | null = null;

  /** Leaves the mailbox: `$` is empty again, live results end (RFC 5182 §2.1, RFC 5267 §4.2). */
  reset(): void {
    this.#saved = [];
    this.#live = null;
  }

  /** Replaces the saved result (UIDs, any order). */
  save(uids: readonly number[]): void {
    this.#saved = [...uids].sort((a, b) => a - b);
  }

  /** The saved result's messages the client still knows, ascending UIDs. */
  savedUids(view: SelectedMailbox): number[] {
    return this.#saved.filter((uid) => view.entry(uid) !== undefined);
  }

  /**
   * `$` as a sequence set for a command (RFC 5182 §2.2): UIDs for UID commands, sequence numbers otherwise; an
   * empty list when nothing is saved (the command then acts on no message).
   */
  savedSet(view: SelectedMailbox, uid: boolean): SequenceRangeSpec[] {
    const numbers = this.savedUids(view).map((u) => (uid ? u : view.seqOf(u)));
    return toRanges(numbers);
  }

  get liveCount(): number {
    return this.#live?.size ?? 0;
  }

  hasLive(tag: string): boolean {
    return this.#live?.has(tag) ?? false;
  }

  /**
   * Starts a live result (the tag of the SEARCH or SORT) from the matches found at `mark` (taken before searching).
   * A SORT passes its ordered UIDs and `order`: its updates then carry positions in that order (RFC 5267 §4.3).
   */
  keep(tag: string, uid: boolean, query: SearchQuery, uids: readonly number[], mark: SelectedMailbox['changeMark'], order?: ResultOrder): void {
    const sorted = order ? { order, uids: [...uids] } : null;
    (this.#live ??= new Map()).set(tag, { tag, uid, query, matches: new Set(uids), mark, sorted });
  }

  /** CANCELUPDATE: false for a tag with no live result. */
  cancel(tag: string): boolean {
    const found = this.#live?.delete(tag) ?? false;
    if (this.#live?.size === 0) this.#live = null;
    return found;
  }

  /** REMOVEFROM lines for messages whose EXPUNGE is about to be written (numbers as the client has them now). */
  expunged(messages: ReadonlyArray<{ uid: number; seq: number }>): string[] {
    if (!this.#live) return [];
    const lines: string[] = [];
    for (const live of this.#live.values()) {
      const gone = messages.filter((m) => live.matches.delete(m.uid));
      if (gone.length === 0) continue;
      const number = (m: { uid: number; seq: number }) => (live.uid ? m.uid : m.seq);
      if (live.sorted) lines.push(sortedRemovals(live, gone.map((m) => m.uid), (u) => number(gone.find((m) => m.uid === u)!)));
      else lines.push(esearchUpdateLine(live.tag, live.uid, 'REMOVEFROM', gone.map(number)));
    }
    return lines;
  }

  /** ADDTO / REMOVEFROM lines for what changed since each live result's mark (see the module comment). */
  async updates(view: SelectedMailbox, storage: Pick<StoragePorts, 'messages' | 'blobs' | 'search'>): Promise<string[]> {
    if (!this.#live) return [];
    const lines: string[] = [];
    for (const live of this.#live.values()) {
      const now = view.changeMark;
      const then = live.mark;
      if (now.stamp === then.stamp && now.lastUid === then.lastUid) continue;
      live.mark = now;
      const removed: number[] = [];
      // messages to look at again: flags changed, or new since the mark
      const changed = new Set(view.flagsChangedSince(then.stamp));
      if (now.lastUid > then.lastUid) for (const u of view.selectUids([{ start: then.lastUid + 1, end: now.lastUid }])) changed.add(u);
      const added: number[] = [];
      if (changed.size > 0) {
        const uids = [...changed].sort((a, b) => a - b);
        const entries = [];
        const positions = [];
        for (const u of uids) {
          const known = view.message(u);
          if (!known || view.isExpunged(u)) continue;
          entries.push(known.entry);
          positions.push(known.seq);
        }
        const result = await search(live.query, {
          entries,
          part: { positions, count: view.exists, maxUid: view.lastUid },
          recent: view.recent,
          ...mailboxSearchSources(storage, view.mailbox.id),
        });
        const matched = new Set(result.uids);
        for (const entry of entries) {
          const has = live.matches.has(entry.uid);
          if (matched.has(entry.uid) && !has) (live.matches.add(entry.uid), added.push(entry.uid));
          else if (!matched.has(entry.uid) && has) (live.matches.delete(entry.uid), removed.push(entry.uid));
        }
      }
      const number = (u: number) => (live.uid ? u : view.seqOf(u));
      if (live.sorted) {
        if (removed.length > 0) lines.push(sortedRemovals(live, removed, number));
        if (added.length > 0) lines.push(await sortedAdditions(live, added, number));
        continue;
      }
      if (removed.length > 0) lines.push(esearchUpdateLine(live.tag, live.uid, 'REMOVEFROM', removed.map(number)));
      if (added.length > 0) lines.push(esearchUpdateLine(live.tag, live.uid, 'ADDTO', added.map(number)));
    }
    return lines;
  }
}

/**
 * `REMOVEFROM (position n)` for each removed member of a sorted result, from the last position to the first so
 * that each position holds when the client applies it; the members leave `live.sorted`.
 */
function sortedRemovals(live: LiveSearch, removed: readonly number[], number: (uid: number) => number): string {
  const sorted = live.sorted!;
  const gone = new Set(removed);
  const items: string[] = [];
  for (let i = sorted.uids.length - 1; i >= 0; i--) if (gone.has(sorted.uids[i]!)) items.push(`REMOVEFROM (${i + 1} ${number(sorted.uids[i]!)})`);
  sorted.uids = sorted.uids.filter((u) => !gone.has(u));
  return `* ESEARCH (TAG ${quoteTag(live.tag)})${live.uid ? ' UID' : ''} ${items.join(' ')}`;
}

/**
 * `ADDTO (position n)` for each added member of a sorted result, at its place in the new order, first position
 * first (so each holds once the ones before it are in). The order is computed again for the members only when
 * some were added: flag changes never move a member (sort keys are the message's, not its flags).
 */
async function sortedAdditions(live: LiveSearch, added: readonly number[], number: (uid: number) => number): Promise<string> {
  const sorted = live.sorted!;
  sorted.uids = await sorted.order([...live.matches]);
  const fresh = new Set(added);
  const items: string[] = [];
  sorted.uids.forEach((u, i) => {
    if (fresh.has(u)) items.push(`ADDTO (${i + 1} ${number(u)})`);
  });
  return `* ESEARCH (TAG ${quoteTag(live.tag)})${live.uid ? ' UID' : ''} ${items.join(' ')}`;
}

function quoteTag(tag: string): string {
  return `"${tag.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Ascending numbers → ranges of consecutive runs. */
function toRanges(numbers: readonly number[]): SequenceRangeSpec[] {
  const sorted = [...numbers].filter((n) => n > 0).sort((a, b) => a - b);
  const out: SequenceRangeSpec[] = [];
  for (const n of sorted) {
    const last = out[out.length - 1];
    if (last && typeof last.end === 'number' && n <= last.end + 1) last.end = Math.max(last.end, n);
    else out.push({ start: n, end: n });
  }
  return out;
}
