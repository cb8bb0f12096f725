/**
 * Migration 6 on a data directory written before the search index existed (schema version 5: one search text per
 * message, header lines first): after the upgrade every message is found through the index, BODY no longer sees the
 * header lines, and the index follows later changes. Migration 8 then fills the sent dates from the header text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { ingestMessage } from '../storage/mime/index.ts';
import { decodeWords, getHeaders, parseHeaderBlock } from '../storage/mime/headers.ts';
import { toId } from '../storage/sqlite/common.ts';
import { openDb } from '../storage/sqlite/driver.ts';
import { DATABASE_FILE, openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SearchField } from '../storage/ports.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture } from './helpers/mime-fixtures.ts';
import { applyMigrationsUpTo } from './helpers/schema-version.ts';

const FIXTURES = ['simple.eml', 'nested-multipart.eml', 'windows-1251.eml', 'rfc822-attachment.eml', 'nodemailer.eml'];

/** The search text as version 5 stored it: decoded From, To, Cc, Subject values, then file names and text parts. */
function oldSearchText(bytes: Uint8Array, bodyStart: number, bodyText: string): string {
  const fields = parseHeaderBlock(bytes.subarray(0, bodyStart));
  const head: string[] = [];
  for (const key of ['from', 'to', 'cc', 'subject']) for (const value of getHeaders(fields, key)) head.push(decodeWords(value));
  return [...head, bodyText].filter(Boolean).join('\n');
}

/** A version-5 database with one user, INBOX and the fixtures (odd ones with deflated inline bytes). */
async function writeVersion5(dataDir: string): Promise<void> {
  const db = await openDb(join(dataDir, DATABASE_FILE));
  try {
    applyMigrationsUpTo(db, 5);
    const now = Date.now();
    db.run("INSERT INTO users (id, username, created) VALUES (1, 'old', ?)", now);
    db.run("INSERT INTO mailboxes (id, user_id, path, special_use, uid_validity, uid_next, highest_modseq, created) VALUES (1, 1, 'INBOX', '\\Inbox', 7, ?, 2, ?)", FIXTURES.length + 1, now);
    let uid = 0;
    for (const name of FIXTURES) {
      uid++;
      const bytes = fixture(name);
      const m = await ingestMessage(bytes, new MemoryBlobs(), { blobThreshold: bytes.length + 1 });
      const deflated = uid % 2 === 1;
      db.run("INSERT INTO threads (id, user_id) VALUES (?, 1)", uid);
      db.run(
        `INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, seen, internal_date, size, message_id, thread_id, header_date,
           subject, envelope, mime, has_attachments, sha256, segments, inline, inline_codec)
         VALUES (?, 1, 1, ?, 2, '[]', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        uid,
        uid,
        now,
        m.size,
        m.messageId,
        uid,
        m.headerDate ?? now,
        m.subject,
        JSON.stringify(m.envelope),
        JSON.stringify(m.mime),
        m.hasAttachments ? 1 : 0,
        m.sha256,
        JSON.stringify(m.content.segments),
        deflated ? new Uint8Array(deflateRawSync(m.content.inline)) : m.content.inline,
        deflated ? 1 : 0,
      );
      db.run('INSERT INTO message_search (message_id, text) VALUES (?, ?)', uid, oldSearchText(bytes, m.mime.bodyStart, m.searchText));
    }
    db.run('UPDATE users SET messages_used = ? WHERE id = 1', FIXTURES.length);
    db.run('UPDATE mailboxes SET message_count = ?, unseen_count = ? WHERE id = 1', FIXTURES.length, FIXTURES.length);
  } finally {
    db.close();
  }
}

describe('search index: upgrade of a version-5 data directory', () => {
  it('backfills header and body text so the index answers every field', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-upgrade-'));
    try {
      await writeVersion5(dataDir);
      const warnings: string[] = [];
      const s = await openSqliteStorage({ dataDir, synchronous: 'normal', warn: (w) => warnings.push(w) });
      try {
        assert.deepEqual(warnings, [], 'every old search text split cleanly into header lines and body');
        const find = async (field: SearchField, value: string) => (await s.search.match(toId(1), [{ field, value }]))[0];
        assert.deepEqual(await find('subject', 'unicode friendly ✔'), [1, 5], 'simple.eml is a nodemailer message too');
        assert.deepEqual(await find('subject', 'ПРИВЕТ'), [3]);
        assert.deepEqual(await find('from', 'alice@example'), [2]);
        assert.deepEqual(await find('to', 'carol'), [2]);
        assert.deepEqual(await find('body', 'straße'), [2]);
        assert.deepEqual(await find('body', 'demain à 10h'), [4]);
        assert.deepEqual(await find('body', 'Quartalsbericht für das Jahr 2024.pdf'), [2], 'attachment names stay body text');
        assert.deepEqual(await find('body', 'Alice Müller'), [], 'the old header lines left the body text');
        assert.deepEqual(await find('text', 'Alice Müller'), [2]);
        assert.deepEqual(await find('text', 'mx.example.com'), [2], 'TEXT sees every header field');
        assert.deepEqual(await find('body', 'мир'), [3], 'short-needle scan over the backfilled text');
        assert.equal(await s.messages.searchText(toId(2)).then((t) => t?.startsWith('Alice')), false);
        // migration 8: the sent dates, from the stored header text
        const sent = async (op: 'before' | 'on' | 'since', day: number) => (await s.search.matchSent(toId(1), [{ op, day }]))[0];
        assert.deepEqual(await sent('before', Date.UTC(2016, 0, 1)), [1, 5]);
        assert.deepEqual(await sent('on', Date.UTC(2024, 0, 2)), [2]);
        assert.deepEqual(await sent('on', Date.UTC(2024, 0, 5)), [3]);
        assert.deepEqual(await sent('on', Date.UTC(2024, 0, 3)), [4]);

        // the index follows changes after the upgrade
        const archive = await s.mailboxes.create(toId(1), { path: 'Archive' });
        await s.messages.move(toId(1), [2], archive.id);
        assert.deepEqual(await find('body', 'straße'), []);
        assert.deepEqual((await s.search.match(archive.id, [{ field: 'body', value: 'straße' }]))[0], [1]);
        await s.messages.expunge(toId(1), [3]);
        assert.deepEqual(await find('subject', 'привет'), []);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
