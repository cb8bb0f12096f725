/**
 * Email address and username normalization, shared by every backend and protocol.
 *
 * Addresses may have internationalized local parts (RFC 6531) and IDN domains. The stored form is
 * `localpart@domain` with the local part NFC-normalized and lowercased and the domain in Unicode (IDNA
 * decoded), NFC, lowercased, so `Andris@Ｅxample.com`, `andris@xn--...` and the Unicode domain all match.
 */
import { domainToASCII, domainToUnicode } from 'node:url';
import unhomoglyph from 'unhomoglyph';

export class AddressError extends Error {
  readonly code = 'INVALID_ADDRESS';
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

export interface NormalizedAddress {
  /** Lookup form: local@domain, lowercased NFC, Unicode domain. */
  address: string;
  localPart: string;
  domain: string;
  /** Domain in ASCII (punycode), for SMTP to servers without SMTPUTF8. */
  asciiDomain: string;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

export function normalizeDomain(domain: string): { unicode: string; ascii: string } {
  const trimmed = domain.trim().replace(/\.$/, '');
  if (!trimmed) throw new AddressError('empty domain');
  const ascii = domainToASCII(trimmed.normalize('NFC').toLowerCase());
  if (!ascii) throw new AddressError(`invalid domain "${domain}"`);
  const unicode = domainToUnicode(ascii).normalize('NFC').toLowerCase();
  return { unicode, ascii };
}

/** Parses and normalizes `local@domain`. Throws AddressError on invalid input. */
export function normalizeAddress(input: string): NormalizedAddress {
  const value = input.trim().replace(/^<(.*)>$/, '$1');
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) throw new AddressError(`"${input}" is not an email address`);
  let local = value.slice(0, at);
  if (/^".*"$/.test(local)) local = local.slice(1, -1).replace(/\\(.)/g, '$1');
  if (CONTROL.test(local) || /\s/.test(local)) throw new AddressError(`invalid local part in "${input}"`);
  local = local.normalize('NFC').toLowerCase();
  if (new TextEncoder().encode(local).length > 64) throw new AddressError(`local part too long in "${input}"`);
  const domain = normalizeDomain(value.slice(at + 1));
  return { address: `${local}@${domain.unicode}`, localPart: local, domain: domain.unicode, asciiDomain: domain.ascii };
}

/** `user+tag@domain` → `user@domain`; null when there is no tag. */
export function withoutTag(address: NormalizedAddress): string | null {
  const plus = address.localPart.indexOf('+');
  if (plus <= 0) return null;
  return `${address.localPart.slice(0, plus)}@${address.domain}`;
}

/**
 * Candidate lookup keys for an incoming address, in order: the exact address, then without `+tag`.
 */
export function lookupKeys(input: string): string[] {
  const normalized = normalizeAddress(input);
  const keys = [normalized.address];
  const plain = withoutTag(normalized);
  if (plain) keys.push(plain);
  return keys;
}

/**
 * True when `address` (any written form, `+tag` allowed) is one of `userId`'s addresses: the sender check for
 * submission. False for anything that is not an address.
 */
export async function ownsAddress(users: { resolveAddress(address: string): Promise<{ userId: string } | null> }, userId: string, address: string): Promise<boolean> {
  let keys: string[];
  try {
    keys = lookupKeys(address);
  } catch (err) {
    if (err instanceof AddressError) return false;
    throw err;
  }
  for (const key of keys) {
    const found = await users.resolveAddress(key);
    if (found) return found.userId === userId;
  }
  return false;
}

/** Usernames: 1–128 characters, letters (any script), digits, and . _ - @ +; stored NFC lowercased. */
export function normalizeUsername(input: string): string {
  const value = input.trim().normalize('NFC').toLowerCase();
  if (!value || value.length > 128 || !/^[\p{L}\p{N}._@+-]+$/u.test(value)) {
    throw new AddressError(`invalid username "${input}": use letters, digits and . _ - @ +`);
  }
  return value;
}

// --- login names: one namespace for usernames and addresses ---------------------------------------------------

/**
 * The key a login name is unique under: NFKC, then case folded (upper then lower case, so `ß` → `ss`, `ς` → `σ`),
 * trimmed. `ａｌｉｃｅ`, `ALICE` and `alice` share one key; so do `Alice@Example.com` and `alice@example.com`.
 * Usernames and addresses live in this one namespace: no user's username may fold to another user's address or
 * username (a user's own username and address may). Every backend enforces it with a unique index.
 */
export function loginKey(input: string): string {
  return input.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/**
 * The UTS #39 skeleton of a username (the Unicode confusables data through `unhomoglyph`): `pаypal` (Cyrillic а),
 * `paypa1` and `paypal` share one. Two users may not have usernames with the same skeleton. Addresses are not
 * held to this: their local parts belong to the domain's owner.
 */
export function usernameSkeleton(username: string): string {
  return unhomoglyph(loginKey(username).normalize('NFD')).toLowerCase().normalize('NFD');
}

/** Scripts told apart in usernames (Script_Extensions, from the Unicode data built into the JS engine). */
const SCRIPTS: ReadonlyArray<readonly [string, RegExp]> = [
  'Latin', 'Greek', 'Cyrillic', 'Armenian', 'Hebrew', 'Arabic', 'Syriac', 'Thaana', 'Nko', 'Devanagari', 'Bengali',
  'Gurmukhi', 'Gujarati', 'Oriya', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao', 'Tibetan',
  'Myanmar', 'Georgian', 'Hangul', 'Ethiopic', 'Cherokee', 'Canadian_Aboriginal', 'Ogham', 'Runic', 'Khmer',
  'Mongolian', 'Hiragana', 'Katakana', 'Bopomofo', 'Han', 'Yi', 'Coptic', 'Tifinagh', 'Vai', 'Lisu', 'Adlam',
].map((name) => [name, new RegExp(`^\\p{Script_Extensions=${name}}$`, 'u')] as const);
const COMMON = /^[\p{Script=Common}\p{Script=Inherited}]$/u;
/** UTS #39 "highly restrictive": Han may mix with the scripts written beside it in Japanese, Korean and Chinese. */
const AUGMENT: Readonly<Record<string, readonly string[]>> = {
  Han: ['Jpan', 'Kore', 'Hanb'],
  Hiragana: ['Jpan'],
  Katakana: ['Jpan'],
  Hangul: ['Kore'],
  Bopomofo: ['Hanb'],
};

/**
 * The scripts a name is written in, per UTS #39 §5.1 (resolved script set): empty when it mixes scripts that are
 * not written together (Latin with Cyrillic or Greek, ...). Digits and `. _ - @ +` count for every script.
 */
export function resolvedScripts(name: string): Set<string> | null {
  let resolved: Set<string> | null = null;
  for (const ch of name.normalize('NFKC')) {
    if (COMMON.test(ch)) continue;
    const own = new Set<string>();
    for (const [script, re] of SCRIPTS) {
      if (!re.test(ch)) continue;
      own.add(script);
      for (const extra of AUGMENT[script] ?? []) own.add(extra);
    }
    if (own.size === 0) own.add(`U+${((ch.codePointAt(0)! >> 7) << 7).toString(16)}`); // a script not listed: its block
    resolved = resolved === null ? own : new Set([...(resolved as Set<string>)].filter((s) => own.has(s)));
  }
  return resolved;
}

/**
 * A new username: normalizeUsername's rules, and not a mix of scripts that are not written together (`pаypal`
 * with a Cyrillic `а`). Throws AddressError. Lookups use normalizeUsername alone, so older names stay reachable.
 */
export function validateNewUsername(input: string): string {
  const value = normalizeUsername(input);
  const scripts = resolvedScripts(value);
  if (scripts !== null && scripts.size === 0) {
    throw new AddressError(`invalid username "${input}": it mixes letters of different scripts (look-alike characters?)`);
  }
  return value;
}
