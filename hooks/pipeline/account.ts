/**
 * Account pipeline, users and addresses: every front end (HTTP API, CLI) changes accounts through these functions.
 * Each one validates and normalizes its input (a bad value is a CLIENTBUG verdict naming it), runs the kind's
 * before-hook (plugins refuse with a Verdict), the do-hook (the storage plugin commits at COMMIT) and the
 * after-hook (observers; clear passwords removed). Application passwords, tokens and delivery rules are in
 * account-documents.ts.
 */
import type { HookContext } from '../context.ts';
import type { AddressChange, UserChange } from '../types.ts';
import { deny, fail, ok } from '../verdict.ts';
import type { OperationResult, Verdict } from '../verdict.ts';
import { runAfter, runBefore, runCommit } from './run.ts';
import type { PipelineApp } from './run.ts';
import { createMailbox } from './mailboxes.ts';
import { AddressError, normalizeAddress, validateNewUsername } from '../../storage/addresses.ts';
import { DeliverySettingsError } from '../../storage/delivery-settings.ts';
import { specialMailboxNames } from '../../storage/mailbox-names.ts';
import type { SpecialMailboxNames } from '../../storage/mailbox-names.ts';
import { defaultMailboxes, normalizeTags } from '../../storage/users.ts';
import type { AddressRecord, Id, QuotaLimits, UserRecord } from '../../storage/ports.ts';

/** A refusal for bad input: the message names the bad value. Protocols show it as their input error. */
export function invalidInput(message: string): Verdict {
  return deny('CLIENTBUG', message);
}

/** Validation errors of the storage helpers become CLIENTBUG verdicts; anything else is rethrown (a bug). */
export function validationVerdict(err: unknown): Verdict {
  if (err instanceof AddressError || err instanceof DeliverySettingsError || err instanceof RangeError) return invalidInput(err.message);
  throw err;
}

/** A copy without the named secret fields, for after-hooks. */
export function withoutSecrets<T extends object>(value: T, ...fields: string[]): T {
  const copy = { ...value } as Record<string, unknown>;
  for (const field of fields) delete copy[field];
  return Object.freeze(copy) as T;
}

export interface AccountTriplet {
  readonly before: { promise(...args: any[]): Promise<unknown>; name?: string };
  readonly commit: { promise(...args: any[]): Promise<unknown>; name?: string };
  readonly after: { promise(...args: any[]): Promise<unknown>; name?: string };
}

/** before → commit → after, the after-hook seeing the change and the result without their secret fields. */
export async function runAccountChange<I extends object, R extends object>(
  ctx: HookContext,
  hooks: AccountTriplet,
  change: I,
  secrets: { input?: string[]; result?: string[] } = {},
): Promise<OperationResult<R>> {
  const refused = await runBefore(ctx, hooks.before, [ctx, change]);
  if (refused) return fail(refused);
  const committed = await runCommit<R>(ctx, hooks.commit, [ctx, change]);
  if (!committed.ok) return committed;
  await runAfter(ctx, hooks.after, [ctx, withoutSecrets(change, ...(secrets.input ?? [])), withoutSecrets(committed.value, ...(secrets.result ?? []))]);
  return committed;
}

function userHooks(app: PipelineApp): AccountTriplet {
  const h = app.hooks.account;
  return { before: h.beforeUser, commit: h.user, after: h.afterUser };
}

