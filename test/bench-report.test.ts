/**
 * The bench's pure pieces (test/bench/): the corpus is deterministic and shaped as documented, and the table and
 * JSON orient the advantage so > 1 means ours is better and survive a missing figure. No server is started and
 * no figure is asserted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dataBlock, ingestMessage, smallMessage } from './bench/corpus.ts';
import { advantage, formatTable, median, toJson, type Row } from './bench/report.ts';

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
