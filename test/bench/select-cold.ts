/**
 * SELECT of a large mailbox right after a server start, at several sizes, without populating each through the
 * pipeline: `tsx test/bench/select-cold.ts [--sizes 10000,50000,100000] [--starts 3] [--keep]`.
 *
 * Each size is a copy of the bench's cached 10,000-message database (`.bench/ours-10000`, from `npm run bench --
 * --quick --only large`) whose message rows are repeated with higher UIDs until the mailbox holds that many (the
 * mailbox counters raised to match; the copies share the originals' search rows, which SELECT never reads). The
 * server (`startOurs`, with its workers) is then started `--starts` times on it; each start logs in and times the
 * first SELECT INBOX and a second one. The first start reads the index in full and saves its snapshot; the later ones
 * are what "first after start" means in the bench table.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDb } from '../../storage/sqlite/driver.ts';
import { resolveConfig } from '../../hooks/config.ts';
import { openStorage } from '../../storage/open.ts';
import { MailboxIndex } from '../../storage/mailbox-index/mailbox-index.ts';
import { openIndexSnapshot } from '../../storage/mailbox-index/snapshot.ts';
import { ImapClient, ok } from './imap-client.ts';
import { oursLargeDir } from './large-mailbox.ts';
import { startOurs } from './ours-peer.ts';
import { BIG_USER, PASSWORD } from './peer.ts';
import { treeRunMs } from './proc-stats.ts';

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,50000,100000' },
    starts: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    /** Also time the steps of an index load in this process (snapshot open, header, UIDs and flags, the rest, a whole load), after the starts. */
    steps: { type: 'boolean', default: false },
  },
});
const sizes = flags.sizes!.split(',').map(Number);
const starts = Number(flags.starts);
const source = join(oursLargeDir(10_000), 'data');
if (!existsSync(join(source, 'wildduck.sqlite'))) throw new Error(`no cached 10,000-message mailbox in ${source}: run npm run bench -- --quick --only large once`);

/** A data directory whose INBOX holds `n` messages (a multiple of the source's count). */
async function scaled(n: number, root: string): Promise<string> {
  const dir = join(root, `ours-${n}`);
  mkdirSync(dir, { recursive: true });
  for (const sub of ['blobs', 'tmp', 'trash']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(join(source, 'wildduck.sqlite'), join(dir, 'wildduck.sqlite'));
  const db = await openDb(join(dir, 'wildduck.sqlite'));
  try {
    rmSync(join(dir, 'index'), { recursive: true, force: true });
    const inbox = db.get<{ id: number; count: number; max: number }>(
      "SELECT m.id AS id, count(*) AS count, max(uid) AS max FROM mailboxes m JOIN messages g ON g.mailbox_id = m.id WHERE m.path = 'INBOX' GROUP BY m.id ORDER BY count DESC LIMIT 1",
    )!;
    const base = Number(inbox.count);
    const span = Number(inbox.max);
    const cols = 'user_id, flags, seen, internal_date, size, message_id, thread_id, header_date, subject, envelope, mime, has_attachments, sha256, segments, inline, inline_codec';
    db.transaction(() => {
      for (let k = 1; k * base < n; k++) {
        db.run(
          `INSERT INTO messages (mailbox_id, uid, modseq, ${cols}) SELECT mailbox_id, uid + ?, modseq, ${cols} FROM messages WHERE mailbox_id = ? AND uid <= ? ORDER BY uid LIMIT ?`,
          k * span,
          inbox.id,
          span,
          n - k * base,
        );
      }
      db.run(
        `UPDATE mailboxes SET message_count = (SELECT count(*) FROM messages WHERE mailbox_id = ?), unseen_count = (SELECT count(*) FROM messages WHERE mailbox_id = ? AND seen = 0),
           uid_next = (SELECT max(uid) + 1 FROM messages WHERE mailbox_id = ?) WHERE id = ?`,
        inbox.id,
        inbox.id,
        inbox.id,
        inbox.id,
      );
    });
  } finally {
    db.close();
  }
  return dir;
}

async function selectTimes(port: number, pid: number): Promise<{ first: number; cpu: number; second: number; exists: number }> {
  const client = await ImapClient.connect(port);
  try {
    await client.login(BIG_USER, PASSWORD);
    const cpu0 = treeRunMs(pid);
    let t0 = performance.now();
    const reply = ok(await client.command('SELECT INBOX'), 'select');
    const first = performance.now() - t0;
    const cpu = treeRunMs(pid) - cpu0;
    t0 = performance.now();
    ok(await client.command('SELECT INBOX'), 'select');
    const second = performance.now() - t0;
    const exists = Number(/^\* (\d+) EXISTS/m.exec(reply.untagged.join('\n'))?.[1] ?? -1);
    return { first, cpu, second, exists };
  } finally {
    await client.logout();
  }
}

/** Median ms of `repeats` runs of each step of loading the big user's INBOX index from its snapshot, in this process. */
async function loadSteps(dir: string, repeats = 7): Promise<string> {
  const storage = await openStorage(resolveConfig({ dataDir: dir }));
  try {
    const user = (await storage.users.getByUsername(BIG_USER))!;
    const inbox = (await storage.mailboxes.getByPath(user.id, 'INBOX'))!;
    const times: Record<string, number[]> = { open: [], header: [], head: [], rest: [], load: [] };
    for (let i = 0; i < repeats; i++) {
      let t0 = performance.now();
      const saved = await storage.messages.indexSnapshot!(inbox.id);
      times.open!.push(performance.now() - t0);
      t0 = performance.now();
      const snapshot = saved && openIndexSnapshot(saved);
      if (!snapshot) return 'no snapshot';
      times.header!.push(performance.now() - t0);
      t0 = performance.now();
      snapshot.head();
      times.head!.push(performance.now() - t0);
      t0 = performance.now();
      snapshot.rest();
      times.rest!.push(performance.now() - t0);
      t0 = performance.now();
      await MailboxIndex.load(storage, inbox, 0);
      times.load!.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 20)); // its columns are read (and the file closed)
    }
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    return Object.entries(times).map(([k, xs]) => `${k} ${med(xs).toFixed(2)}`).join(', ');
  } finally {
    await storage.close();
  }
}

const root = mkdtempSync(join(tmpdir(), 'wd-select-cold-'));
try {
  for (const n of sizes) {
    const dir = await scaled(n, root);
    const firsts: string[] = [];
    for (let s = 0; s < starts; s++) {
      const peer = await startOurs(dir, join(root, `ours-${n}.log`), []);
      try {
        const t = await selectTimes(peer.imapPort, peer.pid);
        if (t.exists !== n) throw new Error(`SELECT said ${t.exists} EXISTS, expected ${n}`);
        firsts.push(`${t.first.toFixed(1)} (CPU ${t.cpu.toFixed(1)})${s === 0 ? ' (full read)' : ''} / ${t.second.toFixed(1)}`);
      } finally {
        await peer.stop();
      }
    }
    console.log(`${n} messages: first SELECT after start (server CPU) / the next one, ms: ${firsts.join(', ')}`);
    if (flags.steps) console.log(`${n} messages: index load steps in-process (median ms): ${await loadSteps(dir)}`);
  }
} finally {
  if (flags.keep) console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
