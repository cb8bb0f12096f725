/**
 * COMPRESS=DEFLATE (RFC 4978): transcripts through a client-side zlib pair over the in-memory connection, the deflate
 * stream's bounded inflation (a deflate bomb), and real clients over loopback sockets: imapflow (which compresses
 * whenever the server offers it) over STARTTLS, and Python's zlib on a raw socket.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duplex, Writable } from 'node:stream';
import { constants, createDeflateRaw, createInflateRaw, deflateRawSync } from 'node:zlib';
import { ImapFlow } from 'imapflow';
import { DeflateSocket } from '../protocols/net/deflate-socket.ts';
import { appendMessage, bootImapTestApp, duplexPair, imapTestAppPerSuite, login, message, TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { duplexConnection, handleImapConnection } from '../protocols/imap.ts';
import { python } from './helpers/python.ts';

/** A deflate stream closed without its final block (how IMAP connections end): the inflater's error to ignore. */
function endsMidStream(err: Error & { code?: string }): void {
  if (err.code !== 'Z_BUF_ERROR') throw err;
}

/** The client's side of COMPRESS: its own zlib streams (raw deflate, a sync flush after every write). */
function compressedClient(raw: Duplex, done: Promise<void>): TestClient {
  raw.removeAllListeners('data');
  const inflate = createInflateRaw();
  const deflate = createDeflateRaw();
  inflate.on('error', endsMidStream);
  raw.pipe(inflate);
  deflate.on('data', (chunk: Uint8Array) => raw.write(chunk));
  const writable = new Writable({
    write(chunk: Uint8Array, _encoding, callback) {
      deflate.write(chunk);
      deflate.flush(constants.Z_SYNC_FLUSH, () => callback());
    },
  });
  const duplex = Duplex.from({ readable: inflate, writable });
  duplex.on('error', endsMidStream);
  return new TestClient(duplex, done);
}

