/**
 * The duplicate window in deliverMessage (hooks/pipeline/deliver.ts): the Message-ID claim is sent before the route
 * is worked out (its round trip overlaps the delivery.route taps and the mailbox lookup), and its answer still
 * decides first: a duplicate is reported as one even when its route would fail, and a recipient whose route fails
 * gives its claim back, so the next attempt is stored.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootApp } from '../protocols/server.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { deliverMessage, resolveRecipient } from '../hooks/pipeline/index.ts';
import type { App } from '../hooks/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { TRANSFORM } from '../hooks/index.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { createUser } from '../storage/users.ts';
import { Spool } from '../storage/spool.ts';

const encode = (s: string) => new TextEncoder().encode(s);

/** What happened in which order: claims sent and answered, route taps run. */
const events: string[] = [];
/** Lets a held claim answer (the route tap ran); claims answer anyway after a while, so the old order cannot hang. */
let routed: (() => void) | null = null;

const router: Plugin = {
  name: 'test-claim-router',
  apply(api) {
    api.hooks.delivery.route.tapPromise({ stage: TRANSFORM }, async (route, _ctx, request) => {
      events.push('route');
      routed?.();
      if (request.headers.some((h) => h.key === 'subject' && h.value.includes('[broken]'))) throw new Error('route tap failed');
      return route;
    });
  },
};

describe('deliverMessage duplicate claim', () => {
  let dataDir: string;
  let app: App;
  let ann: DeliveryRecipient;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-claim-'));
    const config = resolveConfig({ dataDir, plugins: [router] });
    app = await bootApp(config, createLogger({ level: 'silent' }));
    await createUser(app.storage, config, { username: 'ann', password: null, addresses: ['ann@example.com'] });
    const eph = app.storage.ephemeral;
    const setIfAbsent = eph.setIfAbsent.bind(eph);
    eph.setIfAbsent = async (key: string, ttlMs: number) => {
      events.push('claim sent');
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        routed = resolve;
        timer = setTimeout(resolve, 500);
      });
      clearTimeout(timer);
      routed = null;
      events.push('claim answered');
      return setIfAbsent(key, ttlMs);
    };
    const r = await resolveRecipient(app, internalContext(app.log), 's@r.example', 'ann@example.com');
    assert.ok(r.ok);
    ann = r.value;
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function deliver(subject: string, messageId: string) {
    const spool = new Spool({ dir: join(dataDir, 'spool'), memoryLimit: 1024 });
    await spool.write(encode(`Subject: ${subject}\r\nMessage-ID: <${messageId}>\r\n\r\nx\r\n`));
    await spool.finish();
    try {
      const [outcome] = await deliverMessage(app, internalContext(app.log), { from: 's@r.example', recipients: [ann], message: { size: spool.size, open: () => spool.open() } });
      return outcome!.result;
    } finally {
      await spool.dispose();
    }
  }

  it('claims before routing; a duplicate stays a duplicate even when its route fails; a failed route gives the claim back', async () => {
    const first = await deliver('hello', 'one@r.example');
    assert.ok(first.ok && first.value.stored && !first.value.duplicate);
    assert.deepEqual(events, ['claim sent', 'route', 'claim answered'], 'the route taps run while the claim is on its way');

    const again = await deliver('hello', 'one@r.example');
    assert.ok(again.ok && again.value.duplicate && again.value.stored === null);

    const brokenDuplicate = await deliver('[broken] hello', 'one@r.example');
    assert.ok(brokenDuplicate.ok && brokenDuplicate.value.duplicate, 'the claim answers first');

    const broken = await deliver('[broken] new', 'two@r.example');
    assert.ok(!broken.ok && broken.verdict.action === 'tempfail');
    const retried = await deliver('fixed', 'two@r.example');
    assert.ok(retried.ok && retried.value.stored && !retried.value.duplicate, 'the failed attempt released its claim');
  });
});
