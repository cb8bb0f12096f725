/**
 * Account pipeline, per-user documents: application passwords, API access tokens, filters, the autoreply and the
 * delivery settings (forwarding targets, spam level). Same layout as account.ts: validate, before-hook, the storage
 * plugin's commit, after-hook (generated passwords and tokens removed from what observers see).
 */
import type { HookContext } from '../context.ts';
import type {
  AppPasswordChange,
  AppPasswordResult,
  AutoreplyChange,
  AutoreplyResult,
  DeliverySettings,
  FilterChange,
  FilterResult,
  SettingsChange,
  TokenChange,
  TokenResult,
} from '../types.ts';
import { fail } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { invalidInput, runAccountChange, validationVerdict } from './account.ts';
import type { AccountTriplet } from './account.ts';
import type { PipelineApp } from './run.ts';
import { autoreplySchema, deliverySettingsSchema, filterSchema, parse } from '../../storage/delivery-settings.ts';
import type { AutoreplyData, FilterData } from '../../storage/delivery-settings.ts';
import type { AspScope } from '../../storage/app-passwords.ts';
import { normalizeAppPassword } from '../../storage/app-passwords.ts';
import type { Id } from '../../storage/ports.ts';

function hooksOf(app: PipelineApp, kind: 'AppPassword' | 'Token' | 'Filter' | 'Autoreply' | 'Settings'): AccountTriplet {
  const h = app.hooks.account;
  switch (kind) {
    case 'AppPassword':
      return { before: h.beforeAppPassword, commit: h.appPassword, after: h.afterAppPassword };
    case 'Token':
      return { before: h.beforeToken, commit: h.token, after: h.afterToken };
    case 'Filter':
      return { before: h.beforeFilter, commit: h.filter, after: h.afterFilter };
    case 'Autoreply':
      return { before: h.beforeAutoreply, commit: h.autoreply, after: h.afterAutoreply };
    case 'Settings':
      return { before: h.beforeSettings, commit: h.settings, after: h.afterSettings };
  }
}

// --- application passwords ------------------------------------------------------------------------------

export interface NewAppPassword {
  description: string;
  scopes: readonly AspScope[];
  /** A pregenerated password (16 latin letters, spaces ignored); generated when absent. */
  password?: string;
  /** Seconds of validity, renewed on every use. */
  ttl?: number | null;
}

/** Creates an application password; the clear password is in the answer once (never shown to after-hooks). */
export function createAppPassword(app: PipelineApp, ctx: HookContext, userId: Id, input: NewAppPassword): Promise<OperationResult<AppPasswordResult>> {
  if (input.password !== undefined && !/^[a-z]{16}$/.test(normalizeAppPassword(input.password))) {
    return Promise.resolve(fail(invalidInput('password: an application password is 16 latin letters')));
  }
  const scopes: AspScope[] = input.scopes.includes('*') ? ['*'] : [...new Set(input.scopes)];
  const change: AppPasswordChange = Object.freeze({
    action: 'create',
    userId,
    appPasswordId: null,
    description: input.description,
    scopes: Object.freeze(scopes),
    ttl: input.ttl ?? null,
    ...(input.password !== undefined ? { password: normalizeAppPassword(input.password) } : {}),
  });
  return runAccountChange(ctx, hooksOf(app, 'AppPassword'), change, { input: ['password'], result: ['password'] });
}

/** Deletes an application password; NONEXISTENT when the user has none with this id. */
export function deleteAppPassword(app: PipelineApp, ctx: HookContext, userId: Id, appPasswordId: Id): Promise<OperationResult<AppPasswordResult>> {
  const change: AppPasswordChange = Object.freeze({ action: 'delete', userId, appPasswordId });
  return runAccountChange(ctx, hooksOf(app, 'AppPassword'), change);
}

// --- access tokens --------------------------------------------------------------------------------------

