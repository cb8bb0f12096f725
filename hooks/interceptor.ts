/**
 * The one `register` interceptor every hook gets. It wraps each tap as it is registered, so that in one place:
 * - a tap that takes longer than `timeoutMs` fails the operation with `tempfail TIMEOUT` (its late result is
 *   ignored, a late error is logged at warn); COMMIT-stage taps are exempt (see below);
 * - a tap that throws is logged (`log.error` with fields hook, plugin, err) and fails the operation with
 *   `tempfail SERVERBUG` (or `UNAVAILABLE` for errors with that code) — never a crash;
 * - a tap that throws a `VerdictError` fails the operation with that verdict (logged at debug);
 * - with `trace`, every tap call is logged at debug with its duration.
 * On hooks whose errors are swallowed (`after*`, `session.*`), failures are logged and the next tap runs.
 * Failures leave the hook as a `HookFailure` rejection, which the pipeline functions turn into a verdict.
 */
import type { HookInterceptor } from 'tapable';
import type { Logger } from './log.ts';
import { loggerOf } from './context.ts';
import { HookFailure, VerdictError, tempfail } from './verdict.ts';
import type { Verdict } from './verdict.ts';
import { COMMIT } from './stages.ts';

export interface InterceptorOptions {
  timeoutMs: number;
  trace: boolean;
  /** Used when the hook's arguments carry no context logger. */
  log: Logger;
}

export interface HookPolicy {
  /** Dotted hook name, used in logs and errors. */
  name: string;
  /** Log failures and carry on with the next tap (after* and session hooks). */
  swallowErrors: boolean;
}

/** Extra fields we keep on a tapable tap. */
export interface TapMeta {
  /** Plugin that registered the tap (set by the tap-only view; falls back to the tap name). */
  plugin?: string;
  /** Optional label a plugin gave the tap, for print-hooks. */
  label?: string;
  /** The tap type as registered ('sync' | 'async' | 'promise'); the wrapper itself is always 'promise'. */
  kind?: 'sync' | 'async' | 'promise';
}

type AnyTap = { name: string; type: 'sync' | 'async' | 'promise'; fn: Function; stage?: number } & TapMeta;

const WRAPPED = Symbol('wildduck.wrapped');

class TapTimeout extends Error {}

function invoke(tap: AnyTap, fn: Function, args: unknown[]): Promise<unknown> {
  if (tap.type === 'async') {
    return new Promise((resolve, reject) => {
      fn(...args, (err: unknown, result: unknown) => (err ? reject(err) : resolve(result)));
    });
  }
  // sync and promise taps; a synchronous throw becomes a rejection
  return new Promise((resolve) => resolve(fn(...args)));
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

export function createTapInterceptor(policy: HookPolicy, options: InterceptorOptions): HookInterceptor<any, any> {
  const hook = policy.name;
  return {
    name: 'wildduck',
    register(registered) {
      const tap = registered as unknown as AnyTap;
      if ((tap.fn as { [WRAPPED]?: boolean })[WRAPPED]) return registered;
      const original = tap.fn;
      const plugin = tap.plugin ?? tap.name;
      // A commit that has started must be allowed to finish: cutting it off would answer "try again" for a
      // write that may still land, and a retry would store it twice. Backends bound their own waits
      // (SQLite busy_timeout, MongoDB wtimeoutMS), so COMMIT-stage taps get no tap timeout.
      const committer = tap.stage === COMMIT;

      const wrapped = async (...args: unknown[]): Promise<unknown> => {
        const log = loggerOf(args.find((a) => loggerOf(a) !== null)) ?? options.log;
        const started = performance.now();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const work = invoke(tap, original, args);
        let verdict: Verdict;
        try {
          const result = committer
            ? await work
            : await Promise.race([
                work,
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => reject(new TapTimeout()), options.timeoutMs);
                }),
              ]);
          if (options.trace) {
            log.debug('hook tap', { hook, plugin, ms: Math.round((performance.now() - started) * 10) / 10, outcome: result === undefined ? 'continue' : 'result' });
          }
          return result;
        } catch (err) {
          const ms = Math.round((performance.now() - started) * 10) / 10;
          if (err instanceof TapTimeout) {
            work.then(
              () => log.warn('late hook tap finished after its timeout; result ignored', { hook, plugin }),
              (lateErr: unknown) => log.warn('late hook tap failed after its timeout', { hook, plugin, err: lateErr }),
            );
            log.error('hook tap timed out', { hook, plugin, timeoutMs: options.timeoutMs });
            verdict = tempfail('TIMEOUT', 'Operation timed out, try again later');
          } else if (err instanceof VerdictError) {
            log.debug('hook tap refused', { hook, plugin, code: err.verdict.code });
            verdict = err.verdict;
          } else {
            log.error('hook tap failed', { hook, plugin, err });
            verdict = errorCode(err) === 'UNAVAILABLE' ? tempfail('UNAVAILABLE') : tempfail('SERVERBUG', 'Internal server error, try again later');
          }
          if (options.trace) log.debug('hook tap', { hook, plugin, ms, outcome: verdict.code });
          if (policy.swallowErrors) return undefined;
          throw new HookFailure(verdict, hook, plugin, err);
        } finally {
          clearTimeout(timer);
        }
      };
      Object.defineProperty(wrapped, WRAPPED, { value: true });
      Object.defineProperty(wrapped, 'name', { value: `${hook}:${plugin}` });
      return { ...tap, kind: tap.kind ?? tap.type, type: 'promise', fn: wrapped } as unknown as typeof registered;
    },
  };
}
