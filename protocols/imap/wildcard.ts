/**
 * LIST / LSUB pattern matching (RFC 3501 §6.3.8) in linear time: `*` matches any characters, `%` any
 * characters but the hierarchy delimiter, everything else itself.
 *
 * A regular expression built from the pattern backtracks: 40 `*` before a character that never comes took
 * seconds per mailbox and blocked the event loop. Here the pattern is a small automaton whose states are
 * the pattern positions (state i = "the first i pattern characters are matched"), run as a bit set over the
 * path (shift-and): each path character costs one pass over ⌈(m+1)/32⌉ words, so a match is
 * O(n · m / 32) for an n-character path and an m-character pattern, whatever the pattern holds. Runs of
 * wildcards collapse first (`**` = `*`, `%*` = `*`, `%%` = `%`), so `*` × 40 is one state, and no two
 * wildcards are ever adjacent (one epsilon step is the whole closure).
 *
 * Matching is by UTF-16 code unit, as the regular expressions it replaces did; the pattern's length is
 * capped by the caller (`imap.maxListPatternLength`).
 */

interface Automaton {
  /** 32-bit words per state set. */
  readonly words: number;
  /** The accepting state: the pattern length after collapsing. */
  readonly final: number;
  /** States at a `*`: stay on any character. */
  readonly star: Uint32Array;
  /** States at a `*` or `%`: stay on any character but the delimiter, and have an epsilon step to the next one. */
  readonly wild: Uint32Array;
  /** For each character code in the pattern, the states whose pattern character it is. */
  readonly literal: Map<number, Uint32Array>;
}

/** `a**%b%%c` → `a*b%c`: a run of wildcards with a `*` in it is `*`, a run of only `%` is `%`. */
export function collapseWildcards(pattern: string): string {
  let out = '';
  let run = '';
  for (const c of pattern) {
    if (c === '*' || c === '%') {
      if (run !== '*') run = c === '*' ? '*' : '%';
      continue;
    }
    out += run + c;
    run = '';
  }
  return out + run;
}

function compile(pattern: string): Automaton {
  const size = pattern.length;
  const words = (size >>> 5) + 1;
  const star = new Uint32Array(words);
  const wild = new Uint32Array(words);
  const literal = new Map<number, Uint32Array>();
  for (let i = 0; i < size; i++) {
    const c = pattern.charCodeAt(i);
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    if (c === 0x2a) star[word]! |= bit;
    else if (c !== 0x25) {
      let mask = literal.get(c);
      if (!mask) literal.set(c, (mask = new Uint32Array(words)));
      mask[word]! |= bit;
      continue;
    }
    wild[word]! |= bit;
  }
  return { words, final: size, star, wild, literal };
}

/** Adds the epsilon steps (a wildcard matching nothing): state i+1 for every active wildcard state i. */
function close(states: Uint32Array, wild: Uint32Array): void {
  let carry = 0;
  for (let w = 0; w < states.length; w++) {
    const skip = states[w]! & wild[w]!;
    states[w] = states[w]! | (skip << 1) | carry;
    carry = skip >>> 31;
  }
}

function run(automaton: Automaton, text: string, delimiter: number): boolean {
  const { words, star, wild, literal, final } = automaton;
  let states = new Uint32Array(words);
  let next = new Uint32Array(words);
  states[0] = 1;
  close(states, wild);
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    const advance = literal.get(c);
    const stays = c === delimiter ? star : wild;
    let carry = 0;
    let any = 0;
    for (let w = 0; w < words; w++) {
      const s = states[w]!;
      const moved = advance ? s & advance[w]! : 0;
      const value = (moved << 1) | carry | (s & stays[w]!);
      carry = moved >>> 31;
      next[w] = value;
      any |= value;
    }
    if (any === 0) return false;
    close(next, wild);
    [states, next] = [next, states];
  }
  return (states[final >>> 5]! & (1 << (final & 31))) !== 0;
}

/** A matcher for one pattern: `*` any characters, `%` any but `delimiter` (one UTF-16 code unit). */
export function wildcardMatcher(pattern: string, delimiter: string): (text: string) => boolean {
  const automaton = compile(collapseWildcards(pattern));
  const code = delimiter.charCodeAt(0);
  return (text) => run(automaton, text, code);
}
