/**
 * deliverMessage and its helpers on the real stack: delivery.route taps (special-use target, flags, discard),
 * delivery.beforeDeliver refusals, a spilled-to-disk spool delivered byte-exact to several recipients, the
 * duplicate window switched off; and the dot-stuffing codec across arbitrary chunk boundaries.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './helpers/test-backend.ts';
import { resolveConfig } from '../hooks/config.ts';
import { createLogger } from '../hooks/log.ts';
import { internalContext } from '../hooks/context.ts';
import { deliverMessage, resolveRecipient } from '../hooks/pipeline/index.ts';
import type { App } from '../protocols/app.ts';
import type { Plugin } from '../hooks/host.ts';
import { deny, TRANSFORM, POLICY } from '../hooks/index.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { createUser } from '../storage/users.ts';
import { Spool } from '../storage/spool.ts';
import { collectBytes } from '../storage/bytes.ts';
import { readMessage } from '../storage/mime/reassemble.ts';
import { DotUnstuffer, dotStuff } from '../protocols/net/dot-stuffing.ts';

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const router: Plugin = {
  name: 'test-router',
  apply(api) {
    api.hooks.delivery.beforeDeliver.tapPromise({ stage: POLICY }, async (_ctx, request) =>
      request.headers.some((h) => h.key === 'subject' && h.value === 'refuse me') ? deny('CANNOT', 'Refused by policy') : undefined,
    );
    api.hooks.delivery.route.tapPromise({ stage: TRANSFORM }, async (route, _ctx, request) => {
      const subject = request.headers.find((h) => h.key === 'subject')?.value ?? '';
      if (subject.includes('[junk]')) return { ...route, specialUse: '\\Junk', spam: true, flags: ['\\Seen'] };
      if (subject.includes('[drop]')) return { ...route, discard: true };
      if (subject.includes('[folder]')) return { ...route, mailbox: 'Lists/Node', flags: ['$Label1'] };
      return route;
    });
  },
};

describe('deliverMessage', () => {
  let dataDir: string;
  let app: App;
  let ann: DeliveryRecipient;
  let ben: DeliveryRecipient;
  let annId: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'wd-deliver-'));
    const config = resolveConfig({ dataDir, plugins: [router], delivery: { duplicateWindowSeconds: 0 } });
    app = await bootTestApp(config, createLogger({ level: 'silent' }));
    annId = (await createUser(app.storage, config, { username: 'ann', password: null, addresses: ['ann@example.com'] })).user.id;
    await createUser(app.storage, config, { username: 'ben', password: null, addresses: ['ben@example.com'] });
    await app.storage.mailboxes.create(annId, { path: 'Lists/Node' });
    const ctx = internalContext(app.log);
    const a = await resolveRecipient(app, ctx, 's@r.example', 'ANN+x@example.com');
    const b = await resolveRecipient(app, ctx, 's@r.example', 'ben@example.com');
    assert.ok(a.ok && b.ok);
    ann = a.value;
    ben = b.value;
  });
  after(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function deliver(text: string, recipients = [ann]) {
    const spool = new Spool({ dir: join(dataDir, 'spool'), memoryLimit: 1024 });
    await spool.write(encode(text));
    await spool.finish();
    try {
      return await deliverMessage(app, internalContext(app.log), { from: 's@r.example', recipients, message: { size: spool.size, open: () => spool.open() } });
    } finally {
      await spool.dispose();
    }
  }

  async function stored(mailboxId: string, uid: number) {
    const record = (await app.storage.messages.get(mailboxId, uid))!;
    return { record, text: decode(await collectBytes(readMessage((await app.storage.messages.content(record.id))!, app.storage.blobs))) };
  }

  it('resolves recipients with +tags and case to the stored address', () => {
    assert.equal(ann.resolved, 'ann@example.com');
    assert.equal(ann.address, 'ANN+x@example.com');
    assert.equal(ann.username, 'ann');
  });

  it('routes by delivery.route: Junk with flags, a named mailbox, discard; refuses by delivery.beforeDeliver', async () => {
    const [junk] = await deliver('Subject: [junk] win\r\n\r\nx\r\n');
    assert.ok(junk!.result.ok);
    const junkBox = (await app.storage.mailboxes.getBySpecialUse(annId, '\\Junk'))!;
    assert.equal(junk!.result.value.mailboxId, junkBox.id);
    assert.equal(junk!.result.value.route.spam, true);
    assert.deepEqual((await stored(junkBox.id, junk!.result.value.stored!.uid)).record.flags, ['\\Seen']);

    const [folder] = await deliver('Subject: [folder] hi\r\n\r\nx\r\n');
    const lists = (await app.storage.mailboxes.getByPath(annId, 'Lists/Node'))!;
    assert.ok(folder!.result.ok && folder!.result.value.mailboxId === lists.id);

    const [dropped] = await deliver('Subject: [drop]\r\n\r\nx\r\n');
    assert.ok(dropped!.result.ok && dropped!.result.value.stored === null && dropped!.result.value.mailboxId === null);

    const [refused] = await deliver('Subject: refuse me\r\n\r\nx\r\n');
    assert.deepEqual(refused!.result.ok ? null : [refused!.result.verdict.action, refused!.result.verdict.code], ['deny', 'CANNOT']);
  });

  it('delivers a message spilled to disk to two recipients byte-exact, each with its own Delivered-To', async () => {
    const body = 'Subject: large\r\nMessage-ID: <large@r.example>\r\n\r\n' + 'abcdefghij'.repeat(30_000) + '\r\n';
    const outcomes = await deliver(body, [ann, ben]);
    assert.equal(outcomes.length, 2);
    for (const [i, outcome] of outcomes.entries()) {
      assert.ok(outcome.result.ok && outcome.result.value.stored);
      const { text } = await stored(outcome.result.value.mailboxId!, outcome.result.value.stored.uid);
      const to = i === 0 ? 'ANN+x@example.com' : 'ben@example.com';
      assert.equal(text, `Return-Path: <s@r.example>\r\nDelivered-To: ${to}\r\n` + body);
    }
    // duplicate window 0: the same Message-ID is stored again
    const [again] = await deliver(body);
    assert.ok(again!.result.ok && again!.result.value.duplicate === false && again!.result.value.stored);
    assert.deepEqual(readdirSync(join(dataDir, 'spool')), [], 'spool files are removed');
  });
});

describe('dot stuffing', () => {
  const message = '.starts with a dot\r\nmiddle . dot\r\n..two dots\r\n.\r\nnot the end\r\n.';

  it('stuffs and unstuffs back to the same bytes across any chunk boundary', async () => {
    const stuffed = decode(await collectBytes(dotStuff((async function* () { yield encode(message); })())));
    assert.equal(stuffed, '..starts with a dot\r\nmiddle . dot\r\n...two dots\r\n..\r\nnot the end\r\n..\r\n.\r\n');
    const wire = encode(stuffed + 'NEXT\r\n');
    for (let size = 1; size <= 7; size++) {
      const unstuffer = new DotUnstuffer();
      const parts: Uint8Array[] = [];
      let rest: Uint8Array | null = null;
      for (let i = 0; i < wire.length && rest === null; i += size) {
        const r = unstuffer.push(wire.subarray(i, i + size));
        parts.push(r.data);
        if (r.done) rest = new Uint8Array([...r.rest, ...wire.subarray(i + size)]);
      }
      assert.equal(decode(await collectBytes((async function* () { yield* parts; })())), message + '\r\n', `chunk size ${size}`);
      assert.equal(decode(rest!), 'NEXT\r\n');
    }
  });

  it('unstuffs random data across random chunk boundaries like a byte-by-byte reading', () => {
    // the reference: one byte at a time, a dot at a line start is dropped, or ends the data before LF / CR LF
    const reference = (wire: Uint8Array): { data: number[]; rest: number[] } => {
      const data: number[] = [];
      let lineStart = true;
      for (let i = 0; i < wire.length; i++) {
        const b = wire[i]!;
        if (lineStart && b === 0x2e) {
          if (wire[i + 1] === 0x0a) return { data, rest: [...wire.subarray(i + 2)] };
          if (wire[i + 1] === 0x0d && wire[i + 2] === 0x0a) return { data, rest: [...wire.subarray(i + 3)] };
          lineStart = false;
          continue;
        }
        data.push(b);
        lineStart = b === 0x0a;
      }
      throw new Error('no terminator');
    };
    const tokens = ['.', '..', '\r', '\n', '\r\n', 'ab', 'x.y', '.\r', '\n.', '\r\n..', 'line of text'];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 300; round++) {
      let text = '';
      for (let t = rand(40); t > 0; t--) text += tokens[rand(tokens.length)];
      const wire = encode(text + '\r\n.\r\nNEXT');
      const expected = reference(wire);
      const unstuffer = new DotUnstuffer();
      const data: number[] = [];
      let rest: number[] | null = null;
      for (let i = 0; i < wire.length && rest === null; ) {
        const size = 1 + rand(9);
        const r = unstuffer.push(wire.subarray(i, i + size));
        data.push(...r.data);
        if (r.done) rest = [...r.rest, ...wire.subarray(i + size)];
        i += size;
      }
      assert.deepEqual({ data, rest }, expected, JSON.stringify(text));
    }
  });

  it('ends an empty message at once', () => {
    const r = new DotUnstuffer().push(encode('.\r\nQUIT\r\n'));
    assert.deepEqual([r.data.length, r.done, decode(r.rest)], [0, true, 'QUIT\r\n']);
  });
});

describe('deliverMessage reports each outcome before its delivery.afterDeliver taps run', () => {
  it('calls onOutcome first, then afterDeliver, recipient by recipient, all before it resolves', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wd-deliver-order-'));
    const events: string[] = [];
    const observer: Plugin = {
      name: 'test-after-observer',
      apply(api) {
        api.hooks.delivery.afterDeliver.tapPromise({}, async (_ctx, request, result) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          events.push(`after ${request.recipient.username}${result.duplicate ? ' duplicate' : ''}`);
        });
      },
    };
    const config = resolveConfig({ dataDir, plugins: [observer] });
    const app = await bootTestApp(config, createLogger({ level: 'silent' }));
    try {
      await createUser(app.storage, config, { username: 'cat', password: null, addresses: ['cat@example.com'] });
      await createUser(app.storage, config, { username: 'dan', password: null, addresses: ['dan@example.com'] });
      const ctx = internalContext(app.log);
      const recipients: DeliveryRecipient[] = [];
      for (const address of ['cat@example.com', 'dan@example.com']) {
        const r = await resolveRecipient(app, ctx, 's@r.example', address);
        assert.ok(r.ok);
        recipients.push(r.value);
      }
      const bytes = encode('Subject: order\r\nMessage-ID: <order@r.example>\r\n\r\nx\r\n');
      const deliver = () =>
        deliverMessage(app, ctx, {
          from: 's@r.example',
          recipients,
          message: { size: bytes.length, open: async function* () { yield bytes; } },
          onOutcome: (_i, outcome) => void events.push(`outcome ${outcome.recipient.username}`),
        });
      await deliver();
      await deliver(); // duplicates: their afterDeliver runs too, after their outcome
      assert.deepEqual(events, [
        'outcome cat', 'after cat', 'outcome dan', 'after dan',
        'outcome cat', 'after cat duplicate', 'outcome dan', 'after dan duplicate',
      ]);
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
