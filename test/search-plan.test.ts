/**
 * The embedded backend's search planning (storage/sqlite/search.ts SearchPlanOptions): the search contract holds on
 * both plans (every term forced to the index, every term forced to a scan of the mailbox), and a needle common on
 * the rest of the server is answered in a small mailbox without reading more index hits than that mailbox's budget.
 * The indexes are written after the acknowledgement (search-indexer.ts): the contract holds with no row indexed yet
 * and with every row indexed, and a message is found right after its append.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import { rowId } from '../storage/sqlite/common.ts';
import type { SearchPlan, SearchPlanOptions } from '../storage/sqlite/search.ts';
import { indexedThrough } from '../storage/sqlite/search-indexer.ts';
import type { MailboxRecord } from '../storage/ports.ts';
import { searchContract } from './helpers/search-contract.ts';
import type { StorageFactory } from './helpers/storage-contract.ts';
import { fakeMessage } from './helpers/fake-message.ts';

/** `indexing`: `later` leaves every row pending (the indexer never runs), `first` indexes every row before a search. */
function planned(search: SearchPlanOptions, indexing: 'later' | 'first' | 'default' = 'default'): StorageFactory {
  return async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-plan-'));
    const storage = await openSqliteStorage({ dataDir, synchronous: 'normal', search, searchIndexer: indexing === 'later' ? { delayMs: 3_600_000 } : {} });
    if (indexing === 'first') {
      const match = storage.search.match.bind(storage.search);
      storage.search.match = (mailboxId, terms) => {
        storage.searchIndexer.flush();
        return match(mailboxId, terms);
      };
    }
    const handle = {
      storage,
      async cleanup() {
        await storage.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return handle;
  };
}

describe('search plan: always the index', () => searchContract(planned({ minIndexHits: 1e9 })));
describe('search plan: always a scan of the mailbox', () => searchContract(planned({ minIndexHits: 0, fieldHitsPerMessage: 0, textHitsPerMessage: 0 })));
describe('search plan: the index, no row indexed yet', () => searchContract(planned({ minIndexHits: 1e9 }, 'later')));
describe('search plan: the index, every row indexed', () => searchContract(planned({ minIndexHits: 1e9 }, 'first')));

describe('search indexing after the acknowledgement', () => {
  it('finds a message right after its append, before and after its search row is indexed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-plan-'));
    const s = await openSqliteStorage({ dataDir, synchronous: 'normal', search: { minIndexHits: 1e9 } });
    try {
      const user = await s.users.create({ username: 'fresh', passwordHash: null });
      const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
      const terms = [
        { field: 'subject', value: 'zeppelin' },
        { field: 'body', value: 'landed' },
        { field: 'text', value: 'subject: zeppelin' },
        { field: 'from', value: 'Ü@' },
      ] as const;
      for (let i = 1; i <= 3; i++) {
        const message = await fakeMessage(s.blobs, `From: ü@example.org\r\nSubject: Zeppelin ${i}\r\n\r\nit has landed\r\n`);
        const { id } = await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
        assert.ok(indexedThrough(s.db) < rowId(id)!, 'acknowledged before it is indexed');
        const expected = Array.from({ length: i }, (_, k) => k + 1);
        assert.deepEqual(await s.search.match(inbox.id, terms), terms.map(() => expected));
        s.searchIndexer.flush();
        assert.equal(indexedThrough(s.db), rowId(id)!);
        assert.deepEqual(await s.search.match(inbox.id, terms), terms.map(() => expected));
      }
      // a copy is pending too, and an expunged pending or indexed row leaves the index consistent
      await s.messages.copy(inbox.id, [1, 2], inbox.id);
      await s.messages.expunge(inbox.id, [1, 4]);
      assert.deepEqual(await s.search.match(inbox.id, terms), terms.map(() => [2, 3, 5]));
      s.searchIndexer.flush();
      assert.deepEqual(await s.search.match(inbox.id, terms), terms.map(() => [2, 3, 5]));
      for (const table of ['message_fts_fields', 'message_fts_text']) s.db.run(`INSERT INTO ${table} (${table}, rank) VALUES ('integrity-check', 1)`); // throws when corrupt
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('search plan', () => {
  it('answers a small mailbox by a scan when the needle is common elsewhere, reading at most its budget of index hits', async () => {
    const plans: SearchPlan[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-plan-'));
    const s = await openSqliteStorage({ dataDir, synchronous: 'normal', search: { minIndexHits: 8, fieldHitsPerMessage: 2, textHitsPerMessage: 2, onPlan: (p) => plans.push(p) } });
    try {
      const box = async (name: string): Promise<MailboxRecord> => {
        const user = await s.users.create({ username: name, passwordHash: null });
        return s.mailboxes.create(user.id, { path: 'INBOX' });
      };
      const add = async (mailbox: MailboxRecord, subject: string, body: string): Promise<void> => {
        const message = await fakeMessage(s.blobs, `From: a@example.org\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);
        await s.messages.append({ userId: mailbox.userId, mailboxId: mailbox.id, flags: [], internalDate: Date.now(), message });
      };
      const crowd = await box('crowd');
      const small = await box('small');
      for (let i = 0; i < 30; i++) await add(crowd, `Quarterly report ${i}`, 'the zeppelin has landed');
      await add(small, 'Lunch', 'no needle here');
      await add(small, 'QUARTERLY numbers', 'a Zeppelin over the bay');
      s.searchIndexer.flush(); // the budget counts index hits: every row indexed

      const [subject, text, rare] = await s.search.match(small.id, [
        { field: 'subject', value: 'quarterly' },
        { field: 'text', value: 'zeppelin' },
        { field: 'subject', value: 'lunch' },
      ]);
      assert.deepEqual([subject, text, rare], [[2], [2], [1]]);
      assert.deepEqual(
        plans.map((p) => [p.field, p.plan, p.indexHits]),
        [
          ['subject', 'scan', 9],
          ['text', 'scan', 9],
          ['subject', 'index', 1],
        ],
        'a common needle stops at the budget (8) + 1 hits; a rare one is answered by the index',
      );
      plans.length = 0;
      const [inCrowd] = await s.search.match(crowd.id, [{ field: 'subject', value: 'quarterly' }]);
      assert.equal(inCrowd!.length, 30);
      assert.deepEqual(plans.map((p) => p.plan), ['index'], 'a large mailbox gets a larger budget (2 per message)');
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  for (const [name, plan] of [
    ['index', { minIndexHits: 1e9 }],
    ['scan', { minIndexHits: 0, fieldHitsPerMessage: 0, textHitsPerMessage: 0 }],
  ] as const) {
    it(`confirms substrings on the stored search text only, never the message (${name})`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'wd-search-plan-'));
      const s = await openSqliteStorage({ dataDir, synchronous: 'normal', search: plan });
      try {
        const user = await s.users.create({ username: 'reader', passwordHash: null });
        const inbox = await s.mailboxes.create(user.id, { path: 'INBOX' });
        for (const [subject, body] of [
          ['Straße', 'Grüße aus München'],
          ['plain', 'nothing special'],
        ]) {
          const message = await fakeMessage(s.blobs, `From: a@example.org\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);
          await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags: [], internalDate: Date.now(), message });
        }
        // the messages themselves become unreadable: only message_search may answer
        s.db.run("UPDATE messages SET inline = x'', segments = '[]', mime = '{}'");
        const answers = await s.search.match(inbox.id, [
          { field: 'text', value: 'GRÜSSE' },
          { field: 'text', value: 'GRÜSE' },
          { field: 'body', value: 'münchen' },
          { field: 'text', value: 'subject: strasse' },
          { field: 'text', value: 'subject: straße' },
          { field: 'text', value: 'special' },
        ]);
        assert.deepEqual(answers, [[], [], [1], [], [1], [2]]);
      } finally {
        await s.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
