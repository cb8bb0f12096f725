/** Spawns a TypeScript file in a child process of the same runtime (Node through tsx, or Deno). */
import { spawn, type ChildProcess } from 'node:child_process';
import { execPath } from 'node:process';
import { fileURLToPath } from 'node:url';
import { runtimeName } from '../../hooks/runtime.ts';

export function spawnTs(file: URL | string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): ChildProcess {
  const path = typeof file === 'string' ? file : fileURLToPath(file);
  // resolve tsx from this repository, so the child works whatever its working directory
  const runtimeArgs = runtimeName === 'deno' ? ['run', '-A', '--no-check', path] : ['--import', import.meta.resolve('tsx'), path];
  return spawn(execPath, [...runtimeArgs, ...args], { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv | undefined, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Collects a child's output until it exits. */
export function runTs(
  file: URL | string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTs(file, args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
