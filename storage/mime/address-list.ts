/**
 * RFC 5322 address lists (§3.4, with the obsolete forms of §4.4) parsed into IMAP ENVELOPE addresses (RFC 3501
 * §7.4.2): name, source route (adl), mailbox, host; a group as a start marker (mailbox = group name, host NIL), its
 * members, and an end marker (all NIL).
 *
 * What it does the way Dovecot does (imaptest's fetch-envelope and search-addresses files check these):
 * - a source route is kept: `<@route:user@domain>` → (NIL "@route" "user" "domain");
 * - comments are never addresses: `group: (foo) ;` is an empty group;
 * - comments inside an address are dropped (`<user (comment)@ (comment) domain>` is user@domain, no name), and a
 *   comment after an address without a display name stands for the name (`user@domain (Real Name)`).
 * Lenient where mail is broken, as the parser it replaces (nodemailer's addressparser) was: a missing `>` or `;`
 * ends at the end, a bare word is a local part, words before an address without angle brackets are its name,
 * several words without `@` are a name. Values are raw: encoded words are left for the reader to decode.
 */
import type { EnvelopeAddress } from '../ports.ts';

type Token =
  | { type: 'word'; value: string; quoted: boolean }
  | { type: 'comment'; value: string }
  /** One of `<>@,;:.` (and a stray `)` or `]`, read as a word). */
  | { type: 'special'; value: string };

const SPECIALS = '<>@,;:.';

/** Splits a header value into words, quoted strings, domain literals, comments and specials. */
function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    const ch = value[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
    } else if (ch === '"') {
      let text = '';
      i++;
      while (i < n && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < n) i++;
        text += value[i]!;
        i++;
      }
      i++; // the closing quote (or the end)
      tokens.push({ type: 'word', value: text, quoted: true });
    } else if (ch === '(') {
      let depth = 1;
      let text = '';
      i++;
      while (i < n && depth > 0) {
        const c = value[i]!;
        if (c === '\\' && i + 1 < n) {
          text += value[i + 1]!;
          i += 2;
          continue;
        }
        if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
        text += c;
        i++;
      }
      i++;
      tokens.push({ type: 'comment', value: text.replace(/\s+/g, ' ').trim() });
    } else if (ch === '[') {
      const end = value.indexOf(']', i);
      const stop = end < 0 ? n : end + 1;
      tokens.push({ type: 'word', value: value.slice(i, stop), quoted: false });
      i = stop;
    } else if (SPECIALS.includes(ch)) {
      tokens.push({ type: 'special', value: ch });
      i++;
    } else {
      let end = i;
      while (end < n && !' \t\r\n"(['.includes(value[end]!) && !SPECIALS.includes(value[end]!)) end++;
      if (end === i) end++; // a stray `)` or `]`
      tokens.push({ type: 'word', value: value.slice(i, end), quoted: false });
      i = end;
    }
  }
  return tokens;
}

function isSpecial(token: Token | undefined, value: string): boolean {
  return token?.type === 'special' && token.value === value;
}

/** A local part or domain as written, comments and spaces dropped (`a . b` → `a.b`, a quoted part keeps quotes). */
function dotted(tokens: Token[]): string {
  let out = '';
  for (const token of tokens) {
    if (token.type === 'comment') continue;
    if (token.type === 'word') out += token.quoted ? `"${token.value.replace(/(["\\])/g, '\\$1')}"` : token.value;
    else out += token.value;
  }
  return out;
}

/** Display-name words joined by one space; specials (an obsolete phrase's `.`, a stray `@`) join as written. */
function phrase(tokens: Token[]): string {
  let out = '';
  let word = false;
  for (const token of tokens) {
    if (token.type === 'comment') continue;
    out += (word && token.type === 'word' ? ' ' : '') + token.value;
    word = token.type === 'word';
  }
  return out.trim();
}

function lastComment(tokens: Token[]): string | null {
  for (let i = tokens.length - 1; i >= 0; i--) {
    const token = tokens[i]!;
    if (token.type === 'comment' && token.value) return token.value;
  }
  return null;
}

function address(name: string | null, adl: string | null, spec: string): EnvelopeAddress {
  const at = spec.lastIndexOf('@');
  // host is never null for a mailbox: IMAP reserves a NIL host for group markers
  if (at < 0) return { name: name || null, adl, mailbox: spec, host: '' };
  return { name: name || null, adl, mailbox: spec.slice(0, at), host: spec.slice(at + 1) };
}

