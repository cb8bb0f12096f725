/**
 * BINARY (RFC 3516) transcripts: FETCH BINARY[part]<partial>, BINARY.PEEK, BINARY.SIZE decoded from base64 and
 * quoted-printable, literal8 for content with NULs, [UNKNOWN-CTE], section syntax, \Seen, APPEND with a literal8;
 * BINARY.SIZE of a message stored before decoded sizes were recorded; and imapflow using BINARY over TCP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { ImapFlow } from 'imapflow';
import { bootImapTestApp, connect, login } from './helpers/imap-harness.ts';
import type { ImapTestApp, TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';

const NUL_BYTES = Buffer.from([0x41, 0x00, 0x42, 0x0d, 0x0a, 0xff]);

const MULTIPART = [
  'From: a@example.com',
  'Subject: binary',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b"',
  '',
  '--b',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'caf=C3=A9 soft=',
  'break  ',
  'line two',
  '--b',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  '',
  NUL_BYTES.toString('base64'),
  '--b',
  'Content-Type: text/plain',
  'Content-Transfer-Encoding: x-uuencode',
  '',
  'begin 644 x',
  '--b',
  'Content-Type: text/plain',
  '',
  'plain 7bit',
  '--b--',
  '',
].join('\r\n');

const QP_DECODED = 'café softbreak\r\nline two';

async function appendText(client: TestClient, mailbox: string, text: string): Promise<string> {
  const size = Buffer.byteLength(text);
  return client.status(`APPEND ${mailbox} {${size}+}\r\n${text}`);
}

describe('IMAP BINARY', () => {
  let t: ImapTestApp;
  let client: TestClient;
  before(async () => {
    t = await bootImapTestApp();
    client = await login(t.app);
    await client.command('CREATE Bin');
    assert.match(await appendText(client, 'Bin', MULTIPART), /^OK \[APPENDUID \d+ 1\]/);
    await client.command('SELECT Bin');
  });
  after(async () => {
    client.end();
    await t.close();
  });

  it('is announced', async () => {
    const { greeting } = await connect(t.app);
    assert.ok(greeting.includes(' BINARY'), greeting);
  });

  it('decodes quoted-printable and reports its decoded size', async () => {
    const lines = await client.command('FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])');
    const expected = Buffer.from(QP_DECODED);
    assert.equal(lines[0], `* 1 FETCH (BINARY.SIZE[1] ${expected.length} BINARY[1] {${expected.length}}`);
    assert.equal(lines.slice(1, -1).join('\r\n'), `${QP_DECODED})`);
    assert.equal(lines.at(-1), 'TAG OK FETCH completed');
  });

  it('sends a part with NULs decoded from base64 as a literal8, whole and partial', async () => {
    const raw = await client.raw('FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])', 'B1');
    assert.equal(raw, `* 1 FETCH (BINARY[2] ~{6}\r\n${NUL_BYTES.toString('latin1')} BINARY.SIZE[2] 6)\r\nB1 OK FETCH completed\r\n`.replace('\xff', '\ufffd'));
    const partial = await client.raw('FETCH 1 (BINARY.PEEK[2]<1.2>)', 'B2');
    assert.equal(partial, `* 1 FETCH (BINARY[2]<1> ~{2}\r\n\0B)\r\nB2 OK FETCH completed\r\n`);
    const past = await client.command('FETCH 1 (BINARY.PEEK[2]<10.5>)');
    assert.equal(past[0], '* 1 FETCH (BINARY[2]<10> "")');
  });

  it('passes identity encodings through, and BINARY[] is the stored message', async () => {
    const lines = await client.command('FETCH 1 (BINARY.PEEK[4] BINARY.SIZE[])');
    assert.equal(lines[0], `* 1 FETCH (BINARY[4] {10}`);
    assert.equal(lines[1], `plain 7bit BINARY.SIZE[] ${Buffer.byteLength(MULTIPART)})`);
  });

  it('answers NO [UNKNOWN-CTE] for an encoding it cannot decode, and BAD for a section BINARY does not take', async () => {
    assert.match(await client.status('FETCH 1 (BINARY.PEEK[3])'), /^NO \[UNKNOWN-CTE\]/);
    assert.match(await client.status('FETCH 1 (BINARY.SIZE[3])'), /^NO \[UNKNOWN-CTE\]/);
    assert.match(await client.status('FETCH 1 (BINARY.PEEK[1.MIME])'), /^BAD /);
    assert.match(await client.status('FETCH 1 (BINARY.PEEK[HEADER])'), /^BAD /);
    assert.match(await client.status('FETCH 1 (BINARY.SIZE[1]<0.5>)'), /^BAD /);
    const missing = await client.command('FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])');
    assert.equal(missing[0], '* 1 FETCH (BINARY[9] NIL BINARY.SIZE[9] 0)');
  });

  it('BINARY sets \\Seen, BINARY.PEEK does not', async () => {
    assert.ok(!(await client.command('FETCH 1 (FLAGS)'))[0]!.includes('\\Seen'));
    const lines = await client.command('FETCH 1 (BINARY[4])');
    assert.match(lines.join('\n'), /FLAGS \([^)]*\\Seen/);
  });

  it('takes APPEND with a literal8 holding NULs and gives the bytes back', async () => {
    const body = 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n';
    const message = Buffer.concat([Buffer.from(body), NUL_BYTES.subarray(0, 5)]);
    client.write(`L1 APPEND Bin ~{${message.length}}\r\n`);
    assert.equal(await client.line(), '+ Ready for literal data');
    client.write(Buffer.concat([message, Buffer.from('\r\n')]));
    assert.match(await client.untilTagged('L1'), /L1 OK \[APPENDUID \d+ 2\]/);
    const raw = await client.raw('FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])', 'L2');
    assert.ok(raw.includes('BINARY.SIZE[1] 5 BINARY[1] ~{5}\r\nA\0B\r\n)'), raw);
    // BODY[] may not carry a NUL: it goes out as a space there
    const bodyRaw = await client.raw('FETCH 2 (BODY.PEEK[1])', 'L3');
    assert.ok(bodyRaw.includes('BODY[1] {5}\r\nA B\r\n)'), bodyRaw);
  });

  it('counts BINARY.SIZE of a message stored before decoded sizes were recorded', async () => {
    const mailbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'Bin'))!;
    const [parts] = await t.app.storage.messages.parts(mailbox.id, [1], { mime: true });
    assert.equal(parts!.mime!.children![0]!.decodedSize, Buffer.byteLength(QP_DECODED), 'recorded at ingest');
    const original = t.app.storage.messages.parts.bind(t.app.storage.messages);
    // with the sizes recorded, BINARY.SIZE reads the MIME tree and no content
    const wanted: Array<Record<string, unknown>> = [];
    t.app.storage.messages.parts = async (mailboxId, uids, parts) => {
      wanted.push({ ...parts });
      return original(mailboxId, uids, parts);
    };
    try {
      const lines = await client.command('FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[])');
      assert.equal(lines[0], `* 1 FETCH (BINARY.SIZE[1] ${Buffer.byteLength(QP_DECODED)} BINARY.SIZE[2] 6 BINARY.SIZE[] ${Buffer.byteLength(MULTIPART)})`);
      assert.deepEqual(wanted, [{ mime: true }]);
    } finally {
      t.app.storage.messages.parts = original;
    }
    // the same tree without the recorded sizes, as an older message has it
    const strip = (node: { decodedSize?: number; children?: unknown[] }): void => {
      delete node.decodedSize;
      for (const child of node.children ?? []) strip(child as typeof node);
    };
    t.app.storage.messages.parts = async (...args) => {
      const found = await original(...args);
      for (const entry of found) if (entry.mime) strip(entry.mime);
      return found;
    };
    try {
      const lines = await client.command('FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])');
      assert.equal(lines[0], `* 1 FETCH (BINARY.SIZE[1] ${Buffer.byteLength(QP_DECODED)} BINARY.SIZE[2] 6)`);
    } finally {
      t.app.storage.messages.parts = original;
    }
  });
});

describe('IMAP BINARY with imapflow', () => {
  const t = imapListenerPerSuite();

  it('fetches decoded parts with BINARY and appends a message with NULs as a literal8', async () => {
    const c = new ImapFlow({ host: '127.0.0.1', port: t.port, secure: false, doSTARTTLS: false, auth: { user: 'alice', pass: 'secret' }, logger: false });
    await c.connect();
    try {
      assert.ok(c.capabilities.has('BINARY'));
      await c.mailboxCreate('Flow');
      const first = await c.append('Flow', MULTIPART);
      assert.equal(first && first.uid, 1);
      const withNul = Buffer.concat([Buffer.from('Subject: nul\r\n\r\n'), NUL_BYTES]);
      const second = await c.append('Flow', withNul);
      assert.equal(second && second.uid, 2);
      const lock = await c.getMailboxLock('Flow');
      try {
        const fetched = await c.fetchOne('1', { bodyParts: ['1', '2'] }, { binary: true } as Parameters<typeof c.fetchOne>[2]);
        assert.ok(fetched);
        assert.equal(fetched.bodyParts?.get('1')?.toString(), QP_DECODED);
        assert.deepEqual(fetched.bodyParts?.get('2'), NUL_BYTES);
        const source = await c.fetchOne('2', { source: true }, { binary: true } as Parameters<typeof c.fetchOne>[2]);
        assert.ok(source);
        assert.deepEqual(source.source, withNul);
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  });
});
