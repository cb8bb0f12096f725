/**
 * The app behind the `wildduck` account commands: booted like the server (config, storage, every plugin), with no
 * listeners, so `wildduck user add` runs the same plugins as `POST /users`. Commands write through the account
 * pipeline functions (hooks/pipeline/account*.ts) and read through the app's storage; a pipeline refusal becomes a
 * VerdictError, which protocols/cli/main.ts prints (reason and code) before exiting non-zero.
 */
import type { Config } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import { internalContext } from '../../hooks/context.ts';
import type { HookContext } from '../../hooks/context.ts';
import type { PipelineApp } from '../../hooks/pipeline/index.ts';
import { VerdictError } from '../../hooks/verdict.ts';
import type { OperationResult, Verdict } from '../../hooks/verdict.ts';
import { bootApp } from '../server.ts';

/** What a command gets: the app (pipeline functions take it) and a context for its operations. */
export interface CliApp {
  readonly app: PipelineApp;
  readonly ctx: HookContext;
}

/** Boots the app (plugins loaded, no listeners), runs `fn`, closes the app. Logs below warnings stay quiet. */
export async function withApp<T>(config: Config, fn: (cli: CliApp) => Promise<T>): Promise<T> {
  const log = createLogger({ level: 'warn', format: config.log.format });
  // this process only writes account records: no change polling (the server polls for itself)
  const app = await bootApp(config, log, { changePollMs: 0 });
  try {
    return await fn({ app, ctx: internalContext(log.child({ cli: true })) });
  } finally {
    await app.close();
  }
}

/** A pipeline result's value, or a VerdictError carrying the refusal. */
export function valueOf<T>(result: OperationResult<T>): T {
  if (!result.ok) throw new VerdictError(result.verdict);
  return result.value;
}

/** The line the CLI prints for a refusal, and its exit code: 75 (EX_TEMPFAIL) when retrying may help, else 1. */
export function describeRefusal(verdict: Verdict): { line: string; exitCode: number } {
  return { line: `wildduck: ${verdict.message} (${verdict.code})\n`, exitCode: verdict.action === 'tempfail' ? 75 : 1 };
}
