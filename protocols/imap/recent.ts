/**
 * `\Recent` (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to see it.
 *
 * Kept as one number per mailbox in the ephemeral store: the highest UID already given out as recent
 * (`imap:recent:<mailboxId>:<uidValidity>`). A read-write SELECT, and every later EXISTS in that session, claims
 * the UIDs above it: in one atomic step of the ephemeral store (`raise`), the mark goes up to the highest UID the
 * session now knows and the session keeps the UIDs in between as its recent messages (a claim below a mark this
 * process has already seen is answered without the store). Because UIDs only grow, the
 * claimed ranges of two sessions never overlap, so each message is recent to at most one session, across server instances too
 * when the ephemeral store is Redis. EXAMINE and STATUS only read the mark (EXAMINE must not clear \Recent).
 *
 * The mark lives in the ephemeral store: after it is lost (an embedded server restarts), the first session
 * to select a mailbox sees its messages as recent once more, which RFC 3501 permits ("the server cannot
 * determine ... all messages are recent" is an allowed approximation).
 */
import type { EphemeralPort, Id } from '../../storage/ports.ts';

const TTL_MS = 30 * 24 * 3600 * 1000;

function key(mailboxId: Id, uidValidity: number): string {
  return `imap:recent:${mailboxId}:${uidValidity}`;
}

/** Highest UID already given out as recent (0 when none). */
export function recentMark(ephemeral: EphemeralPort, mailboxId: Id, uidValidity: number): Promise<number> {
  return ephemeral.get(key(mailboxId, uidValidity));
}

/**
 * What this process knows of each mark, per store: marks only go up, so a claim at or below a mark seen here
 * claims nothing and needs no round trip (a SELECT of a mailbox whose new messages were already claimed). Bounded:
 * forgotten wholesale past KNOWN_MAX mailboxes, which only costs round trips.
 */
const knownMarks = new WeakMap<EphemeralPort, Map<string, number>>();
const KNOWN_MAX = 10_000;

/**
 * Claims UIDs up to `upTo` for the calling session: raises the mark to `upTo` in one atomic step and returns the
 * previous mark, so the caller's recent messages are those with `mark < uid <= upTo`.
 */
export async function claimRecent(ephemeral: EphemeralPort, mailboxId: Id, uidValidity: number, upTo: number): Promise<number> {
  const k = key(mailboxId, uidValidity);
  let known = knownMarks.get(ephemeral);
  const seen = known?.get(k) ?? 0;
  if (seen >= upTo) return seen;
  const mark = await ephemeral.raise(k, upTo, TTL_MS);
  if (!known) knownMarks.set(ephemeral, (known = new Map()));
  else if (known.size >= KNOWN_MAX) known.clear();
  known.set(k, Math.max(mark, upTo, known.get(k) ?? 0));
  return mark;
}

/**
 * The UIDs a session holds as \Recent: the ranges `(mark, upTo]` it claimed (one per claim, adjacent ones merged),
 * not a set of UIDs. `size` counts the client's messages in them through `counter.countBetween(from, to)`
 * (messages with from < uid <= to), so it follows expunges without bookkeeping.
 */
/** Counts the client's messages with from < UID <= to. */
export interface MessageCounter {
  countBetween(from: number, to: number): number;
}

export class RecentUids {
  readonly #counter: MessageCounter;
  /** [from, to] pairs, exclusive from, ascending. */
  #ranges: number[] = [];

  /** An object, not a callback: no closure per session. */
  constructor(counter: MessageCounter) {
    this.#counter = counter;
  }

  /** Adds the UIDs above `from` up to `to`. */
  add(from: number, to: number): void {
    if (to <= from) return;
    const last = this.#ranges.length - 2;
    if (last >= 0 && this.#ranges[last + 1] === from) this.#ranges[last + 1] = to;
    else this.#ranges.push(from, to);
  }

  /** Ranges held (adjacent claims merge into one). */
  get ranges(): number {
    return this.#ranges.length / 2;
  }

  has(uid: number): boolean {
    for (let i = 0; i < this.#ranges.length; i += 2) if (uid > this.#ranges[i]! && uid <= this.#ranges[i + 1]!) return true;
    return false;
  }

  get size(): number {
    let n = 0;
    for (let i = 0; i < this.#ranges.length; i += 2) n += this.#counter.countBetween(this.#ranges[i]!, this.#ranges[i + 1]!);
    return n;
  }
}
