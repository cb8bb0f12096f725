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
import { bootTestApp, testBackend } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { deliverMessage, resolveRecipient } from '../hooks/pipeline/index.ts';
import type { App } from '../protocols/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { TRANSFORM } from '../hooks/index.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { createUser } from '../storage/users.ts';
import { Spool } from '../storage/spool.ts';
import type { MongoStorage } from '../storage/mongodb/index.ts';

const encode = (s: string) => new TextEncoder().encode(s);

/** What the blob store still holds of staged, uncommitted blobs: SQLite's held bytes, MongoDB's staged documents. */
async function stagedHeld(app: App): Promise<number> {
  if (testBackend === 'sqlite') return (app.storage.blobs as unknown as { heldBytes: number }).heldBytes;
  return (app.storage as unknown as MongoStorage).collections.blobs.countDocuments({ state: 'staged' });
}

/** What happened in which order: claims sent and answered, route taps run. */
const events: string[] = [];
/** Lets a held claim answer (the route tap ran); claims answer anyway after a while, so the old order cannot hang. */
let routed: (() => void) | null = null;

/**
 * Holds every duplicate claim of `app` until `release()` is called (or 500 ms passed), noting 'claim sent' (when
 * `sent`) and 'claim answered' in `log`.
 */
function holdClaims(app: App, log: string[], sent: boolean): { release(): void } {
  let waiting: (() => void) | null = null;
  const eph = app.storage.ephemeral;
  const setIfAbsent = eph.setIfAbsent.bind(eph);
  eph.setIfAbsent = async (key: string, ttlMs: number) => {
    if (sent) log.push('claim sent');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      waiting = resolve;
      timer = setTimeout(resolve, 500);
    });
    clearTimeout(timer);
    waiting = null;
    log.push('claim answered');
    return setIfAbsent(key, ttlMs);
  };
  return { release: () => waiting?.() };
}

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

/** A booted app on a temporary data directory with one user `name` (name@example.com) and that user's recipient. */
async function bootWithUser(prefix: string, name: string, plugins: Plugin[] = []) {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const config = resolveConfig({ dataDir, plugins });
  const app = await bootTestApp(config, createLogger({ level: 'silent' }));
  const { user } = await createUser(app.storage, config, { username: name, password: null, addresses: [`${name}@example.com`] });
  const recipient = async (): Promise<DeliveryRecipient> => {
    const r = await resolveRecipient(app, internalContext(app.log), 's@r.example', `${name}@example.com`);
    assert.ok(r.ok);
    return r.value;
  };
  const close = async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { dataDir, app, userId: user.id, recipient, close };
}

describe('deliverMessage duplicate claim', () => {
  let booted: Awaited<ReturnType<typeof bootWithUser>>;
  let dataDir: string;
  let app: App;
  let ann: DeliveryRecipient;

  before(async () => {
    booted = await bootWithUser('wd-claim-', 'ann', [router]);
    ({ dataDir, app } = booted);
    const claims = holdClaims(app, events, true);
    routed = () => claims.release();
    ann = await booted.recipient();
  });
  after(() => booted.close());

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

describe('deliverMessage duplicate claim answered after the parse', () => {
  let booted: Awaited<ReturnType<typeof bootWithUser>>;
  let dataDir: string;
  let app: App;
  let bob: DeliveryRecipient;
  let bobId: string;
  const order: string[] = [];

  before(async () => {
    booted = await bootWithUser('wd-claim-late-', 'bob');
    ({ dataDir, app, userId: bobId } = booted);
    // every claim answers only once the message's attachment was staged (the parse ran), or after 500 ms
    const claims = holdClaims(app, order, false);
    const blobs = app.storage.blobs;
    const stage = blobs.stage.bind(blobs);
    blobs.stage = () => {
      const writer = stage();
      const finish = writer.finish.bind(writer);
      writer.finish = async () => {
        const result = await finish();
        order.push('staged');
        claims.release();
        return result;
      };
      return writer;
    };
    bob = await booted.recipient();
  });
  after(() => booted.close());

  /** A message with a 40 KB base64 attachment (staged as a blob). */
  function message(messageId: string): Uint8Array {
    const attachment = Buffer.from(new Uint8Array(30_000).map((_, i) => (i * 7919) % 251)).toString('base64').replace(/.{76}/g, '$&\r\n');
    return encode(
      `Subject: late\r\nMessage-ID: <${messageId}>\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n` +
        `--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--b--\r\n`,
    );
  }

  async function deliver(messageId: string) {
    const bytes = message(messageId);
    const [outcome] = await deliverMessage(app, internalContext(app.log), {
      from: 's@r.example',
      recipients: [bob],
      message: { size: bytes.length, open: async function* () { yield bytes; } },
    });
    return outcome!.result;
  }

  const inbox = async () => {
    const box = (await app.storage.mailboxes.getByPath(bobId, 'INBOX'))!;
    return (await app.storage.messages.index(box.id)).length;
  };

  it('parses while the claim is on its way, stores nothing for a duplicate, and a duplicate wins over a refusal', async () => {
    const first = await deliver('late@r.example');
    assert.ok(first.ok && first.value.stored);
    assert.deepEqual(order.splice(0), ['staged', 'claim answered'], 'the attachment was staged before the claim answered');

    const again = await deliver('late@r.example');
    assert.ok(again.ok && again.value.duplicate && again.value.stored === null);
    assert.equal(await inbox(), 1, 'the duplicate was not stored');
    assert.equal(await stagedHeld(app), 0, 'its staged copy was discarded');

    // over quota now: a duplicate is still reported as one; a new message is refused and gives its claim back
    await app.storage.users.update(bobId, { quota: { storage: 1 } });
    const duplicateOverQuota = await deliver('late@r.example');
    assert.ok(duplicateOverQuota.ok && duplicateOverQuota.value.duplicate);
    const refused = await deliver('new@r.example');
    assert.ok(!refused.ok && refused.verdict.code === 'OVERQUOTA');
    await app.storage.users.update(bobId, { quota: { storage: null } });
    const retried = await deliver('new@r.example');
    assert.ok(retried.ok && retried.value.stored, 'the refused attempt released its claim');
    assert.equal(await inbox(), 2);
  });
});
