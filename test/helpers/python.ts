/** Runs a Python 3 script (`python3 -c script args`) and collects its exit code, stdout and stderr, for real-client tests. */
import { spawn } from 'node:child_process';

export function python(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
  child.stderr.on('data', (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