describe('COMPRESS DEFLATE transcripts', () => {
  const t = imapTestAppPerSuite();

  it('is offered after login only; switches both directions after the tagged OK; a second COMPRESS gets COMPRESSIONACTIVE', async () => {
    const [server, raw] = duplexPair();
    const done = handleImapConnection(t.app, duplexConnection(server));
    const plain = new TestClient(raw, done);
    assert.doesNotMatch(await plain.line(), /COMPRESS=DEFLATE/);
    assert.match((await plain.command('COMPRESS DEFLATE')).at(-1)!, /^TAG BAD Log in first/);
    const loggedIn = await plain.command('LOGIN alice secret');
    assert.match(loggedIn.at(-1)!, /^TAG OK \[CAPABILITY [^\]]* COMPRESS=DEFLATE[ \]]/);
    assert.deepEqual(await plain.command('COMPRESS DEFLATE'), ['TAG OK DEFLATE active']);

    const client = compressedClient(raw, done);
    const caps = await client.command('CAPABILITY');
    assert.match(caps[0]!, /^\* CAPABILITY IMAP4rev1 /);
    assert.doesNotMatch(caps[0]!, /COMPRESS=DEFLATE/, 'not offered once active');
    assert.deepEqual(await client.command('COMPRESS DEFLATE'), ['TAG NO [COMPRESSIONACTIVE] DEFLATE active already']);
    await client.command('CREATE Zipped');
    const body = 'Compressed hello.\r\n'.repeat(200);
    assert.match(await appendMessage(client, 'Zipped', message('zipped', body)), /^OK \[APPENDUID \d+ 1\]/);
    await client.command('SELECT Zipped');
    const fetched = await client.command('FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT])');
    assert.match(fetched[0]!, new RegExp(`^\\* 1 FETCH \\(RFC822.SIZE \\d+ BODY\\[TEXT\\] \\{${body.length}\\}$`));
    assert.equal(fetched.slice(1, -2).join('\r\n') + '\r\n', body);
    // UNAUTHENTICATE (RFC 8437) keeps the compression: no STARTTLS under it, no second COMPRESS after a new login
    assert.deepEqual(await client.command('UNAUTHENTICATE'), ['TAG OK UNAUTHENTICATE completed']);
    const [again] = await client.command('CAPABILITY');
    assert.doesNotMatch(again!, /STARTTLS|COMPRESS/);
    assert.equal((await client.command('STARTTLS')).at(-1), 'TAG BAD STARTTLS is not possible after COMPRESS');
    assert.match((await client.command('LOGIN alice secret')).at(-1)!, /^TAG OK /);
    assert.deepEqual(await client.command('COMPRESS DEFLATE'), ['TAG NO [COMPRESSIONACTIVE] DEFLATE active already']);
    assert.deepEqual((await client.command('LOGOUT')).slice(0, 1), ['* BYE Logging out']);
    await done;
  });

  it('imap.compress: false neither offers nor accepts it', async () => {
    const off = await bootImapTestApp({ imap: { compress: false } });
    try {
      const client = await login(off.app);
      assert.doesNotMatch((await client.command('CAPABILITY'))[0]!, /COMPRESS/);
      assert.equal(await client.status('COMPRESS DEFLATE'), 'BAD COMPRESS is not offered');
      assert.equal(await client.status('NOOP'), 'OK NOOP completed');
      client.end();
    } finally {
      await off.close();
    }
  });

  it('refuses an unknown mechanism with BAD and stays uncompressed', async () => {
    const client = await login(t.app);
    assert.match(await client.status('COMPRESS GZIP'), /^BAD Unknown compression mechanism GZIP/);
    assert.match(await client.status('COMPRESS'), /^BAD /);
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
    client.end();
  });

  it('inflates commands the client pipelined right behind COMPRESS', async () => {
    const [server, raw] = duplexPair();
    const done = handleImapConnection(t.app, duplexConnection(server));
    const plain = new TestClient(raw, done);
    await plain.line();
    await plain.command('LOGIN alice secret');
    // COMPRESS and, in the same write, a compressed NOOP: the server must inflate what it already buffered
    const deflate = createDeflateRaw();
    const compressed: Uint8Array[] = [];
    deflate.on('data', (chunk: Uint8Array) => compressed.push(chunk));
    deflate.write('P1 NOOP\r\n');
    await new Promise<void>((resolve) => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    raw.removeAllListeners('data');
    const inflate = createInflateRaw();
    inflate.on('error', endsMidStream);
    let text = '';
    const seen = new Promise<void>((resolve) => {
      inflate.on('data', (chunk: Uint8Array) => {
        text += new TextDecoder().decode(chunk);
        if (text.includes('P1 OK')) resolve();
      });
    });
    let head = '';
    const switched = new Promise<void>((resolve) => {
      const onData = (chunk: Uint8Array): void => {
        // the tagged OK is plain text; whatever follows it is the compressed stream
        const bytes = Buffer.from(chunk);
        const at = (head + bytes.toString('latin1')).indexOf('Z1 OK DEFLATE active\r\n');
        if (at < 0) {
          head += bytes.toString('latin1');
          return;
        }
        raw.off('data', onData);
        const end = at + 'Z1 OK DEFLATE active\r\n'.length - head.length;
        if (end < bytes.length) inflate.write(bytes.subarray(end));
        raw.pipe(inflate);
        resolve();
      };
      raw.on('data', onData);
    });
    raw.write(Buffer.concat([Buffer.from('Z1 COMPRESS DEFLATE\r\n'), ...compressed]));
    await switched;
    await seen;
    assert.match(text, /^P1 OK NOOP completed\r\n$/);
    raw.end();
    await done;
  });

  it('a deflate bomb (a command line inflating to 64 MB) gets BAD and the session closes', async () => {
    const client = await login(t.app);
    const tag = client.nextTag();
    assert.deepEqual(await client.command('COMPRESS DEFLATE'), ['TAG OK DEFLATE active']);
    const raw = client.socket;
    raw.removeAllListeners('data');
    const inflate = createInflateRaw();
    inflate.on('error', endsMidStream);
    raw.pipe(inflate);
    let text = '';
    inflate.on('data', (chunk: Uint8Array) => (text += new TextDecoder().decode(chunk)));
    const closed = new Promise<void>((resolve) => {
      inflate.on('end', resolve);
      inflate.on('error', () => resolve());
    });
    // about 64 KB on the wire; the server's line limit (64 KiB) stops it long before it is inflated
    const bomb = deflateRawSync(Buffer.concat([Buffer.from(`${tag} NOOP `), Buffer.alloc(64 * 1024 * 1024, 0x61)]), { finishFlush: constants.Z_SYNC_FLUSH });
    raw.write(bomb);
    await closed;
    assert.match(text, /^\* BAD Command line too long\r\n\* BYE /);
  });
});

