/**
 * Dovecot as the bench peer: installed from apt when missing, started on loopback ports from a configuration
 * written into a temporary directory (base_dir, state_dir and log there too), with a plaintext passwd-file,
 * Maildir, `ssl = no`. Limits are raised so 10,000 IMAP sessions of one user are accepted (one imap process
 * each: service imap process_limit, mail_max_userip_connections, service stats client_limit) and imap-login
 * runs in Dovecot's high-performance mode (service_count = 0: a few long-lived login processes). The kernel's
 * fs.inotify.max_user_instances (128 by default) is left alone: beyond it Dovecot's IDLE polls instead (a warning
 * per session in its log).
 *
 * Dovecot refuses to run mail processes as root (`userdb returned 0 as uid`), so when the bench runs as root the
 * mail is owned by the `dovecot` system user and logins run as `dovenull` (both created by the Debian package);
 * otherwise everything runs as the current user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, openSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { kill } from 'node:process';
import { env as runtimeEnv } from '../../hooks/runtime.ts';
import { dirSize } from '../helpers/dir-size.ts';
import { PASSWORD, freePort, sleep, waitFor, type Peer } from './peer.ts';

const DOVECOT = '/usr/sbin/dovecot';

/** Installs dovecot-imapd and dovecot-lmtpd with apt when Dovecot or its LMTP server is missing. */
export function ensureDovecot(log: (line: string) => void): void {
  if (existsSync(DOVECOT) && existsSync('/usr/lib/dovecot/lmtp') && existsSync('/usr/lib/dovecot/imap')) return;
  if (userInfo().uid !== 0) {
    throw new Error('Dovecot is not installed: run `sudo apt-get install -y dovecot-imapd dovecot-lmtpd` (the bench installs it itself only when run as root)');
  }
  log('installing Dovecot: apt-get install -y dovecot-imapd dovecot-lmtpd');
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'dovecot-imapd', 'dovecot-lmtpd'], {
      stdio: 'inherit',
      env: { ...runtimeEnv(), DEBIAN_FRONTEND: 'noninteractive' },
    }).status;
  if (install() !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    if (install() !== 0) throw new Error('apt-get install dovecot-imapd dovecot-lmtpd failed');
  }
}

export function dovecotVersion(): string {
  return execFileSync(DOVECOT, ['--version'], { encoding: 'utf8' }).trim();
}

interface Identity {
  uid: number;
  gid: number;
  internalUser: string;
  loginUser: string;
}

function identity(): Identity {
  const me = userInfo();
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid, internalUser: me.username, loginUser: me.username };
  const id = (flag: string, name: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u', 'dovecot'), gid: id('-g', 'dovecot'), internalUser: 'dovecot', loginUser: 'dovenull' };
}

/** Gives `path` (recursively) to the mail user, so Dovecot's mail processes can write there. */
export function giveToMailUser(path: string): void {
  const { uid, gid } = identity();
  if (userInfo().uid !== 0) return;
  const walk = (p: string) => {
    chownSync(p, uid, gid);
    if (statSync(p).isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(path);
}

export interface DovecotUser {
  name: string;
  /** Home directory (mail in HOME/Maildir). */
  home: string;
}

function config(dir: string, who: Identity, imapPort: number, lmtpPort: number): string {
  return `# written by test/bench/dovecot-peer.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = wildduck-bench-${imapPort}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = ${who.internalUser}
default_internal_group = ${who.internalUser}
default_login_user = ${who.loginUser}
mail_location = maildir:~/Maildir
default_vsz_limit = 1G
mail_max_userip_connections = 20000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${dir}/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%n ${dir}/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 2000
}
service imap {
  process_limit = 12000
}
service stats {
  client_limit = 12000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
  unix_listener lmtp {
    mode = 0600
  }
}
`;
}

export async function startDovecot(dir: string, users: DovecotUser[]): Promise<Peer> {
  const who = identity();
  const imapPort = await freePort();
  const lmtpPort = await freePort();
  for (const sub of ['run', 'state', 'mail']) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(dir, 0o755); // the mail and auth processes (not root) read the passwd file and the homes below
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(conf, config(dir, who, imapPort, lmtpPort));
  writeFileSync(join(dir, 'passwd'), users.map((u) => `${u.name}:{PLAIN}${PASSWORD}:${who.uid}:${who.gid}::${u.home}::\n`).join(''), { mode: 0o644 });
  for (const u of users) {
    mkdirSync(u.home, { recursive: true });
    giveToMailUser(u.home);
  }
  giveToMailUser(join(dir, 'mail'));
  // Dovecot forks into the background itself; the master's pid is in base_dir/master.pid
  // (its output goes to a file: the daemon's children keep the descriptors open)
  const startLog = join(dir, 'start.log');
  const out = openSync(startLog, 'w');
  const started = spawnSync('bash', ['-c', `ulimit -n $(ulimit -Hn); exec ${DOVECOT} -c ${conf}`], { stdio: ['ignore', out, out] });
  closeSync(out);
  if (started.status !== 0) throw new Error(`dovecot did not start: ${readFileSync(startLog, 'utf8')}`);
  const pidFile = join(dir, 'run', 'master.pid');
  await waitFor('dovecot master.pid', () => existsSync(pidFile), 15_000);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return {
    name: 'dovecot',
    imapPort,
    lmtpPort,
    pid,
    storedBytes: (user) => dirSize(users.find((u) => u.name === user)!.home),
    stop: async () => {
      spawnSync(DOVECOT, ['-c', conf, 'stop'], { stdio: 'ignore' });
      await waitFor('dovecot to stop', () => !existsSync(`/proc/${pid}`), 30_000).catch(() => kill(pid, 'SIGKILL'));
      await sleep(200);
    },
  };
}
