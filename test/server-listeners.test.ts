/**
 * startListeners (protocols/server.ts) starts every configured listener (HTTP, LMTP, POP3, IMAP, plaintext and
 * implicit-TLS ports) with one TLS context loaded once: every TLS port and every STARTTLS/STLS upgrade presents
 * the same certificate, the one kept in the data directory. With only HTTP enabled, no TLS material is loaded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { startListeners } from '../protocols/server.ts';
import { bootTestApp } from './helpers/test-backend.ts';
import type { Listener } from '../protocols/net/listener.ts';
import { resolveConfig } from '../hooks/config.ts';
import type { ConfigInput } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import type { LogFields } from '../hooks/log.ts';
import { connectPlain } from './helpers/line-client.ts';

const local = { host: '127.0.0.1', port: 0 };

async function boot(input: ConfigInput) {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-listeners-'));
  const entries: LogFields[] = [];
  const log = createLogger({ level: 'debug', format: 'json', sink: (_line, entry) => entries.push(entry) });
  const app = await bootTestApp(resolveConfig({ dataDir, ...input }), log);
  let listeners: Listener[] = [];
  return {
    dataDir,
    entries,
    start: async () => (listeners = await startListeners(app)),
    close: async () => {
      for (const l of listeners) await l.close();
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The server certificate's SHA-256 fingerprint after an implicit-TLS connect. */
function implicitTlsFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/**
 * The fingerprint after a STARTTLS-style upgrade: read the greeting, then send each command and read up to its
 * final reply line (the last must be the go-ahead); the handshake trusts only `ca`.
 */
async function upgradeFingerprint(port: number, steps: Array<[string, RegExp]>, ca: string): Promise<string> {
  const client = await connectPlain(port);
  await client.line();
  for (const [command, final] of steps) {
    client.send(`${command}\r\n`);
    let line = await client.line();
    while (!final.test(line)) line = await client.line();
  }
  const secure = await client.startTls({ ca });
  const fingerprint = (secure.socket as TLSSocket).getPeerX509Certificate()!.fingerprint256;
  secure.close();
  return fingerprint;
}

describe('startListeners', () => {
  it('starts HTTP, LMTP, POP3 and IMAP (plaintext and TLS ports) sharing one TLS context', { timeout: 60_000 }, async () => {
    const server = await boot({
      api: { enabled: true, ...local },
      lmtp: { enabled: true, ...local, tlsPort: 0 },
      pop3: { enabled: true, ...local, tlsPort: 0 },
      imap: { enabled: true, ...local, tlsPort: 0 },
    });
    try {
      const listeners = await server.start();
      const urls = listeners.map((l) => l.describe);
      const port = (scheme: string) => {
        const url = urls.find((u) => u.startsWith(`${scheme}://`));
        assert.ok(url, `${scheme} listener in ${urls.join(' ')}`);
        return Number(url.slice(url.lastIndexOf(':') + 1));
      };
      assert.deepEqual(
        urls.map((u) => u.replace(/:\d+$/, '')),
        ['http://127.0.0.1', 'lmtp://127.0.0.1', 'lmtps://127.0.0.1', 'pop3://127.0.0.1', 'pop3s://127.0.0.1', 'imap://127.0.0.1', 'imaps://127.0.0.1'],
      );
      assert.equal((await fetch(`http://127.0.0.1:${port('http')}/health`)).status, 200);

      const generated = server.entries.filter((e) => /self-signed TLS certificate/.test(String(e.msg)));
      const reused = server.entries.filter((e) => /reusing the generated TLS certificate/.test(String(e.msg)));
      assert.equal(generated.length, 1, 'the certificate is generated once');
      assert.equal(reused.length, 0, 'and not loaded again per protocol');

      const pem = readFileSync(join(server.dataDir, 'tls', 'cert.pem'), 'utf8');
      const expected = new X509Certificate(pem).fingerprint256;
      const seen = [
        await implicitTlsFingerprint(port('lmtps')),
        await implicitTlsFingerprint(port('pop3s')),
        await implicitTlsFingerprint(port('imaps')),
        await upgradeFingerprint(port('lmtp'), [['LHLO client.test', /^250 /], ['STARTTLS', /^220 2\.0\.0/]], pem),
        await upgradeFingerprint(port('pop3'), [['STLS', /^\+OK Begin TLS/]], pem),
        await upgradeFingerprint(port('imap'), [['a STARTTLS', /^a OK/]], pem),
      ];
      assert.deepEqual(seen, seen.map(() => expected));
    } finally {
      await server.close();
    }
  });

  it('loads no TLS material when only HTTP runs', async () => {
    const server = await boot({ api: { enabled: true, ...local }, lmtp: { enabled: false }, pop3: { enabled: false }, imap: { enabled: false } });
    try {
      const listeners = await server.start();
      assert.deepEqual(listeners.map((l) => l.describe.replace(/:\d+$/, '')), ['http://127.0.0.1']);
      assert.equal(existsSync(join(server.dataDir, 'tls')), false);
    } finally {
      await server.close();
    }
  });
});
