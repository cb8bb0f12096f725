/**
 * `\Recent` (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to see it.
 *
 * Kept as one number per mailbox in the ephemeral store: the highest UID already given out as recent
 * (`imap:recent:<mailboxId>:<uidValidity>`). A read-write SELECT, and every later EXISTS in that session, claims
 * the UIDs above it: under a short lock, read the mark, raise it to the highest UID the session now knows, and
 * keep the UIDs in between as this session's recent messages (when the mark already covers them: one read, no
 * lock, so a re-SELECT with nothing new costs one round trip to a shared store). Because UIDs only grow, the
 * claimed ranges of two sessions never overlap, so each message is recent to at most one session, across server
 * instances too when the ephemeral store is Redis. EXAMINE and STATUS only read the mark (EXAMINE must not clear \Recent).
 *
 * The mark lives in the ephemeral store: after it is lost (an embedded server restarts), the first session
 * to select a mailbox sees its messages as recent once more, which RFC 3501 permits ("the server cannot
 * determine ... all messages are recent" is an allowed approximation).
 */
import type { EphemeralPort, Id } from '../../storage/ports.ts';

const TTL_MS = 30 * 24 * 3600 * 1000;
const LOCK_MS = 5000;

function key(mailboxId: Id, uidValidity: number): string {
  return `imap:recent:${mailboxId}:${uidValidity}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Highest UID already given out as recent (0 when none). */
export function recentMark(ephemeral: EphemeralPort, mailboxId: Id, uidValidity: number): Promise<number> {
  return ephemeral.get(key(mailboxId, uidValidity));
}

/**
 * Claims UIDs up to `upTo` for the calling session. Returns the previous mark: the caller's recent messages
 * are those with `mark < uid <= upTo`. When the lock cannot be had, nothing is claimed (returns `upTo`).
 */
export async function claimRecent(ephemeral: EphemeralPort, mailboxId: Id, uidValidity: number, upTo: number): Promise<number> {
  const k = key(mailboxId, uidValidity);
  // the mark only grows: when it already covers `upTo` there is nothing to claim, and no lock is needed to know it
  const seen = await ephemeral.get(k);
  if (seen >= upTo) return seen;
  let token: string | null = null;
  for (let attempt = 0; attempt < 50 && !token; attempt++) {
    token = await ephemeral.lock(`${k}:lock`, LOCK_MS);
    if (!token) await sleep(5 + attempt);
  }
  if (!token) return upTo;
  try {
    const mark = await ephemeral.get(k);
    if (upTo > mark) await ephemeral.incr(k, upTo - mark, TTL_MS);
    return mark;
  } finally {
    await ephemeral.unlock(`${k}:lock`, token).catch(() => false);
  }
}

/**
 * The UIDs a session holds as \Recent: the ranges `(mark, upTo]` it claimed (one per claim, adjacent ones merged),
 * not a set of UIDs. `size` counts the client's messages in them through `count(from, to)` (messages with
 * from < uid <= to), so it follows expunges without bookkeeping.
 */
export class RecentUids {
  readonly #count: (from: number, to: number) => number;
  /** [from, to] pairs, exclusive from, ascending. */
  #ranges: number[] = [];

  constructor(count: (from: number, to: number) => number) {
    this.#count = count;
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
    for (let i = 0; i < this.#ranges.length; i += 2) n += this.#count(this.#ranges[i]!, this.#ranges[i + 1]!);
    return n;
  }
}
