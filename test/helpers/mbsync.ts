/** Driving mbsync (apt package isync) in tests: whether it is installed, a run, and a config for one IMAP account. */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export const haveMbsync = spawnSync('mbsync', ['--version']).status === 0;

/** Runs `mbsync -c config -a`; its exit code and output (stdout and stderr). */
export function mbsync(config: string): Promise<{ code: number | null; out: string }> {
  const child = spawn('mbsync', ['-c', config, '-a'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/**
 * Writes an mbsync config: user alice / secret on 127.0.0.1:`port` without TLS, maildirs under `root` (INBOX at
 * `inbox`), the mailboxes matching `patterns`, created, expunged and synced both ways.
 */
export function writeMbsyncConfig(file: string, options: { port: number; root: string; inbox: string; patterns: string }): void {
  writeFileSync(
    file,
    [
      'IMAPAccount wd',
      'Host 127.0.0.1',
      `Port ${options.port}`,
      'User alice',
      'Pass secret',
      'SSLType None',
      'AuthMechs LOGIN',
      '',
      'IMAPStore remote',
      'Account wd',
      '',
      'MaildirStore local',
      `Path ${options.root}/`,
      `Inbox ${options.inbox}`,
      'SubFolders Verbatim',
      '',
      'Channel sync',
      'Far :remote:',
      'Near :local:',
      `Patterns ${options.patterns}`,
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
  );
}
