/**
 * The one module that touches the host runtime (Node.js or Deno). Everything else imports from here, so the
 * rest of the server runs unchanged on both.
 */

type DenoLike = {
  env: { toObject(): Record<string, string> };
  args: string[];
  exit(code?: number): never;
  pid: number;
  stdin: { isTerminal(): boolean };
  stdout: { isTerminal(): boolean };
  addSignalListener(signal: string, handler: () => void): void;
  version: { deno: string };
};

const deno = (globalThis as unknown as { Deno?: DenoLike }).Deno;
const proc = (globalThis as unknown as { process?: NodeJS.Process }).process;

/** "deno" or "node". */
export const runtimeName: 'deno' | 'node' = deno ? 'deno' : 'node';
export const runtimeVersion: string = deno ? deno.version.deno : (proc?.versions.node ?? 'unknown');

/**
 * Whether `wildduck start` can fork worker processes: node:cluster works on Node.js; on Deno 2 it is a set of
 * stubs, so the server runs as one process there.
 */
export const canForkWorkers: boolean = !deno;

/** How an admin runs the `wildduck` command line on this runtime, for hints in logs (README, "Command line"). */
export function cliCommandLine(): string {
  return deno ? 'deno run -A protocols/cli/main.ts' : 'npm run wildduck --';
}

export function env(): Record<string, string | undefined> {
  return deno ? deno.env.toObject() : { ...(proc?.env ?? {}) };
}

/** Command-line arguments after the script name. */
export function argv(): string[] {
  return deno ? [...deno.args] : (proc?.argv.slice(2) ?? []);
}

export function exit(code: number): never {
  if (deno) deno.exit(code);
  proc!.exit(code);
  throw new Error('unreachable');
}

export function setExitCode(code: number): void {
  if (proc) proc.exitCode = code;
}

export function pid(): number {
  return deno ? deno.pid : (proc?.pid ?? 0);
}

export function stdoutIsTerminal(): boolean {
  try {
    return deno ? deno.stdout.isTerminal() : Boolean(proc?.stdout.isTTY);
  } catch {
    return false;
  }
}

export function stdinIsTerminal(): boolean {
  try {
    return deno ? deno.stdin.isTerminal() : Boolean(proc?.stdin.isTTY);
  } catch {
    return false;
  }
}

/** Runs `handler` once on SIGINT or SIGTERM. */
export function onShutdownSignal(handler: (signal: string) => void): void {
  let fired = false;
  const fire = (signal: string) => {
    if (fired) return;
    fired = true;
    handler(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    if (deno) deno.addSignalListener(signal, () => fire(signal));
    else proc?.on(signal, () => fire(signal));
  }
}

/** Reads all of standard input as UTF-8 (for `--password -`). */
export async function readStdin(): Promise<string> {
  const { stdin } = await import('node:process');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes a line to stdout / stderr without going through console formatting. */
export function writeOut(text: string): void {
  if (proc) proc.stdout.write(text);
  else console.log(text.replace(/\n$/, ''));
}

export function writeErr(text: string): void {
  if (proc) proc.stderr.write(text);
  else console.error(text.replace(/\n$/, ''));
}
