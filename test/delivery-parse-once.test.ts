/**
 * Delivery parses a message once for all its recipients (hooks/pipeline/deliver.ts, storage/mime/prepend.ts): the
 * app's ingest runs once per message, not per recipient; every copy still has its own trace headers, byte for byte,
 * with a MIME tree whose offsets find its parts; a recipient whose `message.prepare` tap rewrites the message gets
 * its own parse, and the rewrite shows in no other copy; the shared attachment blob is referenced by every copy and
 * freed only with the last one. On the backend under test (WILDDUCK_TEST_BACKEND).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { bootTestApp } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { deliverMessage, resolveRecipient } from '../hooks/pipeline/index.ts';
import type { PipelineApp } from '../hooks/pipeline/run.ts';
import type { App } from '../protocols/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { deny, POLICY, TRANSFORM } from '../hooks/index.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { createUser } from '../storage/users.ts';
import { collectBytes } from '../storage/bytes.ts';
import { findPart, readBody, readMessage } from '../storage/mime/reassemble.ts';
import type { BlobsPort, Id, StagedBlob, StoragePorts } from '../storage/ports.ts';

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** 60 KiB of varied bytes, base64 in the message: above the blob threshold, so it is stored as a blob. */
const attachment = Buffer.from(Array.from({ length: 60 * 1024 }, (_, i) => (i * 31 + (i >> 8)) % 256));
const attachmentBase64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n';

const body = [
  'From: Sender <s@r.example>',
  'To: many@example.com',
  'Subject: once for all',
  'Message-ID: <parse-once@r.example>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b"',
  '',
  '--b',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello all.',
  '--b',
  'Content-Type: application/octet-stream; name="data.bin"',
  'Content-Disposition: attachment; filename="data.bin"',
  'Content-Transfer-Encoding: base64',
  '',
  attachmentBase64 + '--b--',
  '',
].join('\r\n');

/** A plugin that rewrites the copies for carl only (a header field put in front), and refuses dan's when told to. */
const rewriteForCarl = (carlId: () => Id | null, refusedId: () => Id | null): Plugin => ({
  name: 'test-rewrite-for-carl',
  apply(api) {
    api.hooks.message.store.tapPromise({ stage: POLICY }, async (_ctx, input) =>
      input.userId === refusedId() ? deny('OVERQUOTA', 'Refused at the commit') : undefined,
    );
    api.hooks.message.prepare.tap({ stage: TRANSFORM }, (source, _ctx, request) =>
      request.userId === carlId()
        ? (async function* () {
            yield encode('X-Rewritten: for carl\r\n');
            yield* source;
          })()
        : source,
    );
  },
});

