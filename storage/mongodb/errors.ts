/**
 * Driver errors as the ports report them. Every MongoDB port runs its driver calls through `mongoCall` (or maps a
 * caught error with `mongoError`), so an outage is a StorageError('UNAVAILABLE') whichever port met it: the
 * protocols answer it with a temporary failure (IMAP NO [UNAVAILABLE], LMTP 451 4.3.0, POP3 -ERR [SYS/TEMP], HTTP
 * 503), and the driver reconnects by itself when the server is back.
 */
import {
  MongoClientClosedError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
} from 'mongodb';
import { StorageError } from '../ports.ts';

/** MongoDB's duplicate key error (a unique index refused the write). */
export const DUPLICATE_KEY = 11000;

/**
 * Server error codes that mean "try again later": no primary (elections, step-downs), shutting down, timed out,
 * network trouble between a mongos and its shards, write concern not reached in time.
 */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * Socket errors that reach a caller unwrapped (Deno's node:net reports a write to a connection the server closed as a
 * plain Error with code EPIPE, which the driver passes through as it is).
 */
const SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Labels the driver and servers put on errors a retry may cure. */
const UNAVAILABLE_LABELS = ['RetryableWriteError', 'ResetPool', 'TransientTransactionError', 'SystemOverloadedError'];

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** Whether a unique index refused the write (also inside a bulk write's first write error). */
export function isDuplicateKey(err: unknown): boolean {
  if (codeOf(err) === DUPLICATE_KEY) return true;
  const writeErrors = typeof err === 'object' && err !== null ? (err as { writeErrors?: unknown }).writeErrors : undefined;
  const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
  return list.some((e) => codeOf(e) === DUPLICATE_KEY);
}

/** Whether a driver error means the database cannot be reached now (unreachable, timed out, no primary). */
export function isUnavailable(err: unknown): boolean {
  if (
    err instanceof MongoNetworkError || // MongoNetworkTimeoutError too
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError ||
    err instanceof MongoServerClosedError ||
    err instanceof MongoClientClosedError ||
    err instanceof MongoOperationTimeoutError ||
    err instanceof MongoWriteConcernError
  ) {
    return true;
  }
  // not exported by the driver: a pool closed under an operation, no connection free in time
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  if (name === 'MongoPoolClosedError' || name === 'MongoWaitQueueTimeoutError') return true;
  const code = codeOf(err);
  if (typeof code === 'number' && UNAVAILABLE_CODES.has(code)) return true;
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true;
  const labels = typeof err === 'object' && err !== null ? (err as { hasErrorLabel?: (label: string) => boolean }).hasErrorLabel : undefined;
  return typeof labels === 'function' && UNAVAILABLE_LABELS.some((l) => labels.call(err, l));
}

/**
 * The error a port throws for `err`: StorageErrors as they are, an outage as UNAVAILABLE (naming MongoDB and the
 * driver's reason), anything else (a bug, a refused document) unchanged.
 */
export function mongoError(err: unknown): unknown {
  if (err instanceof StorageError) return err;
  if (isUnavailable(err)) return new StorageError('UNAVAILABLE', `MongoDB is unavailable: ${(err as Error).message}`);
  return err;
}

/** Runs one port operation, mapping what it throws with `mongoError`. */
export async function mongoCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mongoError(err);
  }
}

/**
 * The port with every method's rejection mapped by `mongoError` (methods run on the port itself, so its private
 * fields work). A method that returns no promise is passed through unchanged.
 */
export function mongoPort<T extends object>(port: T): T {
  return new Proxy(port, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(mongoError(err))) : result;
      };
    },
  });
}