/** Issues an API access token for the user, valid `config.api.tokenTtlSeconds`; the clear token is in the answer once. */
export function issueToken(app: PipelineApp, ctx: HookContext, userId: Id, now = Date.now()): Promise<OperationResult<TokenResult>> {
  const change: TokenChange = Object.freeze({
    action: 'create',
    userId,
    tokenId: null,
    expires: now + app.config.api.tokenTtlSeconds * 1000,
    remoteAddress: ctx.session.remoteAddress,
  });
  return runAccountChange(ctx, hooksOf(app, 'Token'), change, { result: ['token'] });
}

/** Revokes one token of the user, or all of them (`tokenId` null). */
export function revokeTokens(app: PipelineApp, ctx: HookContext, userId: Id, tokenId: Id | null): Promise<OperationResult<TokenResult>> {
  const change: TokenChange = Object.freeze({ action: 'delete', userId, tokenId });
  return runAccountChange(ctx, hooksOf(app, 'Token'), change);
}

// --- filters --------------------------------------------------------------------------------------------

/**
 * Creates a filter (`filterId` null) or replaces filter `filterId` with `input` (the whole filter, validated with
 * storage/delivery-settings.ts filterSchema); NONEXISTENT when there is no such filter.
 */
export function putFilter(app: PipelineApp, ctx: HookContext, userId: Id, input: unknown, filterId: Id | null = null): Promise<OperationResult<FilterResult>> {
  let filter: FilterData;
  try {
    filter = parse(filterSchema, input);
  } catch (err) {
    return Promise.resolve(fail(validationVerdict(err)));
  }
  const change: FilterChange = Object.freeze({ action: filterId === null ? 'create' : 'update', userId, filterId, filter });
  return runAccountChange(ctx, hooksOf(app, 'Filter'), change);
}

export function deleteFilter(app: PipelineApp, ctx: HookContext, userId: Id, filterId: Id): Promise<OperationResult<FilterResult>> {
  const change: FilterChange = Object.freeze({ action: 'delete', userId, filterId });
  return runAccountChange(ctx, hooksOf(app, 'Filter'), change);
}

// --- autoreply ------------------------------------------------------------------------------------------

/** Sets the whole autoreply (validated with autoreplySchema). */
export function setAutoreply(app: PipelineApp, ctx: HookContext, userId: Id, input: unknown): Promise<OperationResult<AutoreplyResult>> {
  let autoreply: AutoreplyData;
  try {
    autoreply = parse(autoreplySchema, input);
  } catch (err) {
    return Promise.resolve(fail(validationVerdict(err)));
  }
  const change: AutoreplyChange = Object.freeze({ action: 'set', userId, autoreply });
  return runAccountChange(ctx, hooksOf(app, 'Autoreply'), change);
}

/** `off`: stop replying, keeping the text for next time; `delete`: remove the autoreply. */
export function stopAutoreply(app: PipelineApp, ctx: HookContext, userId: Id, action: 'off' | 'delete'): Promise<OperationResult<AutoreplyResult>> {
  const change: AutoreplyChange = Object.freeze({ action, userId });
  return runAccountChange(ctx, hooksOf(app, 'Autoreply'), change);
}

// --- delivery settings (forwarding, spam level) ---------------------------------------------------------

/** Changes some delivery settings (forwarding targets, spam level), keeping the others. */
export function updateSettings(app: PipelineApp, ctx: HookContext, userId: Id, changes: SettingsChange['changes']): Promise<OperationResult<DeliverySettings>> {
  let checked: SettingsChange['changes'];
  try {
    const parsed = parse(deliverySettingsSchema, { forward: changes.forward ?? [], spamLevel: changes.spamLevel ?? null });
    checked = Object.freeze({
      ...(changes.forward !== undefined ? { forward: Object.freeze([...parsed.forward]) } : {}),
      ...(changes.spamLevel !== undefined ? { spamLevel: parsed.spamLevel } : {}),
    });
  } catch (err) {
    return Promise.resolve(fail(validationVerdict(err)));
  }
  const change: SettingsChange = Object.freeze({ action: 'update', userId, changes: checked });
  return runAccountChange(ctx, hooksOf(app, 'Settings'), change);
}
