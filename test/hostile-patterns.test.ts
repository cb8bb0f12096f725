/**
 * Client input that reaches a regular expression or a substring search (issue 9, defect 1 audit): each of
 * these runs on a long hostile input in linear time. The time bound is generous (quadratic behaviour on
 * these sizes takes many seconds; linear takes milliseconds) so it holds on a loaded CI machine.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emailAddress } from '../storage/delivery-settings.ts';
import { parseQuery } from '../protocols/http/search-query.ts';
import { textTerms } from '../plugins/filters.ts';
import { sentDay } from '../protocols/imap/search.ts';

function quickly<T>(what: string, run: () => T): T {
  const started = Date.now();
  const result = run();
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 1500, `${what} took ${elapsed} ms`);
  return result;
}

describe('hostile input to regular expressions', () => {
  it('validates a forward address made of a long run of dots in linear time', () => {
    // quadratic before: 8,000 dots took 150 ms, a 1 MB request body would have taken most of an hour
    const hostile = 'a@' + '.'.repeat(200_000) + ' x';
    assert.equal(quickly('emailAddress', () => emailAddress.safeParse(hostile)).success, false);
    assert.equal(emailAddress.safeParse('User@Example.com').data, 'user@example.com');
    assert.equal(emailAddress.safeParse('a@b.c.d').success, true);
    assert.equal(emailAddress.safeParse('a@bc').success, false);
    assert.equal(emailAddress.safeParse('a@b.').success, false);
    assert.equal(emailAddress.safeParse('a@.b').success, false);
  });

  it('parses a long HTTP search q in linear time', () => {
    const words = quickly('parseQuery', () => parseQuery('a'.repeat(200_000) + ' ' + 'from:'.repeat(20_000) + ' "' + 'x '.repeat(50_000)));
    assert.ok(words.keys.length > 0);
    quickly('parseQuery', () => parseQuery('-'.repeat(100_000) + ':'.repeat(100_000)));
  });

  it('splits filter text terms in linear time', () => {
    assert.deepEqual(textTerms('one "two  words" three'), ['one', 'two words', 'three']);
    quickly('textTerms', () => textTerms('"'.repeat(200_000) + ' '.repeat(200_000) + 'a'));
  });

  it('reads a hostile Date header in linear time', () => {
    assert.equal(sentDay('Mon, 1 Jan 2024 10:00:00 +0000'), Date.UTC(2024, 0, 1));
    quickly('sentDay', () => sentDay('1 ' + 'a'.repeat(200_000)));
    quickly('sentDay', () => sentDay('1 abc '.repeat(40_000)));
    quickly('sentDay', () => sentDay('1' + ' '.repeat(200_000)));
  });
});
