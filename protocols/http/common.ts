/** Small pieces the route files share: id parameters, query booleans, result unwrapping, record shapes. */
import { z } from 'zod';
import type { OperationResult } from '../../hooks/verdict.ts';
import { AddressError } from '../../storage/addresses.ts';
import { StorageError } from '../../storage/ports.ts';
import type { StoragePorts, UserRecord } from '../../storage/ports.ts';
import { ApiError, verdictToHttp } from './errors.ts';
import type { HttpErrorCode } from './errors.ts';

/**
 * An object id (user, mailbox, address, ASP, filter, ...) in a path, query or body: 24 hex digits, the shape of a
 * MongoDB ObjectId, which both backends hand out (storage/sqlite/common.ts); lowercased, as WildDuck does. Anything
 * else is 400 InputValidationError before storage is asked. `words` are literal values the parameter also takes
 * (`resolve` for `:mailbox`). `me` for `:user` is replaced by the framework before validation. Message ids in
 * WildDuck's routes are UIDs (numbers), not object ids.
 */
export function id(what: string, ...words: string[]) {
  const pattern = new RegExp(`^(?:[0-9a-fA-F]{24}${words.map((w) => `|${w}`).join('')})$`);
  return z.string().regex(pattern, 'expected an id of 24 hex digits').toLowerCase().describe(`ID of the ${what}`);
}

export const userParams = z.object({ user: id('user') });

/** A query-string boolean: true/false, 1/0, yes/no (WildDuck clients send all of them). */
export const queryBool = (description: string) => z.stringbool().optional().describe(description);

/** A pipeline result's value, or the verdict as an HTTP error. */
export function unwrap<T>(result: OperationResult<T>): T {
  if (!result.ok) throw verdictToHttp(result.verdict);
  return result.value;
}

/**
 * An account pipeline result's value (hooks/pipeline/account*.ts), or its verdict as an HTTP error: NONEXISTENT and
 * ALREADYEXISTS with the route's codes, CLIENTBUG (bad input, named by the pipeline) as 400 InputValidationError
 * (with `body.` paths in `details` when `bodyPaths`), anything else (a plugin's refusal) through verdictToHttp.
 */
export function accountResult<T>(result: OperationResult<T>, codes: { missing?: HttpErrorCode; exists?: HttpErrorCode; bodyPaths?: boolean } = {}): T {
  if (result.ok) return result.value;
  const { verdict } = result;
  if (verdict.action === 'deny') {
    if (verdict.code === 'NONEXISTENT' && codes.missing) throw new ApiError(codes.missing);
    if (verdict.code === 'ALREADYEXISTS' && codes.exists) throw new ApiError(codes.exists);
    if (verdict.code === 'CLIENTBUG') {
      if (!codes.bodyPaths) throw new ApiError('InputValidationError', verdict.message);
      throw new ApiError('InputValidationError', `body.${verdict.message}`, [{ path: `body.${verdict.message.split(':')[0]}`, message: verdict.message }]);
    }
  }
  throw verdictToHttp(verdict);
}

/**
 * Runs a direct storage call (reads, lookups) and turns its expected failures into
 * API errors: NONEXISTENT / ALREADYEXISTS with the route's codes, invalid addresses and names as 400.
 */
export async function storageCall<T>(call: () => Promise<T>, codes: { missing?: HttpErrorCode; exists?: HttpErrorCode } = {}): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof AddressError) throw new ApiError('InputValidationError', err.message);
    if (err instanceof StorageError) {
      if (err.code === 'NONEXISTENT' && codes.missing) throw new ApiError(codes.missing);
      if (err.code === 'ALREADYEXISTS' && codes.exists) throw new ApiError(codes.exists);
      throw verdictToHttp({ action: err.code === 'UNAVAILABLE' ? 'tempfail' : 'deny', code: err.code, message: err.message });
    }
    throw err;
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The user's main address (display form), or '' when they have none. */
export async function mainAddress(storage: StoragePorts, userId: string): Promise<string> {
  const list = await storage.users.listAddresses(userId);
  return (list.find((a) => a.main) ?? list[0])?.display ?? '';
}

/** WildDuck's quota numbers: 0 = no limit. */
export function quotaOf(user: UserRecord) {
  return {
    quota: { allowed: user.quota.storage ?? 0, used: user.storageUsed },
    messages: { allowed: user.quota.messages ?? 0, used: user.messagesUsed },
  };
}
