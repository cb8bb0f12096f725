/**
 * Issue 9, event loop protection: one hostile session sending the most expensive commands found (whole-mailbox
 * FETCH and SEARCH, a sequence set of thousands of ranges, SEARCH with the most keys allowed, STORE of many
 * keywords on every message, a burst of pipelined commands, deep nesting) must not stall anyone else. Per-command
 * loops yield to the event loop in time slices (storage/time-slice.ts) and argument counts are capped
 * (imap.maxArguments: BAD [LIMIT]).
 *
 * How the 100 ms bound is made robust for CI (two test files run at once on two cores, under Node and Deno):
 * - the probe's NOOP round trip is measured many times, and the test asserts on its 90th percentile, not on the
 *   single worst sample (one GC pause or scheduler hiccup must not fail it);
 * - the bound is relative: p90 under attack must stay within 100 ms of p90 measured just before, on the same
 *   machine in the same state, so a slow or loaded machine raises both numbers alike.
 * Before the fix a single whole-mailbox command held the loop for hundreds of ms to seconds (STORE of 990
 * keywords on 1,500 messages: about 5 s), far over the bound.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpListener } from '../protocols/net/listener.ts';
import { startImap } from '../protocols/imap.ts';
import { storeMessage } from '../hooks/pipeline/index.ts';
import { internalContext } from '../hooks/context.ts';
import { bootImapTestApp } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';
import { connectPlain } from './helpers/line-client.ts';
import type { LineClient } from './helpers/line-client.ts';
import { testBackend } from './helpers/test-backend.ts';
import { mongoIsStandIn, standInGap } from './helpers/mongo-server.ts';

/**
 * The probe times the test process's event loop, which the server shares. The MongoDB stand-in runs in that process
 * too and takes minutes over the hostile commands (each STORE of 990 keywords on every message: 2 to 3 minutes, past
 * the 60 s the test waits for a reply), and the probe would time its work as the server's: the test needs a MongoDB
 * server of its own process.
 */
const probeSharesTheLoop =
  testBackend === 'mongodb' && mongoIsStandIn && standInGap('runs in the test process and takes minutes over the hostile commands; the probe would time its work as the server\'s');

const MESSAGES = 1500;
const SAMPLES = 60;
/** The probe sends a NOOP this often. */
const INTERVAL_MS = 20;

async function untilTagged(client: LineClient, tag: string): Promise<string> {
  for (;;) {
    const line = await client.line(60_000);
    if (line.startsWith(`${tag} `)) return line;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

describe('event loop protection (issue 9)', () => {
  let t: ImapTestApp;
  let imap: TcpListener;

  before(async () => {
    t = await bootImapTestApp({ log: { level: 'silent' } });
    [imap] = (await startImap(t.app, null)) as [TcpListener];
  });
  after(async () => {
    await imap?.close();
    await t?.close();
  });

  const session = async (): Promise<LineClient> => {
    const client = await connectPlain(imap.port);
    await client.line();
    client.send('L LOGIN alice secret\r\n');
    assert.match(await untilTagged(client, 'L'), /^L OK /);
    return client;
  };

  it('refuses commands with more than imap.maxArguments arguments with BAD [LIMIT]', async () => {
    const client = await session();
    client.send(`A SEARCH ${'UNSEEN '.repeat(1200)}\r\n`);
    assert.match(await untilTagged(client, 'A'), /^A BAD \[LIMIT\] Too many arguments/);
    client.send(`B NOOP ${'('.repeat(5000)}\r\n`);
    assert.match(await untilTagged(client, 'B'), /^B BAD \[LIMIT\]/);
    client.send('C NOOP\r\n');
    assert.equal(await untilTagged(client, 'C'), 'C OK NOOP completed');
    client.close();
  });

  it("a hostile session's worst commands do not delay another client's NOOP by more than 100 ms (p90)", { skip: probeSharesTheLoop }, async () => {
    const inbox = (await t.app.storage.mailboxes.getByPath(t.userId, 'INBOX'))!;
    for (let i = 0; i < MESSAGES; i++) {
      const source = new TextEncoder().encode(`From: Sender ${i} <s${i}@example.com>\r\nSubject: message ${i}\r\n\r\nbody ${i}\r\n`);
      const stored = await storeMessage(t.app, internalContext(t.app.log), { userId: t.userId, mailboxId: inbox.id, flags: [], internalDate: Date.now(), source });
      assert.ok(stored.ok);
    }
    const probe = await session();
    // NOOPs go out on a fixed schedule, each timed from when it was due, not from when it was sent: the client
    // shares the event loop with the server, so a stalled loop delays the sending too, and timing from the
    // actual send would hide the stall (coordinated omission)
    let n = 0;
    const measure = async (until: () => boolean): Promise<number[]> => {
      const times: number[] = [];
      const pending: Promise<void>[] = [];
      const start = performance.now();
      for (let k = 0; !until() || k < SAMPLES; k++) {
        const due = start + k * INTERVAL_MS;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const tag = `P${n++}`;
        probe.send(`${tag} NOOP\r\n`);
        pending.push(untilTagged(probe, tag).then(() => void times.push(performance.now() - due)));
      }
      await Promise.all(pending);
      return times;
    };
    const baseline = percentile(await measure(() => true), 0.9);

    const ranges = Array.from({ length: 5000 }, (_, i) => `${i * 3 + 1}:${i * 3 + 2}`).join(',');
    const keywords = Array.from({ length: 990 }, (_, i) => `kw${i}`).join(' ');
    const worst = [
      'UID FETCH 1:4294967295 (FLAGS)',
      'FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])',
      `UID FETCH ${ranges} (UID FLAGS)`,
      `UID SEARCH ${'NOT UID 4294967295 '.repeat(330)}`,
      `SEARCH ${'UNSEEN '.repeat(990)}`,
      'SEARCH TEXT "nothing matches this"',
      `STORE 1:* +FLAGS.SILENT (${keywords})`,
      `STORE 1:* -FLAGS.SILENT (${keywords})`,
    ];
    const hostile = await session();
    hostile.send('S SELECT INBOX\r\n');
    await untilTagged(hostile, 'S');
    let rounds = 0;
    const attack = (async () => {
      let tag = 0;
      while (rounds < 1) {
        for (const command of worst) {
          hostile.send(`H${++tag} ${command}\r\n`);
          assert.doesNotMatch(await untilTagged(hostile, `H${tag}`), /BAD/, command.slice(0, 40));
        }
        // a burst of pipelined commands in one write
        const first = tag + 1;
        hostile.send(Array.from({ length: 2000 }, (_, i) => `H${first + i} NOOP\r\n`).join(''));
        tag += 2000;
        await untilTagged(hostile, `H${tag}`);
        rounds++;
      }
    })();
    // measured for as long as the attack lasts: every one of the worst commands is covered
    const underAttack = percentile(await measure(() => rounds >= 1), 0.9);
    await attack;
    hostile.close();
    probe.close();
    assert.ok(underAttack <= baseline + 100, `NOOP p90 ${underAttack.toFixed(1)} ms under attack vs ${baseline.toFixed(1)} ms before`);
  });
});
