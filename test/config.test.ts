import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, applyEnv, envName, loadConfig, ConfigError } from '../hooks/config.ts';
import shipped from '../wildduck.config.ts';

describe('configuration', () => {
  it('fills every default, with the documented listener ports', () => {
    const c = resolveConfig({});
    assert.equal(c.dataDir, './data');
    assert.equal(c.storage.backend, 'sqlite');
    assert.deepEqual([c.imap.port, c.imap.tlsPort, c.pop3.port, c.pop3.tlsPort, c.lmtp.port, c.api.port], [1143, 1993, 1110, 1995, 2424, 8080]);
    assert.equal(c.lmtp.host, '127.0.0.1');
    assert.deepEqual(c.plugins, []);
  });

  it('the shipped wildduck.config.ts states exactly the defaults', () => {
    assert.deepEqual(resolveConfig(shipped), resolveConfig({}));
  });

  it('maps option paths to WILDDUCK_ names', () => {
    assert.equal(envName(['dataDir']), 'WILDDUCK_DATA_DIR');
    assert.equal(envName(['imap', 'tlsPort']), 'WILDDUCK_IMAP_TLS_PORT');
    assert.equal(envName(['api', 'accessToken']), 'WILDDUCK_API_ACCESS_TOKEN');
  });

  it('environment beats file beats defaults, with typed parsing', () => {
    const file = { dataDir: '/from/file', imap: { port: 2000 }, api: { accessToken: 'file' } };
    const c = resolveConfig(
      applyEnv(file, { WILDDUCK_IMAP_PORT: '3000', WILDDUCK_POP3_ENABLED: 'false', WILDDUCK_API_ACCESS_TOKEN: 'env', WILDDUCK_USERS_QUOTA_STORAGE: '1048576' }),
    );
    assert.equal(c.dataDir, '/from/file');
    assert.equal(c.imap.port, 3000);
    assert.equal(c.pop3.enabled, false);
    assert.equal(c.api.accessToken, 'env');
    assert.equal(c.users.quota.storage, 1048576);
    assert.equal(file.imap.port, 2000, 'the file object is not mutated');
  });

  it('rejects bad values naming their path', () => {
    assert.throws(() => resolveConfig({ imap: { port: 'x' } }), (e: unknown) => e instanceof ConfigError && e.path === 'imap.port');
    assert.throws(() => resolveConfig({ imap: { port: 70000 } }), /imap\.port/);
    assert.throws(() => resolveConfig({ imap: { prt: 1 } }), /imap/);
    assert.throws(() => resolveConfig({ storage: { backend: 'mysql' } }), /storage\.backend/);
    assert.throws(() => resolveConfig({ plugins: [42] }), /plugins\[0\]/);
    assert.throws(() => applyEnv({}, { WILDDUCK_IMAP_PORT: 'abc' }), /WILDDUCK_IMAP_PORT/);
    assert.throws(() => applyEnv({}, { WILDDUCK_HOOKS_TRACE: 'maybe' }), /WILDDUCK_HOOKS_TRACE/);
  });

  it('loads a config file and reports one that cannot be loaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wd-config-'));
    try {
      const file = join(dir, 'custom.config.ts');
      writeFileSync(file, `export default { dataDir: ${JSON.stringify(dir)}, api: { port: 9999 } };\n`);
      const { config } = await loadConfig(file, { WILDDUCK_API_HOST: '::1' });
      assert.equal(config.dataDir, dir);
      assert.equal(config.api.port, 9999);
      assert.equal(config.api.host, '::1');
      await assert.rejects(loadConfig(join(dir, 'missing.ts'), {}), ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