describe('delivery parses a message once for all recipients', () => {
  let dataDir: string;
  let app: App;
  let counting: PipelineApp;
  let ingests = 0;
  let carl: Id | null = null;
  let refused: Id | null = null;
  /** Hashes given to blobs.discard by the pipeline, one list per call. */
  const discarded: string[][] = [];
  const recipients = new Map<string, DeliveryRecipient>();

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-parse-once-'));
    const config = resolveConfig({ dataDir, plugins: [rewriteForCarl(() => carl, () => refused)], delivery: { duplicateWindowSeconds: 0 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    for (const name of ['ann', 'ben', 'carl', 'dan']) {
      const { user } = await createUser(app.storage, config, { username: name, password: null, addresses: [`${name}@example.com`] });
      if (name === 'carl') carl = user.id;
      const r = await resolveRecipient(app, internalContext(app.log), 's@r.example', `${name}@example.com`);
      assert.ok(r.ok);
      recipients.set(name, r.value);
    }
    // the app's own ingest function, counted; blobs.discard as the pipeline calls it, recorded
    const blobs = app.storage.blobs;
    const spyBlobs = new Proxy(blobs, {
      get(target, key) {
        if (key === 'discard') return (staged: StagedBlob[]) => (discarded.push(staged.map((b) => b.hash)), target.discard(staged));
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as BlobsPort;
    const storage = new Proxy(app.storage, { get: (target, key) => (key === 'blobs' ? spyBlobs : Reflect.get(target, key, target)) }) as StoragePorts;
    counting = {
      config: app.config,
      log: app.log,
      hooks: app.hooks,
      storage,
      metrics: app.metrics,
      ingest: (source) => {
        ingests++;
        return app.ingest(source);
      },
    };
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function deliverAll(names: string[]) {
    const bytes = encode(body);
    ingests = 0;
    discarded.length = 0;
    return deliverMessage(counting, internalContext(app.log), {
      from: 's@r.example',
      recipients: names.map((n) => recipients.get(n)!),
      message: { size: bytes.length, open: async function* () { yield bytes.slice(0, 1000); yield bytes.slice(1000); } },
    });
  }

  async function deliverTo(names: string[]) {
    const outcomes = await deliverAll(names);
    return outcomes.map((o) => {
      assert.ok(o.result.ok && o.result.value.stored, JSON.stringify(o.result));
      return { name: o.recipient.username, mailboxId: o.result.value.mailboxId!, uid: o.result.value.stored.uid };
    });
  }

  /** The stored copy: its bytes reassembled, and the attachment read through the stored MIME tree's offsets. */
  async function copy(mailboxId: Id, uid: number) {
    const record = (await app.storage.messages.get(mailboxId, uid))!;
    const content = (await app.storage.messages.content(record.id))!;
    const text = decode(await collectBytes(readMessage(content, app.storage.blobs)));
    const part = findPart(record.mime, '2')!;
    const data = decode(await collectBytes(readBody(content, app.storage.blobs, part)));
    const first = decode(await collectBytes(readBody(content, app.storage.blobs, findPart(record.mime, '1')!)));
    return { record, text, data, first };
  }

  it('ingests once for three recipients; each copy is byte-exact with its own Delivered-To and a correct MIME tree', async () => {
    const before = await app.storage.blobs.stats();
    const stored = await deliverTo(['ann', 'ben', 'dan']);
    assert.equal(ingests, 1, 'one parse for three recipients');
    for (const { name, mailboxId, uid } of stored) {
      const { record, text, data, first } = await copy(mailboxId, uid);
      const expected = `Return-Path: <s@r.example>\r\nDelivered-To: ${name}@example.com\r\n${body}`;
      assert.equal(text, expected, name);
      assert.equal(record.size, encode(expected).length, name);
      assert.equal(record.subject, 'once for all');
      assert.equal(record.hasAttachments, true);
      assert.equal(data, attachmentBase64.slice(0, -2), `${name}: the attachment part through the stored offsets`);
      assert.equal(first, 'Hello all.', name);
    }
    assert.equal((await app.storage.blobs.stats()).count, before.count + 1, 'one blob for the attachment, shared');

    // the blob stays while any copy references it, and goes with the last
    const [a, b, d] = stored;
    await app.storage.messages.expunge(a!.mailboxId, [a!.uid]);
    await app.storage.messages.expunge(b!.mailboxId, [b!.uid]);
    await app.storage.blobs.collect();
    assert.equal((await copy(d!.mailboxId, d!.uid)).data, attachmentBase64.slice(0, -2), 'the last copy still reads its blob');
    await app.storage.messages.expunge(d!.mailboxId, [d!.uid]);
    await app.storage.blobs.collect();
    assert.equal((await app.storage.blobs.stats()).count, before.count, 'freed with the last copy');
  });

  it("parses a copy a message.prepare tap rewrote on its own, and the rewrite is in no other recipient's copy", async () => {
    const stored = await deliverTo(['ann', 'carl', 'dan']);
    assert.equal(ingests, 2, 'the shared parse and carl\'s rewritten message');
    for (const { name, mailboxId, uid } of stored) {
      const { text, data } = await copy(mailboxId, uid);
      const trace = `Return-Path: <s@r.example>\r\nDelivered-To: ${name}@example.com\r\n`;
      assert.equal(text, name === 'carl' ? `X-Rewritten: for carl\r\n${trace}${body}` : `${trace}${body}`, name);
      assert.equal(data, attachmentBase64.slice(0, -2), name);
    }
  });

  it('discards the staged attachment once when no copy was stored, and not at all when one was', async () => {
    refused = recipients.get('dan')!.userId;
    try {
      const before = await app.storage.blobs.stats();
      const [alone] = await deliverAll(['dan']);
      assert.ok(!alone!.result.ok && alone!.result.verdict.code === 'OVERQUOTA');
      assert.equal(ingests, 1);
      assert.equal(discarded.length, 1, 'the shared parse\'s staged blob, discarded once, after the last recipient');
      assert.equal(discarded[0]!.length, 1);
      await app.storage.blobs.collect();
      assert.equal((await app.storage.blobs.stats()).count, before.count, 'nothing stored, nothing left');

      const [ann, dan] = await deliverAll(['ann', 'dan']);
      assert.ok(ann!.result.ok && ann!.result.value.stored && !dan!.result.ok);
      assert.deepEqual(discarded, [], "ann's commit took the staged blob: nothing to discard");
      const kept = await copy(ann!.result.value.mailboxId!, ann!.result.value.stored.uid);
      assert.equal(kept.data, attachmentBase64.slice(0, -2));
    } finally {
      refused = null;
    }
  });
});
