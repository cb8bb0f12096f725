/**
 * Protocol-neutral outcomes. A `before*` hook returns a verdict to refuse an operation; a pipeline function
 * returns an `OperationResult`. Each protocol turns verdicts into wire replies in exactly one place (IMAP
 * `NO [OVERQUOTA]`, POP3 `-ERR [SYS/TEMP]`, LMTP `452 4.2.2`, HTTP 4xx/5xx with a JSON `code`).
 */

/**
 * - `deny`: refused for good; retrying the same request will fail the same way.
 * - `tempfail`: refused for now (outage, timeout, bug); the client may retry later.
 * - `disconnect`: refuse and close the connection.
 */
export type VerdictAction = 'deny' | 'tempfail' | 'disconnect';

export interface Verdict {
  readonly action: VerdictAction;
  /** An error code from `ERROR_CODES` (plugins may add their own, upper case). */
  readonly code: string;
  /** Human-readable, safe to show to the client. Never a stack trace or internal detail. */
  readonly message: string;
}

/**
 * The error-code catalogue. Names follow RFC 5530 (IMAP response codes) where one exists, so the IMAP mapping
 * is the identity; `temporary` says whether the condition is expected to go away by itself.
 */
export const ERROR_CODES = Object.freeze({
  OVERQUOTA: { temporary: false, message: 'Quota exceeded' },
  TOOBIG: { temporary: false, message: 'Message too big' },
  NONEXISTENT: { temporary: false, message: 'No such object' },
  ALREADYEXISTS: { temporary: false, message: 'Already exists' },
  CANNOT: { temporary: false, message: 'Operation not allowed' },
  NOPERM: { temporary: false, message: 'Permission denied' },
  AUTHENTICATIONFAILED: { temporary: false, message: 'Authentication failed' },
  AUTHORIZATIONFAILED: { temporary: false, message: 'Not authorized' },
  EXPIRED: { temporary: false, message: 'Credentials expired' },
  PRIVACYREQUIRED: { temporary: false, message: 'Encrypted connection required' },
  CONTACTADMIN: { temporary: false, message: 'Contact your administrator' },
  CLIENTBUG: { temporary: false, message: 'Invalid request' },
  INUSE: { temporary: true, message: 'Object in use, try again later' },
  LIMIT: { temporary: true, message: 'Rate or resource limit reached' },
  UNAVAILABLE: { temporary: true, message: 'Service temporarily unavailable' },
  SERVERBUG: { temporary: true, message: 'Internal server error' },
  TIMEOUT: { temporary: true, message: 'Operation timed out' },
});

export type ErrorCode = keyof typeof ERROR_CODES;

const ACTIONS: ReadonlySet<string> = new Set(['deny', 'tempfail', 'disconnect']);

function make(action: VerdictAction, code: ErrorCode | (string & {}), message?: string): Verdict {
  const known = (ERROR_CODES as Record<string, { message: string } | undefined>)[code];
  return Object.freeze({ action, code, message: message ?? known?.message ?? code });
}

/** A permanent refusal. `message` defaults to the catalogue's text for the code. */
export function deny(code: ErrorCode | (string & {}), message?: string): Verdict {
  return make('deny', code, message);
}

/** A temporary refusal: the client may retry. */
export function tempfail(code: ErrorCode | (string & {}), message?: string): Verdict {
  return make('tempfail', code, message);
}

/** Refuse and close the connection. */
export function disconnect(code: ErrorCode | (string & {}), message?: string): Verdict {
  return make('disconnect', code, message);
}

/** True for anything shaped like a verdict (how bail hooks tell a refusal from a committed result). */
export function isVerdict(value: unknown): value is Verdict {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { action?: unknown; code?: unknown; message?: unknown };
  return typeof v.action === 'string' && ACTIONS.has(v.action) && typeof v.code === 'string' && typeof v.message === 'string';
}

export type OperationResult<T> = { ok: true; value: T } | { ok: false; verdict: Verdict };

export function ok<T>(value: T): OperationResult<T> {
  return { ok: true, value };
}

export function fail<T = never>(verdict: Verdict): OperationResult<T> {
  return { ok: false, verdict };
}

/**
 * Thrown by a tap to refuse with a specific verdict where the hook has no way to return one (a waterfall such as
 * `message.prepare`, or inside the stream it returns). Not logged as an error.
 */
export class VerdictError extends Error {
  readonly verdict: Verdict;
  constructor(verdict: Verdict) {
    super(`${verdict.action} ${verdict.code}: ${verdict.message}`);
    this.name = 'VerdictError';
    this.verdict = verdict;
  }
}

/**
 * What the interceptor throws out of a hook when a tap failed, timed out or threw a VerdictError: the verdict
 * for the operation plus the labels. Pipeline functions turn it into `{ ok: false, verdict }`.
 */
export class HookFailure extends Error {
  readonly verdict: Verdict;
  readonly hook: string;
  readonly plugin: string;
  constructor(verdict: Verdict, hook: string, plugin: string, cause?: unknown) {
    super(`${hook} (${plugin}): ${verdict.action} ${verdict.code}: ${verdict.message}`, cause === undefined ? undefined : { cause });
    this.name = 'HookFailure';
    this.verdict = verdict;
    this.hook = hook;
    this.plugin = plugin;
  }
}
