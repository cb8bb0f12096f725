import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatSequenceSet,
  highestNumber,
  isSequenceSet,
  parseSequenceSet,
  resolveSequenceSet,
  selectUidIndexes,
  selectUids,
  sequenceNumbers,
  sequencePredicate,
} from '../protocols/imap/sequence.ts';
import { ImapSyntaxError } from '../protocols/imap/types.ts';

describe('sequence sets: syntax', () => {
  it('parses numbers, ranges, * and lists', () => {
    assert.deepEqual(parseSequenceSet('1,3:5,7:*'), [
      { start: 1, end: 1 },
      { start: 3, end: 5 },
      { start: 7, end: '*' },
    ]);
    assert.deepEqual(parseSequenceSet('*'), [{ start: '*', end: '*' }]);
    assert.deepEqual(parseSequenceSet('*:4'), [{ start: '*', end: 4 }]);
    assert.deepEqual(parseSequenceSet('4294967295'), [{ start: 4294967295, end: 4294967295 }]);
  });

  for (const bad of ['', '0', '1:0', '0:*', '1,,2', '1:', ':1', '1:2:3', 'a', '1 2', '-1', '01', '4294967296', '1,', '$', '1.5']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseSequenceSet(bad), ImapSyntaxError);
      assert.equal(isSequenceSet(bad), false);
    });
  }

  it('isSequenceSet accepts what parseSequenceSet accepts', () => {
    for (const good of ['1', '*', '1:*', '2,4:7,9,12:*', '*:1']) assert.equal(isSequenceSet(good), true, good);
  });
});

describe('sequence sets: message sequence numbers', () => {
  it('resolves * to the message count, ranges in either order, sorted and unique', () => {
    assert.deepEqual(sequenceNumbers('1,3:5,7:*', 8), [1, 3, 4, 5, 7, 8]);
    assert.deepEqual(sequenceNumbers('5:3,4,1', 10), [1, 3, 4, 5]);
    assert.deepEqual(sequenceNumbers('*', 10), [10]);
    assert.deepEqual(sequenceNumbers('*:8', 10), [8, 9, 10]);
    assert.deepEqual(sequenceNumbers('2:*,1:3', 3), [1, 2, 3]);
  });

  it('drops numbers beyond the count and never expands huge ranges', () => {
    assert.deepEqual(sequenceNumbers('2:4294967295', 3), [2, 3]);
    assert.deepEqual(sequenceNumbers('5', 3), []);
    assert.deepEqual(sequenceNumbers('1:*', 0), []);
    assert.deepEqual(sequenceNumbers('*', 0), []);
    assert.equal(highestNumber('1,5:*,3'), 5);
    assert.equal(highestNumber('*'), 0);
  });

  it('merges overlapping and adjacent ranges', () => {
    assert.deepEqual(resolveSequenceSet('1:3,4,6:8,7:10', 100), [
      { from: 1, to: 4 },
      { from: 6, to: 10 },
    ]);
  });

  it('predicate tests membership with * as max', () => {
    const inSet = sequencePredicate('1,3:5,9:*', 12);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 8, 9, 12, 13].map(inSet), [true, false, true, true, true, false, false, true, true, false]);
    const all = sequencePredicate('1:4294967295', 3);
    assert.equal(all(4000000000), true);
  });
});

describe('sequence sets: UIDs', () => {
  const uids = [3, 7, 8, 20, 101, 102];

  it('selects existing UIDs only, * is the highest UID', () => {
    assert.deepEqual(selectUids('1:10', uids), [3, 7, 8]);
    assert.deepEqual(selectUids('*', uids), [102]);
    assert.deepEqual(selectUids('8:*', uids), [8, 20, 101, 102]);
    assert.deepEqual(selectUids('4,5,6', uids), []);
    assert.deepEqual(selectUids('102:1', uids), uids);
    assert.deepEqual(selectUidIndexes('7,101', uids), [1, 4]);
  });

  it('n:* with n above the highest UID still selects the highest UID (RFC 3501 6.4.8)', () => {
    assert.deepEqual(selectUids('500:*', uids), [102]);
    assert.deepEqual(selectUids('500', uids), []);
  });

  it('1:4294967295 is answered from the UID list without allocating the range', () => {
    const many = Array.from({ length: 1000 }, (_, i) => i * 3 + 1);
    const selected = selectUids('1:4294967295', many);
    assert.equal(selected.length, 1000);
    assert.deepEqual(selectUids('1:4294967295,2:4294967294', many), many);
  });

  it('empty mailbox selects nothing', () => {
    assert.deepEqual(selectUids('1:*', []), []);
    assert.deepEqual(selectUids('*', []), []);
  });
});

describe('formatSequenceSet', () => {
  it('compresses runs', () => {
    assert.equal(formatSequenceSet([1, 2, 3, 7]), '1:3,7');
    assert.equal(formatSequenceSet([7, 3, 2, 1, 2]), '1:3,7');
    assert.equal(formatSequenceSet([5]), '5');
    assert.equal(formatSequenceSet([]), '');
    assert.equal(formatSequenceSet([1, 3, 5, 6, 7, 9, 10]), '1,3,5:7,9:10');
  });

  it('keeps the given order when asked (COPYUID)', () => {
    assert.equal(formatSequenceSet([5, 6, 7, 1, 2], { sort: false }), '5:7,1:2');
  });

  it('round-trips through the parser', () => {
    const numbers = [1, 2, 3, 10, 11, 40, 41, 42, 43, 100];
    assert.deepEqual(sequenceNumbers(formatSequenceSet(numbers), 200), numbers);
  });
});
