/**
 * Shared machinery of the pipeline functions: run a hook and turn what happened into an OperationResult.
 * Pipeline functions are the only callers of `.promise()` on hooks.
 */
import type { Config } from '../config.ts';
import type { HookContext } from '../context.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { AnyHook, Hooks } from '../tree.ts';
import { HookFailure, fail, isVerdict, ok, tempfail } from '../verdict.ts';
import type { OperationResult, Verdict } from '../verdict.ts';
import type { IngestedMessage, StoragePorts } from '../../storage/ports.ts';

/** Parses a message stream into an IngestedMessage, staging its blobs (storage/mime's ingestMessage with limits). */
export type IngestFn = (source: AsyncIterable<Uint8Array>) => Promise<IngestedMessage>;

/** What pipeline functions need from the app (protocols/app.ts `App` satisfies it). */
export interface PipelineApp {
  readonly config: Config;
  readonly log: Logger;
  readonly hooks: Hooks;
  readonly storage: StoragePorts;
  readonly ingest: IngestFn;
  /** The app's metrics registry (hooks/metrics.ts); absent in bare test apps, which then count nothing. */
  readonly metrics?: Metrics;
}

type Promising = { promise(...args: any[]): Promise<unknown>; name?: string };

function hookName(hook: Promising): string {
  return hook.name ?? 'hook';
}

/** Runs a hook; a HookFailure becomes its verdict, anything else (a bug outside any tap) SERVERBUG. */
export async function runHook<R>(ctx: HookContext, hook: Promising, args: unknown[]): Promise<OperationResult<R>> {
  try {
    return ok((await hook.promise(...args)) as R);
  } catch (err) {
    if (err instanceof HookFailure) return fail(err.verdict);
    ctx.log.error('hook failed', { hook: hookName(hook), err });
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }
}

/** Runs a `before*` bail hook. Returns the refusing verdict, or null to go on. */
export async function runBefore(ctx: HookContext, hook: Promising, args: unknown[]): Promise<Verdict | null> {
  const result = await runHook<unknown>(ctx, hook, args);
  if (!result.ok) return result.verdict;
  if (result.value === undefined || result.value === null) return null;
  if (isVerdict(result.value)) return result.value;
  ctx.log.error('a before-hook tap returned something that is not a verdict', { hook: hookName(hook), returned: typeof result.value });
  return tempfail('SERVERBUG', 'Internal server error, try again later');
}

/** Runs a commit (`do`) bail hook: a result, a verdict, or — when no tap answered — UNAVAILABLE. */
export async function runCommit<R>(ctx: HookContext, hook: Promising, args: unknown[]): Promise<OperationResult<R>> {
  const result = await runHook<unknown>(ctx, hook, args);
  if (!result.ok) return result;
  if (result.value === undefined || result.value === null) {
    ctx.log.error('no plugin committed the operation', { hook: hookName(hook) });
    return fail(tempfail('UNAVAILABLE', 'Service temporarily unavailable'));
  }
  if (isVerdict(result.value)) return fail(result.value);
  return ok(result.value as R);
}

/** Runs an `after*` series hook. Never fails the operation: the commit already happened. */
export async function runAfter(ctx: HookContext, hook: Promising, args: unknown[]): Promise<void> {
  const result = await runHook<unknown>(ctx, hook, args);
  if (!result.ok) ctx.log.warn('after-hook failed', { hook: hookName(hook), code: result.verdict.code });
}

export interface Triplet {
  readonly before: Promising;
  readonly commit: Promising;
  readonly after: Promising;
}

/** before(ctx, input) → commit(ctx, input) → after(ctx, input, result). */
export async function runTriplet<I, R>(ctx: HookContext, hooks: Triplet, input: I): Promise<OperationResult<R>> {
  const refused = await runBefore(ctx, hooks.before, [ctx, input]);
  if (refused) return fail(refused);
  const committed = await runCommit<R>(ctx, hooks.commit, [ctx, input]);
  if (!committed.ok) return committed;
  await runAfter(ctx, hooks.after, [ctx, input, committed.value]);
  return committed;
}

/** Normalizes a message source to a stream. */
export function toStream(source: AsyncIterable<Uint8Array> | Uint8Array): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    return (async function* () {
      yield source;
    })();
  }
  return source;
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

export type { AnyHook };
