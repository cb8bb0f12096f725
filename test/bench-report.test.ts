/**
 * The bench's pure pieces (test/bench/): the corpus is deterministic and shaped as documented, the table and
 * JSON orient the advantage so > 1 means ours is better and survive a missing figure, `--only` picks workload
 * groups (the MongoDB group among the defaults), and the MongoDB peer's variables configure the MongoDB backend
 * and its rows name the stand-in. No server is started and no figure is asserted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dataBlock, ingestMessage, smallMessage } from './bench/corpus.ts';
import { advantage, formatTable, median, toJson, type Row } from './bench/report.ts';
import { GROUPS, benchPlan, selectGroups } from './bench/plan.ts';
import { STAND_IN_NAME, mongoEnv, mongoLabel } from './bench/mongo-peer.ts';
import { applyEnv, resolveConfig } from '../hooks/config.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('bench corpus', () => {
  it('gives the same bytes for the same index and different bytes for different ones', () => {
    for (const i of [0, 1, 7, 42]) {
      assert.deepEqual(ingestMessage(i), ingestMessage(i));
      assert.deepEqual(smallMessage(i), smallMessage(i));
    }
    assert.notDeepEqual(ingestMessage(1), ingestMessage(2));
    assert.notDeepEqual(smallMessage(1), smallMessage(2));
  });

  it('mixes multipart/alternative text messages with attachment messages whose attachments repeat', () => {
    const messages = Array.from({ length: 60 }, (_, i) => text(ingestMessage(i)));
    const alternative = messages.filter((m) => m.includes('multipart/alternative'));
    const withAttachment = messages.filter((m) => m.includes('Content-Disposition: attachment'));
    assert.equal(alternative.length + withAttachment.length, messages.length);
    assert.ok(alternative.length > 0 && withAttachment.length > 0);
    for (const m of alternative) assert.ok(m.length >= 2_000 && m.length <= 21_000, `text message of ${m.length} bytes`);
    const names = withAttachment.map((m) => /filename="([^"]+)"/.exec(m)![1]);
    assert.ok(new Set(names).size < names.length, 'some attachment comes back');
    for (const m of messages) assert.ok(!/[^\r]\n/.test(m), 'CRLF line ends only');
  });

  it('dot-stuffs a DATA block and ends it with the lone dot', () => {
    const block = text(dataBlock(new TextEncoder().encode('Subject: x\r\n\r\n.hidden\r\nend')));
    assert.equal(block, 'Subject: x\r\n\r\n..hidden\r\nend\r\n.\r\n');
  });
});

describe('bench report', () => {
  const rows: Row[] = [
    { workload: 'throughput', unit: 'msg/s', better: 'higher', ours: 50, dovecot: 100 },
    { workload: 'latency', unit: 'ms', better: 'lower', ours: 2, dovecot: 10 },
    { workload: 'Dovecot failed', unit: 'ms', better: 'lower', ours: 3, dovecot: null, note: 'peer missing' },
  ];

  it('orients the advantage so that > 1 means ours is better', () => {
    assert.equal(advantage(rows[0]!), 0.5);
    assert.equal(advantage(rows[1]!), 5);
    assert.equal(advantage(rows[2]!), null);
    assert.equal(advantage({ ...rows[1]!, ours: 0 }), null);
  });

  it('prints a missing figure as a dash, and writes the advantage into the JSON', () => {
    const table = formatTable(rows);
    assert.match(table, /\| Dovecot failed \(peer missing\) \| ms \| 3\.00 \| – \| – \|/);
    assert.match(table, /\| latency \| ms \| 2\.00 \| 10\.0 \| 5\.00× \|/);
    const json = JSON.parse(
      toJson({ startedAt: 'now', durationSeconds: 1, mode: 'quick', machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, node: '20', dovecot: 'none' }, rows, details: {} }),
    ) as { rows: Array<{ advantage: number | null }> };
    assert.deepEqual(json.rows.map((r) => r.advantage), [0.5, 5, null]);
  });

  it('takes the median of the repeats', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });
});

describe('bench plan', () => {
  it('runs every group by default, the MongoDB group included, and only the ones --only names', () => {
    assert.deepEqual([...selectGroups(undefined)], [...GROUPS]);
    assert.ok(selectGroups(undefined).has('mongodb'));
    assert.deepEqual([...selectGroups('mongodb')], ['mongodb']);
    assert.deepEqual([...selectGroups(' ingest , mix')], ['ingest', 'mix']);
  });

  it('refuses a group it does not know instead of skipping it', () => {
    assert.throws(() => selectGroups('mongo'), /--only takes some of ingest, large, idle, mix, mongodb; got "mongo"/);
    assert.throws(() => selectGroups(''), /--only takes/);
  });

  it('gives the MongoDB group a smaller mailbox and fewer messages in --quick', () => {
    const quick = benchPlan(true);
    const full = benchPlan(false);
    assert.ok(quick.mongoIngest > 0 && quick.mongoIngest <= full.mongoIngest);
    assert.ok(quick.mongoMailbox > 0 && quick.mongoMailbox < full.mongoMailbox);
  });
});

describe('bench MongoDB peer', () => {
  it('configures the server for the MongoDB backend on the database given, one instance (ephemeral state in memory)', () => {
    const url = 'mongodb://127.0.0.1:27999/?directConnection=true';
    const config = resolveConfig(applyEnv({ dataDir: '/tmp/x' }, mongoEnv(url, 'wdbench_1')));
    assert.equal(config.storage.backend, 'mongodb');
    assert.equal(config.storage.mongodb.url, url);
    assert.equal(config.storage.mongodb.database, 'wdbench_1');
    assert.equal(config.storage.ephemeral, 'memory');
  });

  it('names the stand-in in every row measured on it, and a real server as such', () => {
    assert.equal(STAND_IN_NAME, 'MongoDB stand-in (smartmongo, in-process JS server), not MongoDB');
    assert.ok(mongoLabel('IMAP APPEND, 1 connection', true).includes(STAND_IN_NAME));
    assert.ok(mongoLabel('IMAP APPEND, 1 connection', true).startsWith('IMAP APPEND, 1 connection'));
    const real = mongoLabel('IMAP APPEND, 1 connection', false);
    assert.ok(real.includes('real MongoDB') && !real.includes('stand-in'));
  });
});
