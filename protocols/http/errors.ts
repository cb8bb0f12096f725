/**
 * The HTTP API's error catalogue and the one place where pipeline verdicts become HTTP statuses.
 *
 * Every error response has WildDuck's shape: `{ error: "<message for people>", code: "<stable code>" }`, plus
 * `details` for validation failures. Errors raised by the HTTP layer use the CamelCase codes below (WildDuck's
 * names where it has one); verdicts from the pipeline keep their catalogue code (`OVERQUOTA`, `ALREADYEXISTS`,
 * ...), as WildDuck's own API does for mailbox and message errors.
 */
import type { Verdict } from '../../hooks/verdict.ts';

/** HTTP-layer errors: code → status and default message. */
export const HTTP_ERRORS = Object.freeze({
  InputValidationError: { status: 400, message: 'Invalid input' },
  InvalidJson: { status: 400, message: 'Request body is not valid JSON' },
  UnsupportedMediaType: { status: 415, message: 'Request body must be application/json' },
  PayloadTooLarge: { status: 413, message: 'Request body too large' },
  AuthRequired: { status: 401, message: 'Access token required' },
  InvalidToken: { status: 401, message: 'Invalid or expired access token' },
  MissingPrivileges: { status: 403, message: 'Not allowed with this access token' },
  AuthFailed: { status: 403, message: 'Authentication failed' },
  UserNotFound: { status: 404, message: 'Unknown user' },
  AddressNotFound: { status: 404, message: 'Unknown address' },
  NoSuchMailbox: { status: 404, message: 'Unknown mailbox' },
  AspNotFound: { status: 404, message: 'Unknown application-specific password' },
  MessageNotFound: { status: 404, message: 'Unknown message' },
  AttachmentNotFound: { status: 404, message: 'Unknown attachment' },
  FilterNotFound: { status: 404, message: 'Unknown filter' },
  AutoreplyNotFound: { status: 404, message: 'No autoreply set' },
  MessageNotDraft: { status: 400, message: 'This message is not a draft' },
  UserExistsError: { status: 409, message: 'This username already exists' },
  AddressExistsError: { status: 409, message: 'This address already exists' },
  NotFound: { status: 404, message: 'Unknown route' },
  MethodNotAllowed: { status: 405, message: 'Method not allowed' },
  StorageUnavailable: { status: 503, message: 'Storage is not reachable' },
  InternalError: { status: 500, message: 'Internal error' },
});

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** Thrown by route handlers (and the framework) for an expected client-visible failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(code: HttpErrorCode, message?: string, details?: unknown);
  constructor(code: string, message: string, details: unknown, status: number);
  constructor(code: string, message?: string, details?: unknown, status?: number) {
    const known = (HTTP_ERRORS as Record<string, { status: number; message: string } | undefined>)[code];
    super(message ?? known?.message ?? code);
    this.name = 'ApiError';
    this.code = code;
    this.status = status ?? known?.status ?? 500;
    this.details = details;
  }
}

/**
 * Verdict code → HTTP status for `deny` (and `disconnect`, which HTTP treats the same). Codes not listed are
 * plugin codes: a deny is 403, a tempfail 503.
 */
const DENY_STATUS: Readonly<Record<string, number>> = Object.freeze({
  OVERQUOTA: 403,
  TOOBIG: 413,
  NONEXISTENT: 404,
  ALREADYEXISTS: 409,
  CANNOT: 403,
  NOPERM: 403,
  AUTHENTICATIONFAILED: 403,
  AUTHORIZATIONFAILED: 403,
  EXPIRED: 403,
  PRIVACYREQUIRED: 403,
  CONTACTADMIN: 403,
  CLIENTBUG: 400,
  LIMIT: 429,
  INUSE: 409,
});

/** Temporary refusals: rate limits are 429 (retry later, client's doing); everything else 503. */
const TEMPFAIL_STATUS: Readonly<Record<string, number>> = Object.freeze({ LIMIT: 429 });

/** The one mapping from a protocol-neutral verdict to an HTTP error. */
export function verdictToHttp(verdict: Verdict): ApiError {
  const status = verdict.action === 'tempfail' ? (TEMPFAIL_STATUS[verdict.code] ?? 503) : (DENY_STATUS[verdict.code] ?? 403);
  return new ApiError(verdict.code, verdict.message, undefined, status);
}

/** What goes on the wire for an error. */
export function errorBody(err: ApiError): Record<string, unknown> {
  const body: Record<string, unknown> = { error: err.message, code: err.code };
  if (err.details !== undefined) body.details = err.details;
  return body;
}