describe('DeflateSocket', () => {
  it('inflates only as fast as its reader takes the bytes: a deflate bomb never sits inflated in memory', async () => {
    const [socket, peer] = duplexPair();
    const stream = new DeflateSocket(socket);
    const total = 256 * 1024 * 1024;
    // 256 MiB of zeros deflate to about 256 KB
    peer.write(deflateRawSync(Buffer.alloc(total), { finishFlush: constants.Z_SYNC_FLUSH }));
    let read = 0;
    let most = 0;
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      read += chunk.length;
      // what is inflated and not yet taken: this stream's buffer, bounded by its high-water mark plus one zlib chunk
      most = Math.max(most, stream.readableLength);
      if (read >= 8 * 1024 * 1024) break;
    }
    assert.ok(read >= 8 * 1024 * 1024);
    assert.ok(most <= 128 * 1024, `inflated bytes held: ${most}`);
    assert.ok(stream.destroyed, 'the loop break destroyed it');
  });

  it('a corrupt stream destroys it with the inflater error', async () => {
    const [socket, peer] = duplexPair();
    const stream = new DeflateSocket(socket);
    const failed = new Promise<Error>((resolve) => stream.on('error', resolve));
    const closed = new Promise<void>((resolve) => socket.on('close', resolve));
    peer.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    assert.match((await failed).message, /invalid|incorrect|unknown/i);
    await closed; // and the connection under it is closed
  });
});

/** A raw-socket client in Python: LOGIN, COMPRESS, then commands through zlib (wbits -15: raw deflate). */
const PYTHON_COMPRESS = `
import socket, sys, zlib, json
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
buf = b''
def until(tag, inflate=None):
    global buf
    while (b'\\r\\n' + tag + b' ') not in (b'\\r\\n' + buf):
        data = s.recv(65536)
        if not data: raise Exception('closed: %r' % buf)
        buf += inflate.decompress(data) if inflate else data
    at = (b'\\r\\n' + buf).index(b'\\r\\n' + tag + b' ')
    end = buf.index(b'\\r\\n', at) + 2
    out, buf = buf[:end], buf[end:]
    return out.decode()
out = {}
until(b'*') if False else None
while b'\\r\\n' not in buf: buf += s.recv(65536)
buf = buf[buf.index(b'\\r\\n') + 2:]
s.sendall(b'a LOGIN alice secret\\r\\n'); out['login'] = until(b'a').splitlines()[-1]
s.sendall(b'b COMPRESS DEFLATE\\r\\n'); out['compress'] = until(b'b')
c = zlib.compressobj(6, zlib.DEFLATED, -15); d = zlib.decompressobj(-15)
def send(line): s.sendall(c.compress(line) + c.flush(zlib.Z_SYNC_FLUSH))
send(b'c STATUS INBOX (MESSAGES SIZE MAILBOXID)\\r\\n'); out['status'] = until(b'c', d)
send(b'e LOGOUT\\r\\n'); out['logout'] = until(b'e', d)
print(json.dumps(out))
`;

describe('COMPRESS with real clients', () => {
  const t = imapListenerPerSuite({}, { tls: true });

  it('imapflow compresses over STARTTLS (TLS underneath) and works through it', async () => {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: t.port,
      secure: false,
      doSTARTTLS: true,
      auth: { user: 'alice', pass: 'secret' },
      logger: false,
      tls: { rejectUnauthorized: false },
    });
    await c.connect();
    assert.ok(c.secureConnection);
    const compressed = t.logs.filter((entry) => entry.command === 'COMPRESS' || entry.verb === 'COMPRESS');
    assert.equal(compressed.length, 1, 'imapflow sent COMPRESS DEFLATE');
    assert.equal(compressed[0]!.status, 'OK');
    const big = message('flow-zip', 'line of text to compress\r\n'.repeat(4000));
    await c.append('INBOX', big);
    const lock = await c.getMailboxLock('INBOX');
    try {
      const fetched = await c.fetchOne('*', { source: true });
      assert.equal(fetched && fetched.source?.toString(), big);
    } finally {
      lock.release();
    }
    await c.logout();
  });

  it('python3 with zlib on a raw socket', async () => {
    const result = await python(PYTHON_COMPRESS, [String(t.port)]);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, string>;
    assert.match(out.login!, /^a OK /);
    assert.equal(out.compress, 'b OK DEFLATE active\r\n');
    assert.match(out.status!, /^\* STATUS "?INBOX"? \(MESSAGES \d+ SIZE \d+ MAILBOXID \(F[0-9a-f]{24}\)\)\r\nc OK STATUS completed\r\n$/);
    assert.match(out.logout!, /^\* BYE .*\r\ne OK /);
  });
});