function addressHooks(app: PipelineApp): AccountTriplet {
  const h = app.hooks.account;
  return { before: h.beforeAddress, commit: h.address, after: h.afterAddress };
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

// --- users ----------------------------------------------------------------------------------------------

export interface NewUser {
  username: string;
  /** null: the user cannot log in with a password. */
  password: string | null;
  name?: string;
  /** Addresses as typed; the first is the main one. */
  addresses?: readonly string[];
  /** Over the server defaults (`users.quota`). */
  quota?: Partial<QuotaLimits>;
  tags?: readonly string[];
  /** Names the special-use mailboxes in this language (storage/mailbox-names.ts). */
  language?: string;
  /** Explicit special-use mailbox names, over the language's. */
  mailboxes?: Partial<SpecialMailboxNames>;
}

export interface CreatedUser {
  user: UserRecord;
  addresses: AddressRecord[];
}

/**
 * Creates a user: `account.beforeUser` (action 'create'), the commit, then each address through
 * `account.beforeAddress` and its commit, then the default mailboxes through `createMailbox` (the `mailbox.*`
 * hooks); any refusal on the way removes the user again (the `account.user` commit with action 'delete', no hooks
 * around it) and answers that refusal. The after-hooks run once everything is in: `account.afterUser`, then
 * `account.afterAddress` per address.
 */
export async function createUser(app: PipelineApp, ctx: HookContext, input: NewUser): Promise<OperationResult<CreatedUser>> {
  let username: string;
  let addresses: Array<{ address: string; display: string }>;
  try {
    username = validateNewUsername(input.username);
    addresses = (input.addresses ?? []).map((a) => ({ address: normalizeAddress(a).address, display: a.trim() }));
  } catch (err) {
    return fail(validationVerdict(err));
  }
  const names = specialMailboxNames(app.config.users.mailboxes, input.language, input.mailboxes);
  const lower = Object.values(names).map((n) => n.toLowerCase());
  if (new Set(lower).size !== lower.length) return fail(invalidInput('mailboxes: special-use mailbox names must differ'));

  const h = app.hooks.account;
  const change: UserChange = Object.freeze({
    action: 'create',
    userId: null,
    username,
    name: input.name ?? '',
    password: input.password,
    quota: Object.freeze({ storage: app.config.users.quota.storage, messages: app.config.users.quota.messages, ...input.quota }),
    tags: Object.freeze(normalizeTags(input.tags ?? [])),
    addresses: Object.freeze(addresses.map((a) => a.address)),
  });
  const refused = await runBefore(ctx, h.beforeUser, [ctx, change]);
  if (refused) return fail(refused);
  const committed = await runCommit<UserRecord>(ctx, h.user, [ctx, change]);
  if (!committed.ok) return committed;
  const user = committed.value;

  const undo = async (verdict: Verdict): Promise<OperationResult<CreatedUser>> => {
    const undone = await runCommit<UserRecord>(ctx, h.user, [ctx, Object.freeze({ action: 'delete', userId: user.id, username: user.username } satisfies UserChange)]);
    if (!undone.ok) ctx.log.error('could not remove a half-created user', { user: user.id, code: undone.verdict.code });
    return fail(verdict);
  };

  const added: Array<{ change: AddressChange; record: AddressRecord }> = [];
  for (const [i, a] of addresses.entries()) {
    const addressChange: AddressChange = Object.freeze({ action: 'add', userId: user.id, address: a.address, domain: domainOf(a.address), addressId: null, display: a.display, main: i === 0 });
    const refusedAddress = await runBefore(ctx, h.beforeAddress, [ctx, addressChange]);
    if (refusedAddress) return undo(refusedAddress);
    const record = await runCommit<AddressRecord>(ctx, h.address, [ctx, addressChange]);
    if (!record.ok) return undo(record.verdict);
    added.push({ change: addressChange, record: record.value });
  }
  for (const mailbox of defaultMailboxes(names)) {
    const made = await createMailbox(app, ctx, { userId: user.id, path: mailbox.path, specialUse: mailbox.specialUse, subscribed: true });
    if (!made.ok) return undo(made.verdict);
  }

  await runAfter(ctx, h.afterUser, [ctx, withoutSecrets(change, 'password'), user]);
  for (const { change: addressChange, record } of added) await runAfter(ctx, h.afterAddress, [ctx, addressChange, record]);
  return ok({ user, addresses: added.map((a) => a.record) });
}

/** What can change on an existing user (UserChange without the fields the pipeline fills in). */
export type UserUpdate =
  | { action: 'update'; name?: string; quota?: Partial<QuotaLimits>; tags?: readonly string[] }
  | { action: 'password'; password: string | null }
  | { action: 'disable' | 'enable' | 'delete' | 'recalculate' };

/** Changes or deletes an existing user; NONEXISTENT when there is none with this id. */
export async function changeUser(app: PipelineApp, ctx: HookContext, userId: Id, update: UserUpdate): Promise<OperationResult<UserRecord>> {
  const current = await app.storage.users.get(userId);
  if (!current) return fail(deny('NONEXISTENT', 'No such user'));
  const fields: Record<string, unknown> = { ...update };
  if (update.action === 'update') {
    if (update.tags !== undefined) fields.tags = Object.freeze(normalizeTags(update.tags));
    if (update.quota !== undefined) fields.quota = Object.freeze({ ...update.quota });
    for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  }
  const change = Object.freeze({ ...fields, userId, username: current.username }) as UserChange;
  return runAccountChange<UserChange, UserRecord>(ctx, userHooks(app), change, { input: ['password'] });
}

// --- addresses ------------------------------------------------------------------------------------------

/** Adds an address to a user; `main` makes it the main one (the first address always is). */
export async function addAddress(app: PipelineApp, ctx: HookContext, userId: Id, input: { address: string; main?: boolean }): Promise<OperationResult<AddressRecord>> {
  let address: string;
  try {
    address = normalizeAddress(input.address).address;
  } catch (err) {
    return fail(validationVerdict(err));
  }
  const change: AddressChange = Object.freeze({ action: 'add', userId, address, domain: domainOf(address), addressId: null, display: input.address.trim(), main: input.main });
  return runAccountChange<AddressChange, AddressRecord>(ctx, addressHooks(app), change);
}

async function storedAddress(app: PipelineApp, userId: Id, addressId: Id): Promise<{ found: AddressRecord | null; all: AddressRecord[] }> {
  const all = await app.storage.users.listAddresses(userId);
  return { found: all.find((a) => a.id === addressId) ?? null, all };
}

/** Changes how an address is written (it must normalize to the same address) or makes it the main one. */
export async function updateAddress(app: PipelineApp, ctx: HookContext, userId: Id, addressId: Id, input: { display?: string; main?: boolean }): Promise<OperationResult<AddressRecord>> {
  const { found } = await storedAddress(app, userId, addressId);
  if (!found) return fail(deny('NONEXISTENT', 'No such address'));
  if (input.display !== undefined) {
    try {
      if (normalizeAddress(input.display).address !== found.address) return fail(invalidInput('Only the way the address is written can change; add a new address instead'));
    } catch (err) {
      return fail(validationVerdict(err));
    }
  }
  const change: AddressChange = Object.freeze({
    action: 'update',
    userId,
    address: found.address,
    domain: domainOf(found.address),
    addressId,
    ...(input.display !== undefined ? { display: input.display.trim() } : {}),
    ...(input.main !== undefined ? { main: input.main } : {}),
  });
  return runAccountChange<AddressChange, AddressRecord>(ctx, addressHooks(app), change);
}

/** Removes an address; the main one only when it is the user's last. */
export async function deleteAddress(app: PipelineApp, ctx: HookContext, userId: Id, addressId: Id): Promise<OperationResult<AddressRecord>> {
  const { found, all } = await storedAddress(app, userId, addressId);
  if (!found) return fail(deny('NONEXISTENT', 'No such address'));
  if (found.main && all.length > 1) return fail(invalidInput('Make another address the main one before deleting this one'));
  const change: AddressChange = Object.freeze({ action: 'delete', userId, address: found.address, domain: domainOf(found.address), addressId });
  return runAccountChange<AddressChange, AddressRecord>(ctx, addressHooks(app), change);
}
