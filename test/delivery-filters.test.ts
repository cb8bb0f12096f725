/**
 * User filters and per-user spam levels end to end: rules stored as per-user documents, messages delivered over
 * LMTP (serveLmtp on the real stack), the outcome observed through the storage ports (test/delivery-imap.test.ts
 * reads filter, spam-routing and duplicate outcomes through an IMAP session). One test per condition
 * (from, to/cc, subject, List-ID, text words and phrases, has attachment, size larger/smaller) and per action
 * (seen, flag, delete, mailbox by id and by path, spam, not spam), first match per action, disabled filters, and
 * the WildDuck spam levels 0 / 20 / 50 / 100 over the scanner's header.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { App } from '../protocols/app.ts';
import { createUser } from '../storage/users.ts';
import { DeliverySettingsError, putFilter, updateDeliverySettings } from '../storage/delivery-settings.ts';
import type { FilterInput } from '../storage/delivery-settings.ts';
import { lmtpDeliver, mailboxMessages } from './helpers/lmtp-deliver.ts';

function mail(headers: Record<string, string>, body = 'Hello.\r\n'): string {
  const lines = Object.entries({ From: 'someone@remote.example', To: 'ann@example.com', ...headers }).map(([k, v]) => `${k}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}

const ATTACHMENT = (subject: string) =>
  mail(
    { Subject: subject, 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="b1"' },
    '--b1\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n--b1\r\nContent-Type: application/pdf; name="scan.pdf"\r\n' +
      'Content-Disposition: attachment; filename="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n',
  );

describe('delivery: user filters and spam levels over LMTP', () => {
  let dataDir: string;
  let app: App;
  let annId: string;
  let benId: string;

  /** Delivers to one user and returns where the newest copy went: [mailbox path, flags], or null when not stored. */
  async function deliver(to: string, message: string): Promise<{ path: string; flags: string[] } | null> {
    const username = to.split('@')[0]!;
    const user = (await app.storage.users.getByUsername(username))!;
    const before = new Map<string, number>();
    const boxes = await app.storage.mailboxes.list(user.id);
    for (const box of boxes) before.set(box.id, (await app.storage.messages.index(box.id)).length);
    const [reply] = await lmtpDeliver(app, 'someone@remote.example', [to], message);
    assert.match(reply!, /^250 /);
    for (const box of boxes) {
      const index = await app.storage.messages.index(box.id);
      if (index.length > before.get(box.id)!) return { path: box.path, flags: [...index.at(-1)!.flags].sort() };
    }
    return null;
  }

  async function addFilter(userId: string, filter: FilterInput): Promise<string> {
    return (await putFilter(app.storage.documents, userId, filter)).id;
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-filters-'));
    const config = resolveConfig({ dataDir, delivery: { duplicateWindowSeconds: 0 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    annId = (await createUser(app.storage, config, { username: 'ann', password: null, addresses: ['ann@example.com'] })).user.id;
    benId = (await createUser(app.storage, config, { username: 'ben', password: null, addresses: ['ben@example.com'] })).user.id;
    for (const path of ['Work', 'Lists/Node', 'Reports', 'Big']) await app.storage.mailboxes.create(annId, { path });
    const reports = (await app.storage.mailboxes.getByPath(annId, 'Reports'))!;

    // in this order: earlier filters win per action
    await addFilter(annId, { name: 'boss', query: { from: 'boss@work.example' }, action: { flag: true, mailbox: 'Work' } });
    await addFilter(annId, { name: 'work', query: { from: 'work.example' }, action: { flag: false, seen: true, mailbox: 'Lists/Node' } });
    await addFilter(annId, { query: { to: 'team@work.example' }, action: { seen: true } });
    await addFilter(annId, { query: { subject: 'Weekly REPORT' }, action: { mailbox: reports.id } });
    await addFilter(annId, { query: { listId: 'Node dev <dev.lists.example>' }, action: { mailbox: 'Lists/Node' } });
    await addFilter(annId, { query: { text: '"winning lottery" prize' }, action: { spam: true } });
    await addFilter(annId, { query: { subject: 'scan', ha: true }, action: { delete: true } });
    await addFilter(annId, { query: { subject: 'textonly', ha: false }, action: { flag: true } });
    await addFilter(annId, { query: { subject: 'size test', size: 20_000 }, action: { mailbox: 'Big' } });
    await addFilter(annId, { query: { subject: 'size test', size: -300 }, action: { seen: true } });
    await addFilter(annId, { query: { subject: 'not junk' }, action: { spam: false } });
    await addFilter(annId, { query: { subject: 'disabled rule' }, action: { delete: true }, disabled: true });
    await addFilter(annId, { query: { subject: 'gone box' }, action: { mailbox: 'No/Such/Box', flag: true } });
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('rejects filters without conditions or actions, and bad values, with the path of the bad value', async () => {
    await assert.rejects(putFilter(app.storage.documents, annId, { query: {}, action: { seen: true } }), /query: a filter needs at least one condition/);
    await assert.rejects(putFilter(app.storage.documents, annId, { query: { from: 'x' }, action: {} }), /action: a filter needs at least one action/);
    await assert.rejects(putFilter(app.storage.documents, annId, { query: { from: 'x' }, action: { targets: ['not an address'] } }), DeliverySettingsError);
    await assert.rejects(putFilter(app.storage.documents, annId, { query: { size: 0 }, action: { seen: true } }), /query\.size/);
    await assert.rejects(updateDeliverySettings(app.storage.documents, annId, { spamLevel: 101 }), /spamLevel/);
  });

  it('from: first match per action wins (flag and mailbox from the first filter, seen from the second)', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ From: 'The Boss <boss@work.example>', Subject: 'hi' })), { path: 'Work', flags: ['\\Flagged', '\\Seen'] });
    assert.deepEqual(await deliver('ann@example.com', mail({ From: 'colleague@work.example', Subject: 'hi' })), { path: 'Lists/Node', flags: ['\\Seen'] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Sender: 'boss@work.example', Subject: 'on behalf' })), { path: 'Work', flags: ['\\Flagged', '\\Seen'] }, 'Sender counts as from');
  });

  it('to: matches To and Cc', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ Cc: 'Team <TEAM@work.example>', Subject: 'cc' })), { path: 'INBOX', flags: ['\\Seen'] });
    assert.deepEqual(await deliver('ann@example.com', mail({ To: 'team@work.example', Subject: 'to' })), { path: 'INBOX', flags: ['\\Seen'] });
  });

  it('subject (case-insensitive, encoded words decoded) moves to a mailbox given by id', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'Your weekly report is ready' })), { path: 'Reports', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: '=?UTF-8?Q?Weekly_Report_=E2=9C=94?=' })), { path: 'Reports', flags: [] });
  });

  it('listId matches the id part of List-ID; mailbox by path', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ 'List-ID': '"Node developers" <dev.lists.example>', Subject: 'x' })), { path: 'Lists/Node', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ 'List-ID': '<other.lists.example>', Subject: 'x' })), { path: 'INBOX', flags: [] });
  });

  it('text: every word and quoted phrase must occur in the text parts; spam action goes to Junk', async () => {
    const hit = await deliver('ann@example.com', mail({ Subject: 'news' }, 'You are WINNING\r\nlottery today. Claim your prize!\r\n'));
    assert.deepEqual(hit, { path: 'Junk', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'news' }, 'Winning the prize in the lottery.\r\n')), { path: 'INBOX', flags: [] }, 'phrase not contiguous');
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'winning lottery prize' }, 'nothing\r\n')), { path: 'INBOX', flags: [] }, 'text looks at the body only');
  });

  it('ha: an attachment deletes (accepted, not stored); without one the filter does not match', async () => {
    assert.equal(await deliver('ann@example.com', ATTACHMENT('scan from the copier')), null);
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'scan from the copier' })), { path: 'INBOX', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'textonly' })), { path: 'INBOX', flags: ['\\Flagged'] }, 'ha:false matches');
    assert.deepEqual(await deliver('ann@example.com', ATTACHMENT('textonly')), { path: 'INBOX', flags: [] });
  });

  it('size: larger than (positive) and smaller than (negative)', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'size test' }, 'x'.repeat(70) + '\r\n'.repeat(1) + ('y'.repeat(76) + '\r\n').repeat(300))), { path: 'Big', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', 'Subject: size test\r\n\r\nhi\r\n'), { path: 'INBOX', flags: ['\\Seen'] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'size test' }, 'z'.repeat(500) + '\r\n')), { path: 'INBOX', flags: [] });
  });

  it('spam: false keeps a message the scanner marked out of Junk; the scanner alone sends it there', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'not junk', 'X-Spam-Status': 'Yes, score=9.1' })), { path: 'INBOX', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'junk', 'X-Spam-Status': 'Yes, score=9.1' })), { path: 'Junk', flags: [] });
  });

  it('disabled filters do nothing; a filter mailbox that is gone falls back to INBOX with the other actions', async () => {
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'disabled rule' })), { path: 'INBOX', flags: [] });
    assert.deepEqual(await deliver('ann@example.com', mail({ Subject: 'gone box' })), { path: 'INBOX', flags: ['\\Flagged'] });
  });

  it('stored copies keep Return-Path and Delivered-To', async () => {
    const work = await mailboxMessages(app, 'ann', 'Work');
    assert.match(work[0]!.text, /^Return-Path: <someone@remote\.example>\r\nDelivered-To: ann@example\.com\r\n/);
  });

  it('spam levels (WildDuck): 0 = everything, 100 = nothing, otherwise the scanner score must reach the level', async () => {
    const cases: Array<[number | null, string | null, string]> = [
      [null, 'add header', 'Junk'], // no level: every spam verdict counts
      [null, null, 'INBOX'],
      [50, 'add header', 'INBOX'], // 25 < 50
      [50, 'rewrite subject', 'Junk'], // 50
      [50, 'Yes, score=6.0', 'Junk'],
      [50, 'no action', 'INBOX'],
      [20, 'add header', 'Junk'], // 25 >= 20
      [80, 'reject', 'INBOX'], // 75 < 80
      [100, 'reject', 'INBOX'],
      [0, null, 'Junk'],
    ];
    for (const [level, header, expected] of cases) {
      await updateDeliverySettings(app.storage.documents, benId, { spamLevel: level });
      const headers: Record<string, string> = { To: 'ben@example.com', Subject: `level ${level} ${header}` };
      if (header) headers['X-Spam-Status'] = header;
      const got = await deliver('ben@example.com', mail(headers));
      assert.equal(got?.path, expected, `level ${level}, header ${header}`);
    }
  });
});

describe('deliverySettingsFor', () => {
  it('reads a request\'s settings once, however many taps ask, and afresh for the next request', async () => {
    const { deliverySettingsFor } = await import('../storage/delivery-settings.ts');
    let reads = 0;
    const docs = {
      list: async () => [],
      get: async () => {
        reads++;
        return { id: 'delivery', userId: 'u1', kind: 'settings', key: null, data: { forward: ['x@example.com'], spamLevel: 50 }, created: 0, updated: 0 };
      },
    } as unknown as Parameters<typeof deliverySettingsFor>[0];
    const request = { recipient: { userId: 'u1' } };
    const [a, b] = await Promise.all([deliverySettingsFor(docs, request), deliverySettingsFor(docs, request)]);
    assert.equal(reads, 1);
    assert.equal(a, b);
    assert.deepEqual(a, { forward: ['x@example.com'], spamLevel: 50 });
    await deliverySettingsFor(docs, { recipient: { userId: 'u1' } });
    assert.equal(reads, 2);
  });
});
