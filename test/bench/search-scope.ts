/**
 * The search port on a shared server: one user's mailbox of `--big` messages (corpus.smallMessage: each needle in
 * about 1.5 %) and one of `--small`, while `--crowd` messages of other users all hold every needle. The messages
 * are interleaved in id order as deliveries to many users are. Prints, per mailbox and term, the median time of
 * `search.match` and its hits, so a change to how the port scopes a query to a mailbox can be compared before and
 * after. Run: `node --import tsx test/bench/search-scope.ts [--big 10000] [--small 200] [--crowd 200000]
 * [--keep DIR] [--compare FILE]`: `--keep` populates DIR once and reuses it; `--compare` also times the
 * SqliteSearch class of another version of storage/sqlite/search.ts (saved with `git show REV:…` beside it).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATABASE_FILE, openSqliteStorage } from '../../storage/sqlite/index.ts';
import type { SqliteStorage } from '../../storage/sqlite/index.ts';
import { SEARCH_COLUMNS } from '../../storage/sqlite/search-schema.ts';
import type { MailboxRecord, SearchField, SearchPort } from '../../storage/ports.ts';
import { fakeMessage } from '../helpers/fake-message.ts';
import { SEARCH_TERMS, smallMessage } from './corpus.ts';
import { median } from './report.ts';

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const BIG = Number(arg('big') ?? 10_000);
const SMALL = Number(arg('small') ?? 200);
const CROWD = Number(arg('crowd') ?? 200_000);
const ROUNDS = 100;

const TERMS: Array<{ field: SearchField; value: string }> = [
  { field: 'subject', value: SEARCH_TERMS.subject },
  { field: 'text', value: SEARCH_TERMS.text },
  { field: 'body', value: SEARCH_TERMS.text },
  { field: 'text', value: 'lorem' },
  { field: 'subject', value: 'no such subject' },
];

async function populate(s: SqliteStorage, big: MailboxRecord, small: MailboxRecord, crowd: MailboxRecord): Promise<void> {
  const add = async (mailbox: MailboxRecord, raw: Uint8Array): Promise<void> => {
    const message = await fakeMessage(s.blobs, raw);
    await s.messages.append({ userId: mailbox.userId, mailboxId: mailbox.id, flags: [], internalDate: Date.now(), message });
  };
  // templates for the crowd: messages holding every needle, copied row by row (search text and index included)
  for (let i = 0; i < 8; i++) {
    const raw = new TextDecoder().decode(smallMessage(1_000_000 + i)).replace(/\r\nSubject: /i, `\r\nSubject: ${SEARCH_TERMS.subject} `);
    await add(crowd, new TextEncoder().encode(`${raw}\r\n${SEARCH_TERMS.text} lorem\r\n`));
  }
  const templates = s.db.all<{ id: number }>('SELECT id FROM messages WHERE mailbox_id = ?', Number(crowd.id)).map((r) => Number(r.id));
  const columns = SEARCH_COLUMNS.join(', ');
  let uid = 100;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < BIG / ROUNDS; i++) await add(big, smallMessage(round * 100_000 + i));
    for (let i = 0; i < SMALL / ROUNDS; i++) await add(small, smallMessage(5_000_000 + round * 1000 + i));
    s.db.transaction(() => {
      for (let i = 0; i < CROWD / ROUNDS; i++) {
        const from = templates[i % templates.length]!;
        const { lastInsertRowid: id } = s.db.run(
          `INSERT INTO messages (user_id, mailbox_id, uid, modseq, flags, seen, internal_date, size, message_id, thread_id, header_date, subject,
             envelope, mime, has_attachments, sha256, segments, inline, inline_codec)
           SELECT user_id, mailbox_id, ?, modseq, flags, seen, internal_date, size, message_id, thread_id, header_date, subject,
             envelope, mime, has_attachments, sha256, segments, inline, inline_codec FROM messages WHERE id = ?`,
          uid++,
          from,
        );
        s.db.run(`INSERT INTO message_search (message_id, ${columns}) SELECT ?, ${columns} FROM message_search WHERE message_id = ?`, id, from);
      }
    });
  }
}

const kept = arg('keep');
const dir = kept ? resolve(kept) : mkdtempSync(join(tmpdir(), 'search-scope-'));
const reuse = existsSync(join(dir, DATABASE_FILE));
const s = await openSqliteStorage({ dataDir: dir, synchronous: 'normal', changePollMs: 0 });
try {
  const box = async (name: string): Promise<MailboxRecord> => {
    const user = (await s.users.getByUsername(name)) ?? (await s.users.create({ username: name, passwordHash: null }));
    return (await s.mailboxes.getByPath(user.id, 'INBOX')) ?? s.mailboxes.create(user.id, { path: 'INBOX', specialUse: '\\Inbox' });
  };
  const [big, small, crowd] = [await box('big'), await box('small'), await box('crowd')];
  if (!reuse) {
    const started = performance.now();
    await populate(s, big, small, crowd);
    s.searchIndexer.flush(); // the search indexes follow the appends in batches: measure them complete
    console.log(`populated ${BIG} + ${SMALL} + ${CROWD} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const ports: Array<[string, SearchPort]> = [['now', s.search]];
  const compare = arg('compare');
  if (compare) ports.unshift(['then', new (await import(resolve(compare))).SqliteSearch(s.db)]);
  for (const [version, port] of ports) {
    for (const [name, mailbox] of [
      ['small', small],
      ['big', big],
    ] as const) {
      for (const term of TERMS) {
        const times: number[] = [];
        let hits = 0;
        for (let run = 0; run < 5; run++) {
          const t0 = performance.now();
          hits = (await port.match(mailbox.id, [term]))[0]!.length;
          times.push(performance.now() - t0);
        }
        console.log(`${version.padEnd(5)} ${name.padEnd(6)} ${`${term.field} ${term.value}`.padEnd(28)} ${median(times).toFixed(1).padStart(8)} ms  ${hits} hits`);
      }
    }
  }
} finally {
  await s.close();
  if (!kept) rmSync(dir, { recursive: true, force: true });
}
