/**
 * Users on top of the storage ports: lookup by login name or address, the credential check the storage plugin
 * commits logins with, and the pieces of a new user (default mailboxes, tags). The server, the HTTP API and the
 * CLI create, change and delete users through the account pipeline (hooks/pipeline/account.ts), whose commit is
 * the storage plugin; `createUser`, `setPassword` and `deleteUser` here write a bare store directly, without
 * hooks, for tests and tools that seed one. Passwords are hashed here and never leave this module in clear.
 */
import { StorageError, type AddressRecord, type QuotaLimits, type SpecialUse, type StoragePorts, type UserRecord, type UsersPort } from './ports.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { AddressError, lookupKeys, normalizeAddress, normalizeUsername, validateNewUsername } from './addresses.ts';
import { looksLikeAppPassword, matchAppPassword } from './app-passwords.ts';
import type { PasswordChecker } from './password-check.ts';
import { specialMailboxNames } from './mailbox-names.ts';
import type { SpecialMailboxNames } from './mailbox-names.ts';

export interface CreateUserInput {
  username: string;
  password: string | null;
  name?: string;
  addresses?: string[];
  quota?: Partial<QuotaLimits>;
  /** Admin labels; normalized with normalizeTags. */
  tags?: string[];
  /** Names the special-use mailboxes in this language (storage/mailbox-names.ts); unknown = the config names. */
  language?: string;
  /** Explicit special-use mailbox names, over the language's (WildDuck's `mailboxes`). */
  mailboxes?: Partial<SpecialMailboxNames>;
}

/** User tags as stored: trimmed, NFC, lowercased, empty ones dropped, distinct, sorted. */
export function normalizeTags(tags: readonly string[]): string[] {
  const out = new Set<string>();
  for (const tag of tags) {
    const t = tag.trim().normalize('NFC').toLowerCase();
    if (t) out.add(t);
  }
  return [...out].sort();
}

/** What a new user gets unless told otherwise (config `users` has this shape). */
export interface UserDefaults {
  quota: { storage: number | null; messages: number | null };
  mailboxes: SpecialMailboxNames;
}

/** The mailboxes every new user gets, with their special-use flags. */
export function defaultMailboxes(names: SpecialMailboxNames): Array<{ path: string; specialUse: SpecialUse | null }> {
  return [
    { path: 'INBOX', specialUse: null },
    { path: names.drafts, specialUse: '\\Drafts' },
    { path: names.sent, specialUse: '\\Sent' },
    { path: names.trash, specialUse: '\\Trash' },
    { path: names.junk, specialUse: '\\Junk' },
  ];
}

/** Seeds a user straight into a bare store (no hooks run): tests and tools. Servers use the account pipeline. */
export async function createUser(storage: StoragePorts, config: { users: UserDefaults }, input: CreateUserInput): Promise<{ user: UserRecord; addresses: AddressRecord[] }> {
  const username = validateNewUsername(input.username);
  const addresses = (input.addresses ?? []).map((a) => ({ display: a.trim(), ...normalizeAddress(a) }));
  const passwordHash = input.password === null ? null : await hashPassword(input.password);
  const user = await storage.users.create({
    username,
    name: input.name ?? '',
    passwordHash,
    quota: { storage: config.users.quota.storage, messages: config.users.quota.messages, ...input.quota },
    tags: normalizeTags(input.tags ?? []),
  });
  try {
    const names = specialMailboxNames(config.users.mailboxes, input.language, input.mailboxes);
    for (const mailbox of defaultMailboxes(names)) {
      await storage.mailboxes.create(user.id, { path: mailbox.path, specialUse: mailbox.specialUse, subscribed: true });
    }
    const created: AddressRecord[] = [];
    for (const [i, address] of addresses.entries()) {
      created.push(await storage.users.addAddress(user.id, { address: address.address, display: address.display, main: i === 0 }));
    }
    return { user, addresses: created };
  } catch (err) {
    await storage.users.delete(user.id).catch(() => {});
    throw err;
  }
}

