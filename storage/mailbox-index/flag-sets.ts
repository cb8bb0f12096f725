/**
 * Flag lists of one mailbox index, interned: each distinct list (`\Seen`, `\Seen $Forwarded`, …) is stored once
 * and messages hold its number, so 100,000 messages with a handful of combinations cost 4 bytes each. Per list the
 * table keeps the bits the hot paths test (`\Seen` for UNSEEN, `\Deleted` for EXPUNGE) and the keywords seen so
 * far (for the FLAGS response), with a version that grows whenever a keyword is new.
 */
import type { Flag } from '../ports.ts';

const NO_FLAGS: readonly Flag[] = Object.freeze([]);
const SEEN = 1;
const DELETED = 2;

export class FlagSets {
  readonly #ids = new Map<string, number>();
  readonly #lists: ReadonlyArray<Flag>[] = [];
  readonly #bits: number[] = [];
  readonly #keywords = new Set<string>();
  #sortedKeywords: string[] | null = [];
  /** Grows when a keyword appears that the table did not hold yet. */
  keywordVersion = 0;

  /** Number of distinct lists held. */
  get size(): number {
    return this.#lists.length;
  }

  /** The number of this flag list (stored order kept; the list is frozen and shared, never mutate it). */
  intern(flags: readonly Flag[]): number {
    const key = flags.join(' ');
    let id = this.#ids.get(key);
    if (id !== undefined) return id;
    id = this.#lists.length;
    this.#ids.set(key, id);
    this.#lists.push(Object.freeze([...flags]));
    let bits = 0;
    for (const flag of flags) {
      const lower = flag.toLowerCase();
      if (lower === '\\seen') bits |= SEEN;
      else if (lower === '\\deleted') bits |= DELETED;
      else if (!flag.startsWith('\\') && !this.#keywords.has(flag)) {
        this.#keywords.add(flag);
        this.#sortedKeywords = null;
        this.keywordVersion++;
      }
    }
    this.#bits.push(bits);
    return id;
  }

  /** The list of this number; an unknown number (a damaged snapshot) reads as no flags. */
  flags(id: number): readonly Flag[] {
    return this.#lists[id] ?? NO_FLAGS;
  }

  seen(id: number): boolean {
    return (this.#bits[id]! & SEEN) !== 0;
  }

  deleted(id: number): boolean {
    return (this.#bits[id]! & DELETED) !== 0;
  }

  /** Every keyword any interned list holds, sorted. */
  keywords(): readonly string[] {
    this.#sortedKeywords ??= [...this.#keywords].sort();
    return this.#sortedKeywords;
  }
}