/** `<[route:]addr-spec>` starting after `<`; returns the position after `>` (or the end). */
function angle(tokens: Token[], start: number, stop: number): { adl: string | null; spec: string; next: number } {
  let end = start;
  while (end < stop && !isSpecial(tokens[end], '>')) end++;
  const inner = tokens.slice(start, end).filter((token) => token.type !== 'comment');
  let adl: string | null = null;
  const colon = inner.findIndex((token) => isSpecial(token, ':'));
  if (colon >= 0 && isSpecial(inner[0], '@')) {
    adl = dotted(inner.slice(0, colon));
    inner.splice(0, colon + 1);
  }
  return { adl, spec: dotted(inner), next: Math.min(end + 1, stop) };
}

/** One mailbox from tokens[start, stop) (no `,` at this level inside); null when it holds no address at all. */
function mailbox(tokens: Token[], start: number, stop: number): EnvelopeAddress | null {
  const items = tokens.slice(start, stop);
  const open = items.findIndex((token) => isSpecial(token, '<'));
  if (open >= 0) {
    const { adl, spec, next } = angle(items, open + 1, items.length);
    // the display name, else a comment after the address (comments inside `<...>` are not names)
    const name = phrase(items.slice(0, open)) || lastComment(items.slice(next));
    return address(name, adl, spec);
  }
  const words = items.filter((token) => token.type !== 'comment');
  if (words.length === 0) return null; // only comments: not an address
  const comment = lastComment(items);
  const at = words.findIndex((token) => isSpecial(token, '@'));
  if (at < 0) {
    // no address: a bare word is a local part; a quoted string or several words are a name (a broken "Undisclosed recipients")
    const only = words[0]!;
    if (words.length === 1 && only.type === 'word' && !only.quoted) return { name: comment, adl: null, mailbox: only.value, host: '' };
    return { name: phrase(words) || comment, adl: null, mailbox: '', host: '' };
  }
  // local part: word *("." word) just before `@`; domain: word *("." word) after it; other words are a name
  let from = at;
  if (words[from - 1]?.type === 'word') {
    from--;
    while (isSpecial(words[from - 1], '.') && words[from - 2]?.type === 'word') from -= 2;
  }
  let to = at + 1;
  if (words[to]?.type === 'word') {
    to++;
    while (isSpecial(words[to], '.') && words[to + 1]?.type === 'word') to += 2;
  }
  const name = [phrase(words.slice(0, from)), phrase(words.slice(to))].filter(Boolean).join(' ') || comment;
  return address(name, null, dotted(words.slice(from, to)));
}

/** Where the entry starting at `start` ends: the next `,` or `;` outside `<...>`. */
function entryEnd(tokens: Token[], start: number, stop: number): number {
  let angled = false;
  for (let i = start; i < stop; i++) {
    const token = tokens[i]!;
    if (token.type !== 'special') continue;
    if (token.value === '<') angled = true;
    else if (token.value === '>') angled = false;
    else if (!angled && (token.value === ',' || token.value === ';')) return i;
  }
  return stop;
}

/** Parses an address header value (several occurrences joined with commas). Null when it holds no address. */
export function parseAddresses(value: string): EnvelopeAddress[] | null {
  const tokens = tokenize(value);
  const out: EnvelopeAddress[] = [];
  let i = 0;
  while (i < tokens.length) {
    if (isSpecial(tokens[i], ',') || isSpecial(tokens[i], ';')) {
      i++;
      continue;
    }
    const end = entryEnd(tokens, i, tokens.length);
    // a group: `name:` before any `<` or `@`
    let colon = -1;
    for (let j = i; j < end; j++) {
      const token = tokens[j]!;
      if (token.type !== 'special') continue;
      if (token.value === ':') colon = j;
      break;
    }
    if (colon < 0) {
      const one = mailbox(tokens, i, end);
      if (one) out.push(one);
      i = end + 1;
      continue;
    }
    out.push({ name: null, adl: null, mailbox: phrase(tokens.slice(i, colon)), host: null }); // group start
    let j = colon + 1;
    while (j < tokens.length && !isSpecial(tokens[j], ';')) {
      if (isSpecial(tokens[j], ',')) {
        j++;
        continue;
      }
      const memberEnd = entryEnd(tokens, j, tokens.length);
      const member = mailbox(tokens, j, memberEnd);
      if (member) out.push(member);
      j = memberEnd;
    }
    out.push({ name: null, adl: null, mailbox: null, host: null }); // group end
    i = j + 1;
  }
  return out.length > 0 ? out : null;
}
