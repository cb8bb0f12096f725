import { describe, it } from 'node:test';
import { imapTestAppPerSuite, login } from './helpers/imap-harness.ts';
describe('probe', () => {
  const t = imapTestAppPerSuite();
  it('probe', async () => {
    const c = await login(t.app);
    for (const cmd of ['SELECT !#$&\'+,-.0123456789:;<=>?@^_`|[}', 'LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*', 'NOOP']) {
      try { console.log(cmd, await c.command(cmd)); } catch (e) { console.log('ERR', cmd, String(e)); }
    }
    console.log(t.logs.filter(l => l.level === 'error' || l.level === 'warn'));
  });
});
