/**
 * The shared ephemeral store of a multi-process server, without processes: two RemoteEphemeral "workers" talk to
 * one EphemeralHub over in-memory channels that copy every message through JSON and deliver it later, as the
 * cluster IPC channel does. (The real processes are in test/cluster.test.ts, Node only; this runs on Deno too.)
 * What every EphemeralPort does (counters, reservations, locks, pub/sub) is in test/ephemeral-contract.test.ts, which
 * runs this path too; here: what is particular to the hub (the IPC messages, lingering channels, a worker that dies).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEphemeral } from '../storage/ephemeral/memory.ts';
import { EphemeralHub } from '../storage/ephemeral/hub.ts';
import { ipcWorker as worker } from './helpers/ephemeral-ipc.ts';
import { subscribed, until } from './helpers/ephemeral-contract.ts';
import { StorageError } from '../storage/ports.ts';

const tick = () => new Promise((r) => setTimeout(r, 10));

describe('EphemeralHub + RemoteEphemeral', () => {
  it('a message published by one worker reaches the subscribers of every worker, the publisher included', async () => {
    const seen: string[] = [];
    const published: string[] = [];
    const hub = new EphemeralHub(new MemoryEphemeral(), { onPublish: (channel, message) => published.push(`${channel}=${message}`) });
    const a = worker(hub).remote;
    const b = worker(hub).remote;
    // what the probes of `subscribed` bring to the other listeners is not noted
    const note = (who: string) => (m: string) => void (m === '\u0000probe' || seen.push(`${who}:${m}`));
    const offA = a.subscribe('changes:7', note('a'));
    // live at the hub before anything is published (a probe came back); a's own comes before its publish
    const offB1 = await subscribed(b, a, 'changes:7', (m) => seen.push(`b1:${m}`));
    const offB2 = b.subscribe('changes:7', note('b2'));
    await subscribed(b, a, 'changes:8', (m) => seen.push(`other:${m}`));
    await a.publish('changes:7', '41');
    // the channels deliver later (as IPC does): wait for the deliveries, never for a fixed time
    await until(() => seen.length === 3, 'the first message');
    assert.deepEqual(seen.sort(), ['a:41', 'b1:41', 'b2:41']);
    assert.deepEqual(
      published.filter((p) => !p.endsWith('\u0000probe')),
      ['changes:7=41'],
    );

    offB1();
    await b.publish('changes:7', '42');
    await until(() => seen.filter((s) => s.endsWith(':42')).length === 2, 'the second message');
    assert.deepEqual(seen.filter((s) => s.endsWith(':42')).sort(), ['a:42', 'b2:42']);
    offA();
    offB2();
    await a.publish('changes:7', '43');
    // a marker on a channel still listened to, published after: once it arrives, so would have 43
    await a.publish('changes:8', 'marker');
    await until(() => seen.includes('other:marker'), 'the marker');
    assert.equal(seen.filter((s) => s.endsWith(':43')).length, 0, 'nobody listens any more');
  });

  it('a publish is one message to the hub and gets no answer; the publisher hears it back like the others', async () => {
    const published: string[] = [];
    const hub = new EphemeralHub(new MemoryEphemeral(), { onPublish: (channel, message) => published.push(`${channel}=${message}`) });
    const w = worker(hub);
    const seen: string[] = [];
    w.remote.subscribe('changes:3', (m) => seen.push(m));
    await w.remote.publish('changes:3', '5');
    // the subscription goes first on the same channel; wait for the message, then a turn more for any reply
    await until(() => seen.length > 0, 'the message');
    await tick();
    assert.deepEqual(w.sent, ['wd:eph:sub', 'wd:eph:pub']);
    assert.deepEqual(w.received, ['wd:eph:msg'], 'no reply, only the message itself');
    assert.deepEqual(seen, ['5']);
    assert.deepEqual(published, ['changes:3=5']);
    await w.die();
    await assert.rejects(w.remote.publish('changes:3', '6'), StorageError);
  });

  it('a publish leaves at the end of the turn (after what its caller does on microtasks), or before the next operation', async () => {
    const hub = new EphemeralHub(new MemoryEphemeral());
    const w = worker(hub);
    await w.remote.publish('changes:4', '1');
    await Promise.resolve();
    assert.deepEqual(w.sent, [], 'not sent on the way: the acknowledgement it follows goes first');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(w.sent, ['wd:eph:pub']);
    await w.remote.publish('changes:4', '2');
    const answer = w.remote.setIfAbsent('k', 1000);
    assert.deepEqual(w.sent, ['wd:eph:pub', 'wd:eph:pub', 'wd:eph'], 'an operation sends the queued publish first: call order kept');
    assert.equal(await answer, true);
    await w.remote.publish('changes:4', '3');
    w.remote.subscribe('changes:5', () => {});
    assert.deepEqual(w.sent.slice(3), ['wd:eph:pub', 'wd:eph:sub']);
    await w.die();
  });

  it('a channel left by its last listener stays subscribed at the hub until the sweep: re-subscribing sends nothing', async () => {
    const hub = new EphemeralHub(new MemoryEphemeral());
    const w = worker(hub, { lingerMs: 30 });
    const seen: string[] = [];
    w.remote.subscribe('changes:9', (m) => seen.push(`first:${m}`))();
    const off = w.remote.subscribe('changes:9', (m) => seen.push(`second:${m}`));
    await tick();
    assert.deepEqual(w.sent, ['wd:eph:sub']);
    await worker(hub).remote.publish('changes:9', '1');
    await until(() => seen.length > 0, 'the message');
    await tick();
    assert.deepEqual(seen, ['second:1'], 'only the listener still there hears it');
    off();
    await until(() => w.sent.length > 1, 'the sweep');
    assert.deepEqual(w.sent, ['wd:eph:sub', 'wd:eph:unsub'], 'unused through a whole sweep: unsubscribed');
    const again = w.remote.subscribe('changes:9', () => {});
    assert.deepEqual(w.sent, ['wd:eph:sub', 'wd:eph:unsub', 'wd:eph:sub']);
    again();
    await w.die();
  });

  it('a worker that dies gives back its locks and reservations; plain counters stay', async () => {
    const store = new MemoryEphemeral();
    const hub = new EphemeralHub(store);
    const dying = worker(hub);
    const b = worker(hub).remote;
    const token = await dying.remote.lock('pop3:lock:9', 600_000);
    assert.ok(token);
    assert.equal(await dying.remote.extend('pop3:lock:9', token!, 600_000), true, 'an extended lock stays the worker\'s');
    assert.equal(await dying.remote.reserve([{ key: 'imap:connections:1', limit: 5 }, { key: 'ip', limit: 5 }], 60_000), -1);
    assert.equal(await dying.remote.reserve([{ key: 'imap:connections:1', limit: 5 }], 60_000), -1);
    assert.equal(await dying.remote.release('imap:connections:1', 1), 1);
    assert.equal(await b.reserve([{ key: 'imap:connections:1', limit: 5 }], 60_000), -1);
    await dying.remote.incr('transfer', 100, 0);
    const pending = dying.remote.get('transfer');
    await dying.die();
    await assert.rejects(pending, StorageError);
    await assert.rejects(dying.remote.get('transfer'), StorageError);

    assert.ok(await b.lock('pop3:lock:9', 600_000), 'the dead worker no longer holds the lock');
    assert.equal(await b.get('imap:connections:1'), 1, "only the live worker's reservation is left");
    assert.equal(await b.get('ip'), 0);
    assert.equal(await b.get('transfer'), 100);
  });

  it('answers an unknown operation with an error, not a crash', async () => {
    const hub = new EphemeralHub(new MemoryEphemeral());
    const replies: unknown[] = [];
    const peer = hub.attach({ send: (m) => replies.push(m) });
    assert.equal(peer.receive({ t: 'wd:eph', id: 1, op: 'flushall', args: [] }), true);
    assert.equal(peer.receive({ t: 'something-else' }), false);
    await tick();
    assert.deepEqual(replies, [{ t: 'wd:eph:r', id: 1, error: 'unknown ephemeral operation flushall' }]);
  });
});
