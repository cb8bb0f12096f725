/**
 * Transcripts for STATUS=SIZE (RFC 8438), OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970): the
 * capabilities, MAILBOXID in CREATE / SELECT / STATUS, FETCH EMAILID / THREADID / SAVEDATE / PREVIEW, and SEARCH
 * EMAILID / THREADID / SAVEDBEFORE / SAVEDON / SAVEDSINCE / SAVEDATESUPPORTED; then imapflow reading them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { appendMessage, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { ingestMessage } from '../storage/mime/index.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = 86_400_000;

/** A SEARCH date (`8-Dec-2026`) of the UTC day `time` falls on. */
function searchDate(time: number): string {
  const d = new Date(time);
  return `${d.getUTCDate()}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
}

/** INTERNALDATE / SAVEDATE text → ms. */
function dateTime(text: string): number {
  const m = /^"([ \d]\d)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"$/.exec(text);
  assert.ok(m, `a date-time: ${text}`);
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  return Date.UTC(Number(m[3]), MONTHS.indexOf(m[2]!), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset;
}

/** The value of `item` in a FETCH line: `(M…)` for ids, a quoted date, a string. */
function item(line: string, name: string): string {
  const m = new RegExp(`[( ]${name} (\\([^)]*\\)|"(?:\\\\.|[^"\\\\])*"|NIL|\\{\\d+\\})`).exec(line);
  assert.ok(m, `${name} in ${line}`);
  return m[1]!;
}

const ids = (fetched: string[], name: string) => fetched.filter((l) => l.startsWith('* ')).map((l) => item(l, name).slice(1, -1));

async function fresh(client: TestClient, name: string): Promise<string> {
  const created = await client.command(`CREATE ${name}`);
  const id = /^TAG OK \[MAILBOXID \((F[0-9a-f]{24})\)\] CREATE completed$/.exec(created.at(-1)!)?.[1];
  assert.ok(id, created.join('\n'));
  return id;
}

