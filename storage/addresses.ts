/**
 * Email address and username normalization, shared by every backend and protocol.
 *
 * Addresses may have internationalized local parts (RFC 6531) and IDN domains. The stored form is
 * `localpart@domain` with the local part NFC-normalized and lowercased and the domain in Unicode (IDNA
 * decoded), NFC, lowercased, so `Andris@Ｅxample.com`, `andris@xn--...` and the Unicode domain all match.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

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
