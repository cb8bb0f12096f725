/**
 * The protocol-neutral parts of SORT and THREAD (storage/sort): RFC 5256 base subjects, sort keys and their order,
 * the REFERENCES / REFS / ORDEREDSUBJECT threading and the thread syntax.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { baseSubject } from '../storage/sort/base-subject.ts';
import { addressKey, displayKey, sortMessages } from '../storage/sort/sort.ts';
import type { SortCriterion } from '../storage/sort/sort.ts';
import { formatThread, threadMessages } from '../storage/sort/thread.ts';
import type { ThreadAlgorithm } from '../storage/sort/thread.ts';
import { messageIds, referencesField } from '../storage/sort/references.ts';
import type { EnvelopeAddress, MessageSortData } from '../storage/ports.ts';

const address = (mailbox: string | null, host: string | null, name: string | null = null): EnvelopeAddress => ({ name, adl: null, mailbox, host });

describe('base subject (RFC 5256 §2.1)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['Hello', 'HELLO', false],
    ['Re: Hello', 'HELLO', true],
    ['RE:   re: Fwd: hello', 'HELLO', true],
    ['Fw:hello', 'HELLO', true],
    ['Re[2]: hello', 'HELLO', true],
    ['[list] Re: hello', 'HELLO', true],
    ['[list] hello', 'HELLO', false],
    ['[only a blob]', '[ONLY A BLOB]', false],
    ['hello (fwd)', 'HELLO', true],
    ['hello (FWD) (fwd)  ', 'HELLO', true],
    ['[Fwd: Re: hello]', 'HELLO', true],
    ['[fwd: [fwd: hello]]', 'HELLO', true],
    ['  hello \t  world  ', 'HELLO WORLD', false],
    ['Reply: hello', 'REPLY: HELLO', false],
    ['re : hello', 'HELLO', true],
    ['Grüße', 'GRU\u0308SSE', false],
    ['', '', false],
    ['Re:', '', true],
  ];
  for (const [subject, base, reply] of cases) {
    it(JSON.stringify(subject), () => assert.deepEqual(baseSubject(subject), { base, reply }));
  }
});

describe('sort keys', () => {
  it('FROM / TO / CC: the first address mailbox; a group: its name', () => {
    assert.equal(addressKey(address('user', 'example.org', 'Zed')), 'USER');
    assert.equal(addressKey(address('team', null)), 'TEAM');
    assert.equal(addressKey(null), '');
  });

  it('DISPLAYFROM / DISPLAYTO: the decoded display name, else the address', () => {
    assert.equal(displayKey(address('a', 'b.c', '=?iso-8859-1?q?foo_aar?=')), 'FOO AAR');
    assert.equal(displayKey(address('b', 'c.d')), 'B@C.D');
    assert.equal(displayKey(address('d', '')), 'D');
    assert.equal(displayKey(address('empty', null)), 'EMPTY');
    assert.equal(displayKey(null), '');
  });
});

function data(uid: number, fields: Partial<MessageSortData> = {}): MessageSortData {
  return { uid, internalDate: uid * 1000, size: 100, headerDate: uid * 1000, subject: '', ...fields };
}

describe('sortMessages', () => {
  const messages = [
    data(1, { size: 300, subject: 'Re: beta', headerDate: 5000 }),
    data(2, { size: 100, subject: 'alpha', headerDate: 3000 }),
    data(3, { size: 300, subject: 'Beta', headerDate: 3000 }),
    data(4, { size: 200, subject: '[x] alpha', headerDate: 9000 }),
  ];
  const sort = (...criteria: Array<[SortCriterion['key'], boolean?]>) => sortMessages(messages, criteria.map(([key, reverse]) => ({ key, reverse: reverse ?? false })));

  it('orders by each key; ties by mailbox order', () => {
    assert.deepEqual(sort(['size']), [2, 4, 1, 3]);
    assert.deepEqual(sort(['subject']), [2, 4, 1, 3]);
    assert.deepEqual(sort(['date']), [2, 3, 1, 4]);
    assert.deepEqual(sort(['arrival']), [1, 2, 3, 4]);
  });

  it('REVERSE turns its own key round, not the tie-break, and later keys break ties', () => {
    assert.deepEqual(sort(['size', true]), [1, 3, 4, 2]);
    assert.deepEqual(sort(['subject', true], ['date']), [3, 1, 2, 4]);
    assert.deepEqual(sort(['size'], ['arrival', true]), [2, 4, 3, 1]);
  });
});

function tm(uid: number, messageId: string | null, fields: Partial<MessageSortData> = {}): MessageSortData {
  return data(uid, { messageId: messageId && `<${messageId}>`, inReplyTo: null, references: null, subject: `s${uid}`, ...fields });
}

const thread = (messages: MessageSortData[], algorithm: ThreadAlgorithm = 'references'): string =>
  threadMessages(messages, algorithm)
    .map((n) => formatThread(n, (u) => u))
    .join('');

describe('THREAD=REFERENCES', () => {
  it('links by References, the last reference being the parent; siblings by date', () => {
    const messages = [
      tm(1, 'a'),
      tm(2, 'b', { references: '<a>' }),
      tm(3, 'c', { references: '<a> <b>' }),
      tm(4, 'd', { references: '<a>', headerDate: 1500 }),
      tm(5, 'e'),
    ];
    assert.equal(thread(messages), '(1 (4)(2 3))(5)');
  });

  it('uses the first In-Reply-To id without References, and ignores invalid ids', () => {
    const messages = [tm(1, 'a'), tm(2, 'b', { inReplyTo: 'Ann\'s message <a> <zz>' }), tm(3, 'c', { references: 'garbage', inReplyTo: '<b>' })];
    assert.equal(thread(messages), '(1 2 3)');
  });

  it('a missing parent is a dummy: two replies to it are one thread, one reply is promoted', () => {
    assert.equal(thread([tm(1, 'b', { references: '<missing>' }), tm(2, 'c', { references: '<missing>' })]), '((1)(2))');
    assert.equal(thread([tm(1, 'b', { references: '<missing>' })]), '(1)');
    assert.equal(thread([tm(1, 'b', { references: '<gone1> <gone2>' }), tm(2, 'c', { references: '<gone1>' })]), '((1)(2))', 'a dummy inside is replaced by its children');
  });

  it('duplicate and missing Message-IDs get containers of their own; loops are not linked', () => {
    assert.equal(thread([tm(1, 'a'), tm(2, 'a'), tm(3, null)]), '(1)(2)(3)');
    assert.equal(thread([tm(1, 'a', { references: '<b>' }), tm(2, 'b', { references: '<a>' })]), '(2 1)', 'b would become a child of its own child');
    assert.equal(thread([tm(1, 'a', { references: '<a>' })]), '(1)', 'a message referencing itself');
  });

  it('merges roots with the same base subject; a reply goes under the original', () => {
    const messages = [tm(1, 'a', { subject: 'Topic' }), tm(2, 'b', { subject: 'Re: topic' }), tm(3, 'c', { subject: 'other' }), tm(4, 'd', { subject: 'Topic' })];
    assert.equal(thread(messages), '((1 2)(4))(3)');
    assert.equal(thread([tm(1, 'a', { subject: 'Re: x' }), tm(2, 'b', { subject: 'x' })]), '(2 1)');
  });

  it('compares Message-IDs without case (both backends agree)', () => {
    assert.equal(thread([tm(1, 'A@x'), tm(2, 'b', { references: '<a@X>' })]), '(1 2)');
  });
});

describe('deep threads', () => {
  it('a chain of 20,000 replies, each referencing the one before, is one thread (no recursion limit)', () => {
    const n = 20_000;
    const messages = Array.from({ length: n }, (_, i) => tm(i + 1, `m${i}`, { references: i ? `<m${i - 1}>` : null }));
    const expected = `(${Array.from({ length: n }, (_, i) => i + 1).join(' ')})`;
    for (const algorithm of ['references', 'refs'] as const) assert.equal(thread(messages, algorithm), expected, algorithm);
  });

  it('replies nested 10,000 levels deep with two answers each level', () => {
    // message 2k+1 answers 2k-1 and message 2k+2 answers 2k-1 too: every level branches
    const messages = [tm(1, 'm1')];
    for (let k = 1; k <= 5_000; k++) {
      messages.push(tm(2 * k, `m${2 * k}`, { references: `<m${2 * k - 1}>` }));
      messages.push(tm(2 * k + 1, `m${2 * k + 1}`, { references: `<m${2 * k - 1}>` }));
    }
    const text = thread(messages);
    assert.ok(text.startsWith('(1 (2)(3 (4)(5 (6)(7 '), text.slice(0, 40));
    assert.equal(text.length, text.replace(/[^(]/g, '').length * 2 + text.replace(/[()]/g, '').length);
  });
});

describe('THREAD=REFS', () => {
  it('links like REFERENCES without merging subjects; threads by their latest message', () => {
    const messages = [
      tm(1, 'a', { subject: 'same', headerDate: 1000 }),
      tm(2, 'b', { subject: 'same', headerDate: 2000 }),
      tm(3, 'c', { references: '<a>', headerDate: 3000 }),
    ];
    assert.equal(thread(messages, 'references'), '((1 3)(2))');
    assert.equal(thread(messages, 'refs'), '(2)(1 3)');
  });
});

describe('THREAD=ORDEREDSUBJECT', () => {
  it('one thread per base subject, later messages children of the first, threads by the first date', () => {
    const messages = [
      data(1, { subject: 'b', headerDate: 5000 }),
      data(2, { subject: 'Re: a', headerDate: 2000 }),
      data(3, { subject: 'a', headerDate: 3000 }),
      data(4, { subject: 'B', headerDate: 4000 }),
      data(5, { subject: 'a', headerDate: 1000 }),
    ];
    assert.equal(thread(messages, 'orderedsubject'), '(5 (2)(3))(4 1)');
  });
});

describe('thread syntax', () => {
  it('chains, nested lists and dummies, numbered by the caller', () => {
    const tree = { uid: 3, children: [{ uid: 6, children: [{ uid: 4, children: [{ uid: 23, children: [] }] }, { uid: 44, children: [{ uid: 7, children: [{ uid: 96, children: [] }] }] }] }] };
    assert.equal(formatThread(tree, (u) => u), '(3 6 (4 23)(44 7 96))');
    assert.equal(formatThread({ uid: 0, children: [{ uid: 1, children: [] }, { uid: 2, children: [] }] }, (u) => u * 10), '((10)(20))');
  });

  it('reads msg-ids and the stored References field', () => {
    assert.deepEqual(messageIds('<a@b> junk <c@d>\t<bad id>'), ['a@b', 'c@d']);
    assert.equal(referencesField('subject: x\nreferences: <a@b>   <c@d>\nto: y'), '<a@b> <c@d>');
    assert.equal(referencesField('subject: x'), null);
  });
});
