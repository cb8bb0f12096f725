/**
 * protocols/net/tls.ts: the self-signed certificate is generated once, kept in <dataDir>/tls with a private key
 * file, reused on later starts and replaced when unusable; configured key/cert files are used as given and
 * bad ones fail with the option's path. Also the PROXY protocol parser (protocols/net/proxy-protocol.ts).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTlsContext } from '../protocols/net/tls.ts';
import { parseProxyHeader, formatIpv6, ProxyHeaderError, V1_MAX } from '../protocols/net/proxy-protocol.ts';
import { resolveConfig, ConfigError } from '../hooks/config.ts';
import { silentLogger } from '../hooks/log.ts';
import { runtimeName } from '../hooks/runtime.ts';

describe('TLS material', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'wd-tls-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('generates a self-signed certificate on first start and reuses it afterwards', async () => {
    const config = resolveConfig({ dataDir: join(dir, 'data') });
    const first = await loadTlsContext(config, silentLogger);
    assert.equal(first.selfSigned, true);
    assert.equal(first.keyFile, join(dir, 'data', 'tls', 'key.pem'));
    assert.equal(readFileSync(first.certFile, 'utf8'), first.cert);
    if (runtimeName === 'node' && process.platform !== 'win32') {
      assert.equal(statSync(first.keyFile).mode & 0o777, 0o600, 'the private key is readable by the owner only');
    } else {
      assert.equal(statSync(first.keyFile).mode & 0o077, 0, 'the private key is readable by the owner only');
    }
    const x509 = new X509Certificate(first.cert);
    assert.equal(x509.ca, false);
    assert.match(x509.subjectAltName ?? '', /DNS:localhost/);
    assert.match(x509.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.ok(Date.parse(x509.validTo) > Date.now() + 365 * 24 * 3600 * 1000);

    const second = await loadTlsContext(config, silentLogger);
    assert.equal(second.cert, first.cert, 'same certificate on the next start');
    assert.equal(second.key, first.key);
  });

  it('replaces generated material that is unreadable', async () => {
    const config = resolveConfig({ dataDir: join(dir, 'broken') });
    const first = await loadTlsContext(config, silentLogger);
    writeFileSync(first.certFile, 'not a certificate');
    const again = await loadTlsContext(config, silentLogger);
    assert.notEqual(again.cert, first.cert);
    assert.equal(readFileSync(again.certFile, 'utf8'), again.cert);
  });

  it('uses configured key and certificate files', async () => {
    const generated = await loadTlsContext(resolveConfig({ dataDir: join(dir, 'source') }), silentLogger);
    const config = resolveConfig({ dataDir: join(dir, 'unused'), tls: { key: generated.keyFile, cert: generated.certFile } });
    const loaded = await loadTlsContext(config, silentLogger);
    assert.equal(loaded.selfSigned, false);
    assert.equal(loaded.cert, generated.cert);
  });

  it('fails with the option path for missing or mismatched files', async () => {
    const a = await loadTlsContext(resolveConfig({ dataDir: join(dir, 'a') }), silentLogger);
    const b = await loadTlsContext(resolveConfig({ dataDir: join(dir, 'b') }), silentLogger);
    const load = (tls: { key?: string | null; cert?: string | null }) => loadTlsContext(resolveConfig({ dataDir: dir, tls }), silentLogger);
    await assert.rejects(load({ key: a.keyFile }), (err: unknown) => err instanceof ConfigError && err.path === 'tls.cert');
    await assert.rejects(load({ key: join(dir, 'missing.pem'), cert: a.certFile }), (err: unknown) => err instanceof ConfigError && err.path === 'tls.key');
    await assert.rejects(load({ key: a.keyFile, cert: b.certFile }), (err: unknown) => err instanceof ConfigError && err.path === 'tls.cert');
  });
});

describe('PROXY protocol parser', () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

  it('parses v1 lines and reports their length', () => {
    const h = parseProxyHeader(text('PROXY TCP6 2001:db8::1 ::1 40000 993\r\nA1 NOOP\r\n'))!;
    assert.deepEqual(h.source, { address: '2001:db8::1', port: 40000 });
    assert.deepEqual(h.destination, { address: '::1', port: 993 });
    assert.equal(h.length, 'PROXY TCP6 2001:db8::1 ::1 40000 993\r\n'.length);
    assert.equal(parseProxyHeader(text('PROXY UNKNOWN\r\n'))!.source, null);
  });

  it('asks for more bytes while a header is incomplete', () => {
    assert.equal(parseProxyHeader(text('PRO')), null);
    assert.equal(parseProxyHeader(text('PROXY TCP4 192.0.2.1')), null);
    assert.equal(parseProxyHeader(Uint8Array.from(sig.slice(0, 7))), null);
    assert.equal(parseProxyHeader(Uint8Array.from([...sig, 0x21, 0x11, 0x00, 12, 1, 2])), null);
  });

  it('refuses what is not a valid header, within a bounded number of bytes', () => {
    const bad = [
      'GET / HTTP/1.1\r\n',
      'PROXY TCP4 192.0.2.1 192.0.2.2 70000 1\r\n',
      'PROXY TCP4 2001:db8::1 192.0.2.2 1 1\r\n',
      'PROXY TCP4 192.0.2.1\r\n',
      'PROXY TCP4 ' + '1'.repeat(V1_MAX),
    ];
    for (const b of bad) assert.throws(() => parseProxyHeader(text(b)), ProxyHeaderError, b);
    assert.throws(() => parseProxyHeader(Uint8Array.from([...sig, 0x31, 0x11, 0, 12])), /version 3/);
    assert.throws(() => parseProxyHeader(Uint8Array.from([...sig, 0x21, 0x11, 0xff, 0xff])), /too long/);
    assert.throws(() => parseProxyHeader(Uint8Array.from([...sig, 0x21, 0x11, 0, 4, 1, 2, 3, 4])), /too short/);
  });

  it('formats IPv6 addresses the RFC 5952 way', () => {
    const ip = (...groups: number[]) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
    assert.equal(formatIpv6(ip(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), '2001:db8::1');
    assert.equal(formatIpv6(ip(0, 0, 0, 0, 0, 0, 0, 1)), '::1');
    assert.equal(formatIpv6(ip(0, 0, 0, 0, 0, 0, 0, 0)), '::');
    assert.equal(formatIpv6(ip(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1)), '2001:db8:0:1::1');
    assert.equal(formatIpv6(ip(0x2001, 0, 0, 1, 0, 0, 0, 1)), '2001:0:0:1::1', 'the longest run');
    assert.equal(formatIpv6(ip(0x2001, 0, 0, 1, 0, 0, 1, 1)), '2001::1:0:0:1:1', 'the first of equal runs');
    assert.equal(formatIpv6(ip(1, 2, 3, 4, 5, 6, 7, 8)), '1:2:3:4:5:6:7:8');
  });
});
