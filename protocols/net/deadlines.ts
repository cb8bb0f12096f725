/**
 * One timer for many deadlines: the idle timeouts of every connection of a process. A connection keeps its
 * deadline in two numbers and has one entry in a shared min-heap; pushing the deadline later (every chunk a client
 * sends) only writes the number, the heap entry is corrected when it comes up. 10,000 idle connections then hold no
 * timer object, callback closure or timer-list node each (about 250 bytes a connection), and a busy connection
 * allocates nothing per chunk to move its deadline.
 *
 * Deadlines are in milliseconds of `performance.now()`. The single timer is re-armed for the earliest entry; it
 * fires at the deadline, as a timer per connection would, and is cleared when no deadline is set.
 */

/** What a deadline belongs to: the two fields are the scheduler's, the owner only reads `deadline`. */
export interface DeadlineOwner {
  /** When the owner expires (performance.now() ms), or 0 when it has no deadline. */
  deadline: number;
  /** The key of the owner's entry in the heap, 0 when it has none. Written only by Deadlines. */
  queuedAt: number;
  /** Called once the deadline has passed (from the timer; errors are the owner's to handle). */
  expire(): void;
}

export class Deadlines {
  /** The heap: owners and, at the same index, their entry's key. */
  readonly #owners: DeadlineOwner[] = [];
  readonly #keys: number[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = 0;
  /** Owners with a deadline set. */
  #live = 0;

  get size(): number {
    return this.#live;
  }

  /** Sets (or moves) `owner`'s deadline to `ms` from now. */
  set(owner: DeadlineOwner, ms: number): void {
    const at = performance.now() + Math.max(0, ms);
    if (owner.deadline === 0) this.#live++;
    owner.deadline = at;
    // an entry due earlier is corrected when it comes up; a later one (or none) needs a new entry
    if (owner.queuedAt === 0 || at < owner.queuedAt) this.#push(owner, at);
    this.#arm();
  }

  /** Removes `owner`'s deadline (its heap entry is dropped when it comes up). */
  clear(owner: DeadlineOwner): void {
    if (owner.deadline === 0) return;
    owner.deadline = 0;
    if (--this.#live === 0) this.#reset();
  }

  #push(owner: DeadlineOwner, key: number): void {
    owner.queuedAt = key;
    let i = this.#owners.length;
    this.#owners.push(owner);
    this.#keys.push(key);
    // sift up: parents due later move down
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#keys[parent]! <= key) break;
      i = this.#moveTo(i, parent);
    }
    this.#put(i, owner, key);
  }

  #pop(): void {
    const owner = this.#owners.pop()!;
    const key = this.#keys.pop()!;
    const n = this.#owners.length;
    if (n === 0) return;
    // sift the last entry down from the root: earlier children move up
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.#keys[child + 1]! < this.#keys[child]!) child++;
      if (this.#keys[child]! >= key) break;
      i = this.#moveTo(i, child);
    }
    this.#put(i, owner, key);
  }

  /** Copies entry `from` into slot `to`; returns `from`, the slot now free. */
  #moveTo(to: number, from: number): number {
    this.#owners[to] = this.#owners[from]!;
    this.#keys[to] = this.#keys[from]!;
    return from;
  }

  #put(i: number, owner: DeadlineOwner, key: number): void {
    this.#owners[i] = owner;
    this.#keys[i] = key;
  }

  /** The timer for the earliest entry (re-armed only when that is earlier than the one set). */
  #arm(): void {
    if (this.#owners.length === 0) return;
    const at = this.#keys[0]!;
    if (this.#timer !== null && this.#timerAt <= at) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(at - performance.now())));
  }

  #fire(): void {
    this.#timer = null;
    const now = performance.now();
    const due: DeadlineOwner[] = [];
    while (this.#owners.length > 0 && this.#keys[0]! <= now) {
      const owner = this.#owners[0]!;
      const key = this.#keys[0]!;
      this.#pop();
      if (owner.queuedAt !== key) continue; // superseded by an earlier entry of the same owner
      owner.queuedAt = 0;
      if (owner.deadline === 0) continue; // cleared
      if (owner.deadline > now) this.#push(owner, owner.deadline); // moved later since this entry was made
      else due.push(owner);
    }
    for (const owner of due) {
      owner.deadline = 0;
      this.#live--;
    }
    if (this.#live === 0) this.#reset();
    else this.#arm();
    for (const owner of due) owner.expire();
  }

  /** No deadline left: drop the stale entries and the timer. */
  #reset(): void {
    for (const owner of this.#owners) owner.queuedAt = 0;
    this.#owners.length = 0;
    this.#keys.length = 0;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** The process's idle timeouts of every listener's connections. */
export const idleDeadlines = new Deadlines();