describe('STATUS=SIZE, OBJECTID, SAVEDATE, PREVIEW', () => {
  const t = imapTestAppPerSuite();

  it('announces the capabilities', async () => {
    const client = await login(t.app);
    const [caps] = await client.command('CAPABILITY');
    for (const cap of ['STATUS=SIZE', 'OBJECTID', 'SAVEDATE', 'PREVIEW']) assert.ok(caps!.split(' ').includes(cap), `${cap} in ${caps}`);
    client.end();
  });

  it('STATUS SIZE is the sum of the messages RFC822.SIZE', async () => {
    const client = await login(t.app);
    await client.command('CREATE Sized');
    assert.deepEqual(await client.command('STATUS Sized (SIZE MESSAGES)'), ['* STATUS "Sized" (SIZE 0 MESSAGES 0)', 'TAG OK STATUS completed']);
    await appendMessage(client, 'Sized', message('small'));
    await appendMessage(client, 'Sized', message('larger', 'x'.repeat(5000) + '\r\n'));
    await client.command('EXAMINE Sized');
    const sizes = (await client.command('FETCH 1:* RFC822.SIZE')).filter((l) => l.startsWith('* ')).map((l) => Number(/RFC822.SIZE (\d+)/.exec(l)![1]));
    assert.equal(sizes.length, 2);
    assert.deepEqual(await client.command('STATUS Sized (SIZE)'), [`* STATUS "Sized" (SIZE ${sizes[0]! + sizes[1]!})`, 'TAG OK STATUS completed']);
    client.end();
  });

  it('MAILBOXID: in CREATE, SELECT and STATUS, kept by RENAME, one per mailbox', async () => {
    const client = await login(t.app);
    const id = await fresh(client, 'Ided');
    const other = await fresh(client, 'Ided2');
    assert.notEqual(id, other);
    const selected = await client.command('SELECT Ided');
    assert.ok(selected.includes(`* OK [MAILBOXID (${id})] Ok`), selected.join('\n'));
    assert.deepEqual(await client.command('STATUS Ided (MAILBOXID UIDNEXT)'), [`* STATUS "Ided" (MAILBOXID (${id}) UIDNEXT 1)`, 'TAG OK STATUS completed']);
    await client.command('UNSELECT');
    assert.equal(await client.status('RENAME Ided Renamed'), 'OK RENAME completed');
    assert.deepEqual(await client.command('STATUS Renamed (MAILBOXID)'), [`* STATUS "Renamed" (MAILBOXID (${id}))`, 'TAG OK STATUS completed']);
    const examined = await client.command('EXAMINE INBOX');
    assert.ok(examined.some((l) => /^\* OK \[MAILBOXID \(F[0-9a-f]{24}\)\] Ok$/.test(l) && !l.includes(id)));
    client.end();
  });

  it('EMAILID and THREADID: shared by copies, kept by MOVE, a reply in its parent thread; SEARCH finds them', async () => {
    const client = await login(t.app);
    await fresh(client, 'Objects');
    await fresh(client, 'Objects2');
    await appendMessage(client, 'Objects', message('parent'));
    await appendMessage(client, 'Objects', message('child', 'Reply.\r\n', 'In-Reply-To: <parent@example.com>\r\n'));
    await appendMessage(client, 'Objects', message('stranger'));
    await client.command('SELECT Objects');
    const fetched = await client.command('FETCH 1:3 (EMAILID THREADID)');
    assert.equal(fetched.at(-1), 'TAG OK FETCH completed');
    const emails = ids(fetched, 'EMAILID');
    const threads = ids(fetched, 'THREADID');
    for (const e of emails) assert.match(e, /^M[0-9a-f]{24}$/);
    for (const th of threads) assert.match(th, /^T[0-9a-f]{24}$/);
    assert.equal(new Set(emails).size, 3);
    assert.equal(threads[0], threads[1], 'the reply is in its parent thread');
    assert.notEqual(threads[2], threads[0]);

    assert.deepEqual(await client.command(`SEARCH EMAILID ${emails[1]}`), ['* SEARCH 2', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`UID SEARCH THREADID ${threads[0]}`), ['* SEARCH 1 2', 'TAG OK UID SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH NOT THREADID ${threads[0]}`), ['* SEARCH 3', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH EMAILID M000000000000000000ffffff'), ['* SEARCH', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH EMAILID ${threads[0]}`), ['* SEARCH', 'TAG OK SEARCH completed'], 'a thread id is no email id');
    assert.match(await client.status('SEARCH EMAILID "not an id"'), /^BAD /);
    assert.match(await client.status('SEARCH THREADID'), /^BAD /);

    // COPY: the copy shares the email id (every copy of a message does); MOVE keeps it
    await client.command('COPY 1 Objects2');
    await client.command('MOVE 3 Objects2');
    await client.command('SELECT Objects2');
    const there = await client.command('FETCH 1:2 (EMAILID THREADID)');
    assert.deepEqual(ids(there, 'EMAILID'), [emails[0], emails[2]]);
    assert.deepEqual(ids(there, 'THREADID'), [threads[0], threads[2]]);
    assert.deepEqual(await client.command(`SEARCH EMAILID ${emails[0]}`), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    client.end();
  });

  it('SAVEDATE: when the message was saved here (not its internal date); COPY saves anew; SEARCH SAVED*', async () => {
    const client = await login(t.app);
    await fresh(client, 'Saved');
    await fresh(client, 'Saved2');
    const before = Date.now();
    const tag = client.nextTag();
    const text = message('dated');
    client.write(`${tag} APPEND Saved "01-Feb-2020 10:00:00 +0000" {${new TextEncoder().encode(text).length}+}\r\n${text}\r\n`);
    assert.match((await client.untilTagged(tag)).trim(), /OK \[APPENDUID/);
    await client.command('SELECT Saved');
    await client.command('COPY 1 Saved2');
    const after = Date.now();
    const [line] = await client.command('FETCH 1 (INTERNALDATE SAVEDATE)');
    assert.equal(dateTime(item(line!, 'INTERNALDATE')), Date.UTC(2020, 1, 1, 10));
    const saved = dateTime(item(line!, 'SAVEDATE'));
    assert.ok(saved >= Math.floor(before / 1000) * 1000 && saved <= after, `saved ${saved} between ${before} and ${after}`);

    const today = searchDate(saved);
    assert.deepEqual(await client.command(`SEARCH SAVEDON ${today}`), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH SAVEDSINCE ${today}`), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH SAVEDBEFORE ${today}`), ['* SEARCH', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH SAVEDSINCE ${searchDate(saved + DAY)}`), ['* SEARCH', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command(`SEARCH SAVEDBEFORE ${searchDate(saved + DAY)}`), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH ON 1-Feb-2020'), ['* SEARCH 1', 'TAG OK SEARCH completed'], 'ON still means the internal date');
    assert.deepEqual(await client.command('SEARCH SAVEDON 1-Feb-2020'), ['* SEARCH', 'TAG OK SEARCH completed']);
    assert.deepEqual(await client.command('SEARCH SAVEDATESUPPORTED'), ['* SEARCH 1', 'TAG OK SEARCH completed']);
    assert.match(await client.status('SEARCH SAVEDON yesterday'), /^BAD /);

    await client.command('SELECT Saved2');
    const [copied] = await client.command('FETCH 1 (INTERNALDATE SAVEDATE)');
    assert.equal(dateTime(item(copied!, 'INTERNALDATE')), Date.UTC(2020, 1, 1, 10), 'COPY keeps the internal date');
    assert.ok(dateTime(item(copied!, 'SAVEDATE')) >= saved, 'and saves the copy anew');
    client.end();
  });

  it('PREVIEW and PREVIEW (LAZY): the stored preview, normalised; UTF-8 as a literal unless UTF8=ACCEPT', async () => {
    const client = await login(t.app);
    await fresh(client, 'Previews');
    await appendMessage(client, 'Previews', message('p1', 'Hi Alice,\r\n\r\nthe   meeting\tis at 3.\r\n> what time?\r\n-- \r\nBob\r\n'));
    await appendMessage(client, 'Previews', message('p2', 'Grüße aus Köln\r\n', 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n'));
    await appendMessage(client, 'Previews', message('p3', `${'long '.repeat(80)}\r\n`));
    await appendMessage(client, 'Previews', message('p4', '', 'MIME-Version: 1.0\r\nContent-Type: image/gif\r\n'));
    await client.command('SELECT Previews');
    assert.deepEqual(await client.command('FETCH 1 PREVIEW'), ['* 1 FETCH (PREVIEW "Hi Alice, the meeting is at 3.")', 'TAG OK FETCH completed']);
    assert.deepEqual(await client.command('FETCH 1 (PREVIEW (LAZY))'), ['* 1 FETCH (PREVIEW "Hi Alice, the meeting is at 3.")', 'TAG OK FETCH completed']);
    assert.deepEqual(await client.command('FETCH 1 PREVIEW (LAZY)'), ['* 1 FETCH (PREVIEW "Hi Alice, the meeting is at 3.")', 'TAG OK FETCH completed']);
    const utf8 = 'Grüße aus Köln';
    assert.deepEqual(await client.command('UID FETCH 2 (PREVIEW UID)'), [`* 2 FETCH (UID 2 PREVIEW {${new TextEncoder().encode(utf8).length}}`, `${utf8})`, 'TAG OK UID FETCH completed']);
    const [long] = await client.command('FETCH 3 PREVIEW');
    assert.equal(item(long!, 'PREVIEW').length, 256 + 2);
    assert.deepEqual(await client.command('FETCH 4 PREVIEW'), ['* 4 FETCH (PREVIEW "")', 'TAG OK FETCH completed']);
    assert.match(await client.status('FETCH 1 (PREVIEW (FUZZY))'), /^BAD /);
    assert.match(await client.status('FETCH 1 (PREVIEW ())'), /^BAD /);
    await client.command('ENABLE UTF8=ACCEPT');
    assert.deepEqual(await client.command('FETCH 2 PREVIEW'), [`* 2 FETCH (PREVIEW "${utf8}")`, 'TAG OK FETCH completed']);
    // everything at once, with body items the other way
    const all = await client.command('FETCH 1 (UID EMAILID THREADID SAVEDATE PREVIEW RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)])');
    assert.match(all[0]!, /^\* 1 FETCH \(UID 1 EMAILID \(M[0-9a-f]{24}\) THREADID \(T[0-9a-f]{24}\) SAVEDATE "[^"]+" PREVIEW "Hi Alice, the meeting is at 3\." RFC822\.SIZE \d+ BODY\[HEADER\.FIELDS \(Subject\)\] \{\d+\}$/);
    client.end();
  });
});

describe('EMAILID over a large mailbox', () => {
  const t = imapTestAppPerSuite();

  it('answers every message once, in order, across the line batches (imapflow adds EMAILID to every FETCH)', async () => {
    const storage = t.app.storage;
    const box = await storage.mailboxes.create(t.userId, { path: 'Many' });
    const count = 1100; // more than one batch of 1024
    for (let i = 1; i <= count; i++) {
      const parsed = await ingestMessage(new TextEncoder().encode(message(`many-${i}`)), storage.blobs);
      await storage.messages.append({ userId: t.userId, mailboxId: box.id, flags: i % 2 ? ['\\Seen'] : [], internalDate: Date.UTC(2024, 0, 1), message: parsed });
    }
    const client = await login(t.app);
    await client.command('SELECT Many');
    const lines = await client.command('FETCH 1:* (UID FLAGS EMAILID)', 60_000);
    assert.equal(lines.at(-1), 'TAG OK FETCH completed');
    const fetched = lines.slice(0, -1);
    assert.equal(fetched.length, count);
    const emails = new Set<string>();
    fetched.forEach((line, i) => {
      const m = /^\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\) EMAILID \((M[0-9a-f]{24})\)\)$/.exec(line);
      assert.ok(m, line);
      assert.equal(Number(m[1]), i + 1);
      assert.equal(Number(m[2]), i + 1);
      assert.equal(m[3]!.includes('\\Seen'), (i + 1) % 2 === 1);
      emails.add(m[4]!);
    });
    assert.equal(emails.size, count);
    client.end();
  });
});

describe('imapflow reads the object ids', () => {
  const t = imapListenerPerSuite();

  it('emailId, threadId, mailbox id and STATUS SIZE', async () => {
    const c = new ImapFlow({ host: '127.0.0.1', port: t.port, secure: false, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await c.connect();
    await c.mailboxCreate('Flow');
    await c.append('Flow', message('flow-one'));
    await c.append('Flow', message('flow-two', 'Reply.\r\n', 'In-Reply-To: <flowone@example.com>\r\n'));
    const status = await c.status('Flow', { messages: true, size: true } as Parameters<ImapFlow['status']>[1]);
    assert.ok(status);
    assert.equal(status.messages, 2);
    assert.ok(typeof (status as { size?: number }).size === 'number' && (status as { size?: number }).size! > 0, JSON.stringify(status));
    const box = await c.mailboxOpen('Flow');
    assert.match(String((box as { mailboxId?: string }).mailboxId), /^F[0-9a-f]{24}$/);
    const found = [];
    for await (const msg of c.fetch('1:*', { uid: true, threadId: true } as Parameters<ImapFlow['fetch']>[1])) found.push(msg);
    assert.equal(found.length, 2);
    for (const msg of found) assert.match(String(msg.emailId), /^M[0-9a-f]{24}$/);
    assert.equal(found[0]!.threadId, found[1]!.threadId);
    await c.logout();
  });
});
