/**
 * Tagged results and the one mapping of protocol-neutral verdicts to IMAP responses (RFC 5530 response codes).
 * Command handlers return an `Outcome`; the session writes it as `tag OK|NO|BAD [CODE] text`.
 */
import type { Verdict } from '../../hooks/verdict.ts';

export type Status = 'OK' | 'NO' | 'BAD';

export interface Outcome {
  readonly status: Status;
  /** Response code with its arguments, without brackets: `APPENDUID 38505 3955`, `TRYCREATE`. */
  readonly code?: string | null;
  readonly text: string;
  /** Say BYE and close the connection after the tagged response. */
  readonly close?: boolean;
  /** Runs once the tagged response is on the wire (STARTTLS starts the handshake here). */
  readonly after?: () => Promise<void>;
  /** A plugin command answered with sequence numbers (SORT, THREAD): no EXPUNGE responses with it (RFC 3501 §7.4.1). */
  readonly expunge?: boolean;
}

export function ok(text: string, code: string | null = null): Outcome {
  return { status: 'OK', code, text };
}

export function no(text: string, code: string | null = null): Outcome {
  return { status: 'NO', code, text };
}

export function bad(text: string, code: string | null = null): Outcome {
  return { status: 'BAD', code, text };
}

/** `tag STATUS [CODE] text` (without CRLF). Text is made single-line. */
export function statusLine(tag: string, status: Status | 'BYE' | 'PREAUTH', code: string | null | undefined, text: string): string {
  const clean = text.replace(/[\r\n\0]+/g, ' ').trim() || status;
  return `${tag} ${status} ${code ? `[${code}] ` : ''}${clean}`;
}

/** Codes RFC 5530 (and RFC 3501, 4315, 7162, 7889) define, passed through as they are. */
const WIRE_CODES: ReadonlySet<string> = new Set([
  'ALERT',
  'ALREADYEXISTS',
  'AUTHENTICATIONFAILED',
  'AUTHORIZATIONFAILED',
  'CANNOT',
  'CLIENTBUG',
  'CONTACTADMIN',
  'CORRUPTION',
  'EXPIRED',
  'EXPUNGEISSUED',
  'INUSE',
  'LIMIT',
  'NONEXISTENT',
  'NOPERM',
  'OVERQUOTA',
  'PRIVACYREQUIRED',
  'SERVERBUG',
  'TOOBIG',
  'UNAVAILABLE',
]);

export interface VerdictOptions {
  /** The verdict concerns the target mailbox of APPEND, COPY or MOVE: NONEXISTENT becomes TRYCREATE (RFC 3501). */
  target?: boolean;
}

/**
 * The single place a verdict becomes an IMAP response:
 * - `deny` → `NO [CODE]`, with NONEXISTENT as `[TRYCREATE]` for APPEND/COPY/MOVE targets;
 * - `tempfail` → `NO [CODE]` for the RFC 5530 temporary codes (INUSE, LIMIT, UNAVAILABLE, SERVERBUG), anything
 *   else temporary (TIMEOUT, a plugin's own code) as `[UNAVAILABLE]`;
 * - `disconnect` → `NO [CODE]`, then BYE and close.
 * A plugin's own code that is a valid atom is passed through on `deny` (clients ignore codes they don't know).
 * Verdict messages are written for clients already (never internal detail).
 */
export function verdictOutcome(verdict: Verdict, options: VerdictOptions = {}): Outcome {
  let code: string | null = verdict.code.toUpperCase();
  if (code === 'NONEXISTENT' && options.target) code = 'TRYCREATE';
  else if (verdict.action === 'tempfail') code = code === 'INUSE' || code === 'LIMIT' || code === 'SERVERBUG' ? code : 'UNAVAILABLE';
  else if (!WIRE_CODES.has(code) && !/^[A-Z][A-Z0-9-]{0,40}$/.test(code)) code = null;
  return { status: 'NO', code, text: verdict.message, close: verdict.action === 'disconnect' };
}

/** For a thrown error (a bug or an outage): the client sees only this; the error goes to the log. */
export const SERVER_ERROR: Outcome = Object.freeze({ status: 'NO', code: 'SERVERBUG', text: 'Internal server error, try again later' });