/**
 * A user by login name: the exact username, else the user whose username or address folds to the same key
 * (`ＡＬＩＣＥ`, `Alice@Example.com`). The one lookup for login, `/users/resolve` and the CLI.
 */
export async function findUser(storage: UserLookup, username: string): Promise<UserRecord | null> {
  let exact: string | null = null;
  try {
    exact = normalizeUsername(username);
  } catch (err) {
    if (!(err instanceof AddressError)) throw err;
  }
  return (exact === null ? null : await storage.users.getByUsername(exact)) ?? storage.users.getByLoginName(username);
}

async function requireUser(storage: StoragePorts, username: string): Promise<UserRecord> {
  normalizeUsername(username); // an invalid name is an input error, not a missing user
  const user = await findUser(storage, username);
  if (!user) throw new StorageError('NONEXISTENT', `no such user "${username}"`);
  return user;
}

export async function setPassword(storage: StoragePorts, username: string, password: string): Promise<UserRecord> {
  const user = await requireUser(storage, username);
  return storage.users.update(user.id, { passwordHash: await hashPassword(password) });
}

export async function deleteUser(storage: StoragePorts, username: string): Promise<void> {
  const user = await requireUser(storage, username);
  await storage.users.delete(user.id);
}

/** The user lookups login resolution needs (StoragePorts and the plugins' StorageReader both have them). */
export interface UserLookup {
  readonly users: Pick<UsersPort, 'get' | 'getByUsername' | 'getByLoginName' | 'resolveAddress'>;
}

/** Resolves a recipient address (case-insensitive, IDN, `user+tag@`) to its user's address record. */
export async function resolveAddress(storage: UserLookup, address: string): Promise<AddressRecord | null> {
  for (const key of lookupKeys(address)) {
    const found = await storage.users.resolveAddress(key);
    if (found) return found;
  }
  return null;
}

/**
 * The account a login name means: one of its addresses (any case, `+tag`, IDN) or its username. Cheap (lookups,
 * no hashing): the failed-login limits (plugins/login-limits.ts) resolve with it before the password check, so
 * every name of an account shares one budget, and checkCredentials resolves with it too. Disabled users are
 * returned as they are.
 */
export async function resolveLogin(storage: UserLookup, login: string): Promise<UserRecord | null> {
  if (login.includes('@')) {
    const address = await resolveAddress(storage, login).catch(() => null);
    if (address) {
      const user = await storage.users.get(address.userId);
      if (user) return user;
    }
  }
  return findUser(storage, login);
}

let dummy: Promise<string> | null = null;
function dummyHash(): Promise<string> {
  dummy ??= hashPassword('not a password');
  return dummy;
}

export interface CheckOptions {
  /** Bounds and shares the scrypt work (storage/password-check.ts); without it each check hashes at once. */
  checker?: PasswordChecker;
  /** The client's network, the checker's fairness key. */
  client?: string;
}

/**
 * Checks a login name (username or one of the user's addresses) and password for a scope: 'master' (the
 * account password only: HTTP API, account changes) or a protocol ('imap', 'pop3', 'smtp'), where the user's
 * application-specific passwords for that scope are accepted too. ASPs are only tried when the password has
 * their shape (16 letters), and before the account password because their hash is cheap
 * (storage/app-passwords.ts), so ordinary logins cost exactly what they did before. Unknown and disabled logins
 * cost one check of a dummy hash, so response time does not reveal which logins exist. With a checker, a full
 * queue throws StorageError UNAVAILABLE.
 */
export async function checkCredentials(storage: StoragePorts, login: string, password: string, scope = 'master', options: CheckOptions = {}): Promise<UserRecord | null> {
  const { checker, client } = options;
  const verify = (encoded: string | null, userId?: string) => (checker ? checker.verify(encoded, password, { client, userId }) : verifyPassword(encoded, password));
  const user = await resolveLogin(storage, login);
  if (!user || user.disabled) {
    await verify(await dummyHash());
    return null;
  }
  if (scope !== 'master' && looksLikeAppPassword(password) && (await matchAppPassword(storage, user.id, password, scope))) return user;
  return (await verify(user.passwordHash, user.id)) ? user : null;
}
