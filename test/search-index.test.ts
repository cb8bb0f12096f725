/**
 * SEARCH through the search port on the embedded backend: the same answers as evaluating every message's loaded
 * headers and body text (the evaluator without a port), for the IMAP keys over real MIME fixtures, combined with
 * index keys, NOT and OR; and what only the index path has (HEADER narrowed by the TEXT index).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingestMessage } from '../storage/mime/index.ts';
import { openSqliteStorage } from '../storage/sqlite/index.ts';
import type { SqliteStorage } from '../storage/sqlite/index.ts';
import type { MailboxRecord } from '../storage/ports.ts';
import { search } from '../storage/search/evaluate.ts';
import { mailboxSearchSources } from '../storage/search/loaders.ts';
import { parseSearch } from '../protocols/imap/search.ts';
import type { ImapToken } from '../protocols/imap/types.ts';
import { atom, str } from './helpers/imap-tokens.ts';
import { fixture } from './helpers/mime-fixtures.ts';

const FIXTURES = ['simple.eml', 'nested-multipart.eml', 'rfc822-attachment.eml', 'windows-1251.eml', '8bit-no-charset-latin1.eml', 'nodemailer.eml', 'iso-2022-jp.eml'];

let dataDir: string;
let s: SqliteStorage;
let inbox: MailboxRecord;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'wd-search-index-'));
  s = await openSqliteStorage({ dataDir, synchronous: 'normal' });
  const user = await s.users.create({ username: 'alice', passwordHash: null });
  inbox = await s.mailboxes.create(user.id, { path: 'INBOX', specialUse: '\\Inbox' });
  const from = '<user-from (comment)@ (comment) domain.org>';
  const extra = new TextEncoder().encode(`From: ${from}\r\nSubject: ab\r\nX-Ticket: T-42\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nok\r\n`);
  for (const bytes of [...FIXTURES.map(fixture), extra]) {
    const message = await ingestMessage(bytes, s.blobs);
    const flags = message.size % 2 === 0 ? ['\\Seen'] : [];
    await s.messages.append({ userId: user.id, mailboxId: inbox.id, flags, internalDate: Date.UTC(2024, 0, 3), message });
  }
});

after(async () => {
  await s.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** UIDs through the port, and through loading every message (the evaluator's fallback). */
async function both(args: ImapToken[]): Promise<{ indexed: number[]; loaded: number[] }> {
  const query = parseSearch(args, { utf8: true });
  const entries = await s.messages.index(inbox.id);
  const sources = mailboxSearchSources(s, inbox.id);
  const indexed = (await search(query, { entries, recent: new Set(), ...sources })).uids;
  const { matchText: _, matchSent: __, ...loaders } = sources;
  const loaded = (await search(query, { entries, recent: new Set(), ...loaders })).uids;
  return { indexed, loaded };
}

const q = (...parts: Array<string | [string]>): ImapToken[] => parts.map((p) => (Array.isArray(p) ? str(p[0]) : atom(p)));

describe('SEARCH through the search port', () => {
  const agreeing: Array<[string, ImapToken[]]> = [
    ['SUBJECT', q('SUBJECT', ['réunion'])],
    ['SUBJECT, Cyrillic upper case', q('SUBJECT', ['ПРИВЕТ'])],
    ['SUBJECT, two characters', q('SUBJECT', ['AB'])],
    ['SUBJECT, folded header', q('SUBJECT', ['report with a folded'])],
    ['SUBJECT, Japanese', q('SUBJECT', ['会議'])],
    ['FROM display name', q('FROM', ['müller'])],
    ['FROM address', q('FROM', ['ALICE@EXAMPLE'])],
    ['TO', q('TO', ['carol'])],
    ['CC', q('CC', ['eve@'])],
    ['BCC', q('BCC', ['eve'])],
    ['BODY', q('BODY', ['straße'])],
    ['BODY, accents', q('BODY', ['café crème'])],
    ['BODY, one character', q('BODY', ['é'])],
    ['TEXT, a header field', q('TEXT', ['mx.example.com'])],
    ['TEXT, name: value', q('TEXT', ['x-ticket: t-42'])],
    ['TEXT, body', q('TEXT', ['十時からです'])],
    ['HEADER of another field', q('HEADER', ['X-Ticket'], ['t-4'])],
    ['HEADER, empty value', q('HEADER', ['Received'], [''])],
    ['NOT BODY', q('NOT', 'BODY', ['hello'])],
    ['OR SUBJECT FROM', q('OR', 'SUBJECT', ['привет'], 'FROM', ['alice'])],
    ['index key and text key', q('SEEN', 'TEXT', ['e'])],
    ['SENTON with a text key', q('SENTON', '2-Jan-2024', 'NOT', 'SUBJECT', ['zzz'])],
    ['SENTBEFORE', q('SENTBEFORE', '2-Jan-2024')],
    ['SENTSINCE', q('SENTSINCE', '2-Jan-2024')],
    ['OR SENTON SENTBEFORE', q('OR', 'SENTON', '1-Jan-2024', 'SENTBEFORE', '1-Jan-2020')],
  ];
  for (const [name, args] of agreeing) {
    it(`${name}: the index agrees with loading every message`, async () => {
      const { indexed, loaded } = await both(args);
      assert.deepEqual(indexed, loaded);
    });
  }

  it('finds what the fixtures hold', async () => {
    assert.deepEqual((await both(q('SUBJECT', ['ПРИВЕТ']))).indexed, [4]);
    assert.deepEqual((await both(q('BODY', ['straße']))).indexed, [2]);
    assert.deepEqual((await both(q('HEADER', ['X-Ticket'], ['t-4']))).indexed, [8]);
    assert.deepEqual((await both(q('SENTON', '2-Jan-2024', 'NOT', 'SUBJECT', ['zzz']))).indexed, [2, 8]);
  });

  it('answers SENTBEFORE / SENTON / SENTSINCE from the index: no message is loaded', async () => {
    const query = parseSearch(q('OR', 'SENTON', '2-Jan-2024', 'SENTBEFORE', '1-Jan-2000'), { utf8: true });
    const entries = await s.messages.index(inbox.id);
    const sources = mailboxSearchSources(s, inbox.id);
    const refuse = (): never => assert.fail('a message was loaded');
    const { uids } = await search(query, { entries, recent: new Set(), ...sources, loadHeaders: refuse, loadSearchText: refuse });
    assert.deepEqual(uids, (await both(q('OR', 'SENTON', '2-Jan-2024', 'SENTBEFORE', '1-Jan-2000'))).loaded);
    assert.ok(uids.includes(8));
  });

  it('FROM matches the parsed address, comments removed (BODY never matches a header)', async () => {
    assert.deepEqual((await both(q('FROM', ['user-from@domain.org']))).indexed, [8]);
    assert.deepEqual((await both(q('BODY', ['user-from']))).indexed, []);
    assert.deepEqual((await both(q('BODY', ['müller']))).indexed, [], 'nested-multipart.eml: From is not body text');
    assert.deepEqual((await both(q('TEXT', ['müller']))).indexed, [2]);
  });
});
